"""Judging a flow-stats reply: rates in, flags and blocks out.

One reply carries the counters of every monitor of a switch; rates come from the
delta to the previous poll (:mod:`.rates`), except for a *suspect* (a reconnect
while its address is blocked), judged at its first poll from a zero baseline.
Flood = packets/min over ``threshold_ppm`` AND payload bytes/min over
``payload_threshold_bpm``. With ``per_ip_aggregate`` the connections of one
address are also summed and judged against ``aggregate_threshold_ppm``.
"""

from __future__ import annotations

from collections.abc import Iterable

from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.rates import CounterSample, Rate
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


class FloodEvaluation(SwitchRegistry):
    """Rates of monitored clients -> nothing, a flag (history) or a block.

    Uses :class:`~.clients.ClientMonitoring` to find or adopt a reply's clients and
    ``_start_block`` of :class:`~.blocks.BlockKeeping`.
    """

    @locked
    def handle_flow_stats(self, reply: FlowStatsReply, now: Instant) -> list[AnyCommand]:
        """Rates of every monitored client in ``reply``; block the ones flooding.

        Entries of other kinds are skipped (the reply may answer of_core's poll of
        every flow). A monitor flow we do not know (lost state) is adopted.
        """
        dpid = reply.dpid
        switch = self._switch(dpid)
        settings = self.settings
        min_elapsed = min(1.0, settings.poll_interval_s / 2)
        monitor_kind = Kind.MONITOR
        fresh: list[tuple[Client, Monitored, Rate]] = []
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
            if monitored.suspect:
                monitored.suspect = False
                rate = self._first_window_rate(monitored, sample, min_elapsed)
            else:
                rate = monitored.tracker.update(sample, min_elapsed)
            if rate is not None:
                fresh.append((client, monitored, rate))
        commands: list[AnyCommand] = []
        for client, monitored, rate in fresh:
            commands += self._evaluate(dpid, switch, client, monitored, rate=rate, now=now)
        if settings.per_ip_aggregate:
            commands += self._evaluate_aggregates(dpid, switch, fresh, now)
        return commands

    def _first_window_rate(
        self, monitored: Monitored, sample: CounterSample, min_elapsed: float
    ) -> Rate | None:
        """A suspect's rate at its first poll: from zero, over a window of at least one poll.

        A monitor we installed counted every packet since its install, so its first
        sample already is a delta from (0 packets, age 0) -- unless the flow is older
        than our install (adopted, replaced in place), when the usual baseline rule
        applies. The window is stretched to a full poll interval, so a login burst
        (8-10 packets in a second) never looks worse than over a normal poll, while a
        flood (thousands of packets) is over the threshold at once: a reconnect no
        longer buys two polls of flooding.
        """
        tracker = monitored.tracker
        fresh = (
            tracker.last is None
            and sample.duration <= (sample.at - monitored.installed_at) + STALE_SLACK_S
        )
        rate = tracker.update(sample, min_elapsed)  # the baseline of the next poll
        if not fresh or rate is not None or sample.duration < min_elapsed:
            return rate
        window = max(sample.duration, self.settings.poll_interval_s)
        tracker.rate = Rate(sample.packet_count / window, sample.byte_count / window, window)
        return tracker.rate

    def _is_flood(self, rate_ppm: float, payload_bpm: float, threshold_ppm: int) -> bool:
        payload_threshold = self.settings.payload_threshold_bpm
        return rate_ppm > threshold_ppm and (
            payload_threshold == 0 or payload_bpm > payload_threshold
        )

    def _evaluate(
        self,
        dpid: str,
        switch: SwitchState,
        client: Client,
        monitored: Monitored,
        *,
        rate: Rate,
        now: Instant,
    ) -> list[AnyCommand]:
        payload = rate.payload_bytes_per_min(header_bytes(client.ip_version))
        if not self._is_flood(rate.packets_per_min, payload, self.settings.threshold_ppm):
            monitored.flagged = False
            return []
        reason = (
            f"{rate.packets_per_min:.0f} packets/min > {self.settings.threshold_ppm}, "
            f"{payload:.0f} payload bytes/min"
        )
        enforce = not monitored.whitelisted and self.settings.mode is not Mode.MONITOR
        if monitored.meter_id is not None:
            enforce = False  # its meter polices it in the switch
        if not enforce:
            if not monitored.flagged:
                monitored.flagged = True
                self.flags_total += 1
                why = (
                    "whitelisted"
                    if monitored.whitelisted
                    else "metered"
                    if monitored.meter_id is not None
                    else "monitor-only mode"
                )
                self._record(
                    HistoryEvent(
                        at=now.wall,
                        kind=EventKind.FLAG,
                        dpid=dpid,
                        ip=client.ip,
                        port=client.port,
                        reason=f"{reason} ({why})",
                        packets_per_min=rate.packets_per_min,
                        payload_bytes_per_min=payload,
                        packet_count=last_packets(monitored),
                        byte_count=last_bytes(monitored),
                    )
                )
            return []
        if backing_off(switch.block_backoff, client, now):
            return []  # its drop flow was refused lately (table full); monitored meanwhile
        duration = self.settings.block_duration_s
        record = BlockRecord(
            dpid=dpid,
            ip=client.ip,
            port=client.port,
            server_ports=(monitored.server_port,),
            since=now.wall,
            expires=now.wall + duration,
            reason=reason,
            manual=False,
            packets_per_min=rate.packets_per_min,
            payload_bytes_per_min=payload,
        )
        return self._start_block(dpid, switch, client, record, now=now, monitored=monitored)

    def _evaluate_aggregates(
        self,
        dpid: str,
        switch: SwitchState,
        fresh: Iterable[tuple[Client, Monitored, Rate]],
        now: Instant,
    ) -> list[AnyCommand]:
        """Sum the fresh rates of each address's connections; block the address if over."""
        per_ip: dict[str, list[float]] = {}
        for client, monitored, rate in fresh:
            if monitored.whitelisted or client not in switch.clients:
                continue  # whitelisted, or blocked by itself a moment ago
            sums = per_ip.setdefault(client.ip, [0.0, 0.0, 0])
            sums[0] += rate.packets_per_min
            sums[1] += rate.payload_bytes_per_min(header_bytes(client.ip_version))
            sums[2] += 1
        commands: list[AnyCommand] = []
        threshold = self.settings.aggregate_threshold_ppm
        for ip, (ppm, payload, count) in per_ip.items():
            target = Client(ip, None)
            if target in switch.blocks or not self._is_flood(ppm, payload, threshold):
                continue
            if backing_off(switch.block_backoff, target, now):
                continue
            reason = (
                f"address total {ppm:.0f} packets/min over {int(count)} connections "
                f"> {threshold}, {payload:.0f} payload bytes/min"
            )
            if self.settings.mode is Mode.MONITOR:
                self.flags_total += 1
                self._record(
                    HistoryEvent(
                        now.wall, EventKind.FLAG, dpid, ip, None, reason, False, ppm, payload
                    )
                )
                continue
            record = BlockRecord(
                dpid=dpid,
                ip=ip,
                port=None,
                server_ports=self.settings.xmpp_ports,
                since=now.wall,
                expires=now.wall + self.settings.block_duration_s,
                reason=reason,
                manual=False,
                packets_per_min=ppm,
                payload_bytes_per_min=payload,
            )
            commands += self._start_block(dpid, switch, target, record, now=now)
        return commands
