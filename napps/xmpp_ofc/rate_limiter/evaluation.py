"""Judging a flow-stats reply: counters in, the policy's verdicts, blocks out.

One reply carries the counters of every monitor of a switch. Each connection's
usage since its last poll (:mod:`.rates` keeps the baseline) goes to the policy
(:func:`.policy.judge`); a sustained excess is blocked for as long as the address's
record of offences says (:mod:`.escalation`). A monitor we installed is judged at
its very first poll, from a zero baseline: it counted every packet since the
connection's SYN, so a flood that starts with its connection waits for no
baseline. With ``per_ip_aggregate`` the connections of one address are also summed.
"""

from __future__ import annotations

from collections.abc import Iterable

from napps.xmpp_ofc.rate_limiter.escalation import sentence
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.policy import Buckets, Usage, Verdict, estimated_messages, judge
from napps.xmpp_ofc.rate_limiter.rates import CounterSample
from napps.xmpp_ofc.rate_limiter.records import (
    BlockRecord,
    EventKind,
    HistoryEvent,
)
from napps.xmpp_ofc.rate_limiter.registry import SwitchRegistry
from napps.xmpp_ofc.rate_limiter.settings_model import Mode, header_bytes
from napps.xmpp_ofc.rate_limiter.state import (
    STALE_SLACK_S,
    Instant,
    Monitored,
    SwitchState,
    backing_off,
    last_bytes,
    last_packets,
    locked,
)
from xmpp_ofc import cookies
from xmpp_ofc.commands import AnyCommand
from xmpp_ofc.cookies import Kind
from xmpp_ofc.messages import FlowStatsReply

#: Seconds a metered client may stay over its allowance before it is blocked anyway.
METER_GRACE_S = 30.0


def usage_since_last_poll(
    monitored: Monitored, sample: CounterSample, min_elapsed: float, header: int
) -> Usage | None:
    """What the connection sent since its baseline, or None when there is no window yet.

    Feeds ``sample`` to the connection's tracker (the displayed rates and the
    next baseline). The first sample of a monitor we installed ourselves is a delta
    from zero: its counters started at the install. An adopted or replaced flow
    (older than our install) only sets the baseline, as :mod:`.rates` explains.
    """
    tracker = monitored.tracker
    previous = tracker.last
    fresh = (
        previous is None and sample.duration <= (sample.at - monitored.installed_at) + STALE_SLACK_S
    )
    rate = tracker.update(sample, min_elapsed)
    if rate is not None and previous is not None:
        packets = sample.packet_count - previous.packet_count
        octets = sample.byte_count - previous.byte_count
        elapsed = rate.elapsed
    elif fresh:
        packets, octets = sample.packet_count, sample.byte_count
        elapsed = max(sample.duration, 1e-3)
    else:
        return None
    return Usage(packets, max(0.0, octets - packets * header), elapsed)


class FloodEvaluation(SwitchRegistry):
    """Usage of monitored clients -> nothing, a flag (history) or a block.

    Uses :class:`~.clients.ClientMonitoring` to find or adopt a reply's clients,
    ``_start_block`` of :class:`~.blocks.BlockKeeping` and the limiter's
    ``offences`` (:class:`~.escalation.OffenceLog`).
    """

    @locked
    def handle_flow_stats(self, reply: FlowStatsReply, now: Instant) -> list[AnyCommand]:
        """Judge every monitored client in ``reply``; block the ones flooding.

        Entries of other kinds are skipped (the reply may answer of_core's poll of
        every flow). A monitor flow we do not know (lost state) is adopted.
        """
        dpid = reply.dpid
        switch = self._switch(dpid)
        settings = self.settings
        allowance = settings.allowance
        min_elapsed = min(1.0, settings.poll_interval_s / 2)
        monitor_kind = Kind.MONITOR
        judged: list[tuple[Client, Monitored, Usage, Verdict]] = []
        for entry in reply.entries:
            if (entry.cookie >> cookies.KIND_SHIFT) & 0xFF != monitor_kind or (
                cookies.owner_of(entry.cookie) is not cookies.Owner.RATE_LIMITER
            ):
                continue
            found = self._client_of_entry(switch, entry.cookie, entry.match)
            if found is None:
                found = self._adopt(dpid, switch, entry.match, now)
                if found is None:
                    continue
            client, monitored = found
            monitored.last_seen = now.mono
            sample = CounterSample(entry.packet_count, entry.byte_count, entry.duration, now.mono)
            usage = usage_since_last_poll(
                monitored, sample, min_elapsed, header_bytes(client.ip_version)
            )
            if usage is None:
                continue
            if monitored.buckets is None:
                monitored.buckets = Buckets(allowance, full=not monitored.suspect)
            verdict = judge(monitored.buckets, usage, allowance, now.mono)
            judged.append((client, monitored, usage, verdict))
        commands: list[AnyCommand] = []
        for client, monitored, usage, verdict in judged:
            if verdict.act:
                commands += self._act(
                    dpid, switch, client, monitored, usage=usage, verdict=verdict, now=now
                )
            else:
                monitored.flagged = False
        if settings.per_ip_aggregate:
            commands += self._evaluate_aggregates(dpid, switch, judged, now)
        return commands

    def _act(
        self,
        dpid: str,
        switch: SwitchState,
        client: Client,
        monitored: Monitored,
        *,
        usage: Usage,
        verdict: Verdict,
        now: Instant,
    ) -> list[AnyCommand]:
        """A sustained excess: block it, or flag it once where blocking is not ours to do."""
        elapsed = max(usage.elapsed, 1e-9)
        ppm = usage.packets / elapsed * 60
        payload_bpm = usage.payload_bytes / elapsed * 60
        why_not = (
            "whitelisted"
            if monitored.whitelisted
            else "monitor-only mode"
            if self.settings.mode is Mode.MONITOR
            else "metered"  # its meter polices it in the switch
            if monitored.meter_id is not None and not self._meter_not_enough(monitored, now)
            else None
        )
        if why_not is not None:
            if not monitored.flagged:
                monitored.flagged = True
                self.flags_total += 1
                self._record(
                    HistoryEvent(
                        at=now.wall,
                        kind=EventKind.FLAG,
                        dpid=dpid,
                        ip=client.ip,
                        port=client.port,
                        reason=f"{verdict.reason} ({why_not})",
                        packets_per_min=ppm,
                        payload_bytes_per_min=payload_bpm,
                        packet_count=last_packets(monitored),
                        byte_count=last_bytes(monitored),
                    )
                )
            return []
        if backing_off(switch.block_backoff, client, now):
            return []  # its drop flow was refused lately (table full); monitored meanwhile
        return self._sentence(
            dpid,
            switch,
            client,
            server_port=monitored.server_port,
            reason=verdict.reason,
            ppm=ppm,
            payload_bpm=payload_bpm,
            now=now,
            monitored=monitored,
        )

    def _meter_not_enough(self, monitored: Monitored, now: Instant) -> bool:
        """Graduated response: a metered client still over after METER_GRACE_S is blocked.

        Its monitor flow counts what it sends before the meter drops the excess, so
        a client that keeps trying past its meter for that long is a flooder, not a
        burst: police first, then block, then escalate.
        """
        buckets = monitored.buckets
        return (
            buckets is not None
            and buckets.dry_since is not None
            and now.mono - buckets.dry_since >= self.settings.sustain_s + METER_GRACE_S
        )

    def _sentence(
        self,
        dpid: str,
        switch: SwitchState,
        client: Client,
        *,
        server_port: int | None,
        reason: str,
        ppm: float,
        payload_bpm: float | None,
        now: Instant,
        monitored: Monitored | None = None,
        whole_address: bool = False,
    ) -> list[AnyCommand]:
        """Count the offence of ``client``'s address; block for what its record says."""
        settings = self.settings
        offence = self.offences.record(client.ip, now.wall, settings.offence_window_s)
        given = sentence(
            offence,
            block_duration_s=settings.block_duration_s,
            block_max_s=settings.block_max_s,
            address_block_after=settings.address_block_after,
        )
        whole = whole_address or given.whole_address or server_port is None
        target = Client(client.ip, None) if whole else client
        ports = settings.xmpp_ports if whole or server_port is None else (server_port,)
        detail = f"offence {offence} of {client.ip} within {settings.offence_window_s} s"
        if given.whole_address and not whole_address:
            detail += f" (from offence {settings.address_block_after}: the whole address)"
        record = BlockRecord(
            dpid=dpid,
            ip=client.ip,
            port=target.port,
            server_ports=tuple(ports),
            since=now.wall,
            expires=now.wall + given.duration_s,
            reason=f"{reason}; {detail}; {given.duration_s} s",
            manual=False,
            packets_per_min=ppm,
            payload_bytes_per_min=payload_bpm,
        )
        return self._start_block(dpid, switch, target, record, now=now, monitored=monitored)

    def _evaluate_aggregates(
        self,
        dpid: str,
        switch: SwitchState,
        judged: Iterable[tuple[Client, Monitored, Usage, Verdict]],
        now: Instant,
    ) -> list[AnyCommand]:
        """Sum each address's estimated messages/s over its connections; block it if over."""
        per_ip: dict[str, list[float]] = {}
        for client, monitored, usage, _ in judged:
            if monitored.whitelisted or client not in switch.clients:
                continue  # whitelisted, or blocked by itself a moment ago
            sums = per_ip.setdefault(client.ip, [0.0, 0.0, 0])
            elapsed = max(usage.elapsed, 1e-9)
            sums[0] += estimated_messages(usage.packets, usage.payload_bytes) / elapsed
            sums[1] += usage.packets / elapsed * 60
            sums[2] += 1
        commands: list[AnyCommand] = []
        limit = self.settings.aggregate_messages_per_s
        # Sustained like a connection's excess: only addresses over at this poll stay.
        previous, switch.aggregate_over_since = switch.aggregate_over_since, {}
        for ip, (messages_per_s, ppm, count) in per_ip.items():
            target = Client(ip, None)
            if messages_per_s <= limit or target in switch.blocks:
                continue
            since = switch.aggregate_over_since[ip] = previous.get(ip, now.mono)
            if now.mono - since < self.settings.sustain_s:
                continue
            if backing_off(switch.block_backoff, target, now):
                continue
            reason = (
                f"address total {messages_per_s:.1f} msg/s over {int(count)} connections "
                f"> {limit:g} msg/s for {now.mono - since:.1f} s"
            )
            if self.settings.mode is Mode.MONITOR:
                self.flags_total += 1
                self._record(
                    HistoryEvent(now.wall, EventKind.FLAG, dpid, ip, None, reason, False, ppm)
                )
                continue
            commands += self._sentence(
                dpid,
                switch,
                target,
                server_port=None,
                reason=reason,
                ppm=ppm,
                payload_bpm=None,
                now=now,
                whole_address=True,
            )
        return commands
