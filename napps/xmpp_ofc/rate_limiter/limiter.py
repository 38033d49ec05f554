"""The rate limiter's policy, free of Kytos: decoded messages in, commands out.

This is the seed's IDS (capture -> per-client monitor flow -> poll -> drop flow)
without its defects (DESIGN section 9): one cookie-filtered flow-stats request per
switch per poll, rates from deltas between polls (:mod:`.rates`), an unblock that
is counted, no hard-coded server port.

Life of a client on a switch::

    capture packet-in --> monitored --(over threshold)--> blocked --(FLOW_REMOVED
          ^                   |  (idle FLOW_REMOVED)         |      hard timeout,
          |                   v                              |      REST, whitelist)
          +--------------- forgotten <-----------------------+

Flood = packets/min over ``threshold_ppm`` AND payload bytes/min over
``payload_threshold_bpm`` (heavy receivers send many payload-free ACKs; see
:mod:`.settings_model`). Whitelisted clients are monitored (their monitor flow keeps
their packets off the capture flow) but never blocked. In meter mode a client whose
switch supports meters is policed by its own meter and not blocked; without
support, or without a free meter id, it falls back to blocking.

Reconnects (DESIGN section 5: a new source port must not escape a block): with
``per_ip_aggregate`` a capture packet-in from an address that has an automatic
per-connection block is blocked at once until that block ends (counted as kind
``reconnect``); without it (NAT-safe: one address may be many users) the new
connection is monitored as a *suspect* and judged at its first poll, from a zero
baseline over at least one poll interval, instead of after two polls.

Self-healing: a capture packet-in from a client we believe monitored or blocked
means its flow is missing on the switch (deleted by someone, lost in a reconnect
race), so the flow is installed again (at most once a second per client).

Refused flows (OFPT_ERROR via flow_manager, :meth:`RateLimiter.handle_flow_error`):
a refused drop flow rolls the block back (the client is monitored again), a
refused monitor forgets the client; either is retried only after a backoff.

Stale FLOW_REMOVEDs: a FLOW_REMOVED for a flow we re-added since (after a
reconnect, a re-block) carries the old flow's duration, longer than the new one
has existed; it is ignored. Removals with reason DELETE are ours (state already
updated) or the dispatcher's reconnect cleanup (RESTORE re-adds), so they never
change state.

Times: :class:`Instant` pairs monotonic time (rates, timers) with wall-clock time
(block expiry, which must survive a restart). Thread-safety: every public method
takes one re-entrant lock, so REST snapshots and event handlers can run on
Kytos' threads.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.errors import (
    InvalidRequestError,
    LimiterError,
    NotBlockedError,
    UnknownSwitchError,
    WhitelistedError,
)
from napps.xmpp_ofc.rate_limiter.flow_errors import FlowErrorRollback
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.meters import MeterPolicing
from napps.xmpp_ofc.rate_limiter.rates import CounterSample, Rate, RateTracker
from napps.xmpp_ofc.rate_limiter.records import (
    BlockRecord,
    EventKind,
    HistoryEvent,
    LimiterStore,
    UnblockReason,
)
from napps.xmpp_ofc.rate_limiter.registry import SwitchRegistry
from napps.xmpp_ofc.rate_limiter.settings_model import (
    LimiterSettings,
    Mode,
    SettingsUpdate,
    apply_patch,
    header_bytes,
)
from napps.xmpp_ofc.rate_limiter.state import (
    EXPIRY_GRACE_S,
    MAX_CLIENTS_PER_SWITCH,
    REINSTALL_GAP_S,
    RETRY_MAX_S,
    STALE_SLACK_S,
    Instant,
    MeterIds,
    MeterSupport,
    Monitored,
    SwitchState,
    backing_off,
    discard_port_block,
    last_bytes,
    last_packets,
    locked,
    ppm_of,
)
from xmpp_ofc import cookies
from xmpp_ofc.commands import AnyCommand, DeleteFlows, InstallFlow, ModifyMeter, RequestFlowStats
from xmpp_ofc.cookies import Kind
from xmpp_ofc.messages import DecodedPacketIn, FlowRemoved, FlowRemovedReason, FlowStatsReply
from xmpp_ofc.openflow.meter import OFPM_ALL
from xmpp_ofc.packet import TCP_RST

log = logging.getLogger(__name__)

#: Importable from here as before (main.py, tests, benchmarks).
__all__ = [
    "Instant",
    "InvalidRequestError",
    "LimiterError",
    "MeterSupport",
    "Monitored",
    "NotBlockedError",
    "RateLimiter",
    "UnknownSwitchError",
    "WhitelistedError",
]

DEFAULT_HISTORY_LIMIT = 1000


class RateLimiter(FlowErrorRollback, MeterPolicing, SwitchRegistry):
    """Per-switch monitored clients and blocks, and the decision for each message."""

    def __init__(
        self,
        settings: LimiterSettings | None = None,
        store: LimiterStore | None = None,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
    ) -> None:
        self.settings = settings or LimiterSettings()
        self.store = store
        self.history_limit = history_limit
        self._history: deque[HistoryEvent] = deque(maxlen=history_limit)
        self._switches: dict[str, SwitchState] = {}
        self._lock = threading.RLock()
        self.blocks_total: Counter[str] = Counter()  # "auto" / "manual"
        self.unblocks_total: Counter[str] = Counter()  # by UnblockReason
        self.flags_total = 0
        self.meter_fallbacks = 0
        self.flow_errors_total: Counter[str] = Counter()  # by flow kind

    # --- persistence ------------------------------------------------------------

    @locked
    def load_persisted(self, now: Instant) -> None:
        """Take settings, blocks and history from the store (controller start).

        Blocks that expired while the controller was down end here, counted and
        recorded; the others are reinstalled with their remaining time when their
        switch connects (:meth:`restore`). Invalid stored settings are logged and
        the defaults kept.
        """
        if self.store is None:
            return
        stored = self.store.load_settings()
        if stored is not None:
            try:
                self.settings = LimiterSettings.from_json(stored)
            except ValueError as error:
                log.error("stored rate_limiter settings are invalid (%s): using defaults", error)
        self._history.extend(self.store.load_history(self.history_limit))
        for block in self.store.load_blocks():
            target = Client(block.ip, block.port)
            if block.remaining(now.wall) <= 0:
                self._end_block(block, UnblockReason.EXPIRED, now, "expired while controller down")
                continue
            switch = self._switch(block.dpid)
            switch.blocks[target] = block
            if target.port is not None:
                switch.port_blocks.setdefault(target.ip, set()).add(target)

    # --- messages from the dispatcher --------------------------------------------

    @locked
    def handle_packet_in(self, packet_in: DecodedPacketIn, now: Instant) -> list[AnyCommand]:
        """A capture packet-in: start monitoring a new client connection."""
        client = self._capture_client(packet_in)
        if client is None:
            return []
        packet = packet_in.packet
        dpid = packet_in.dpid
        switch = self._switch(dpid)
        switch.up = True
        block = self._block_covering(switch, client)
        if block is not None:
            return self._heal_block(dpid, switch, block, now)
        monitored = switch.clients.get(client)
        if monitored is not None:
            return self._heal_monitor(dpid, client, monitored, now)
        sibling = self._auto_block_of_address(switch, client, now)
        if (
            sibling is not None
            and self._blocks_reconnects(client)
            and not backing_off(switch.block_backoff, client, now)
        ):
            return self._block_reconnect(
                dpid, switch, client, packet.tp_dst, sibling=sibling, now=now
            )
        if not self._may_monitor(dpid, switch, client, now):
            return []
        commands = self._start_monitoring(dpid, switch, client, packet.tp_dst, now)
        if sibling is not None:
            switch.clients[client].suspect = True
        return commands

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

    @locked
    def handle_flow_removed(self, removed: FlowRemoved, now: Instant) -> list[AnyCommand]:
        """A monitor idled out (forget the client) or a block expired (unblock)."""
        decoded = cookies.decode(removed.cookie)
        if decoded is None or decoded.kind not in (Kind.MONITOR, Kind.BLOCK):
            return []
        if removed.reason is FlowRemovedReason.DELETE:
            return []  # ours (state already updated) or the reconnect cleanup
        found = flows.client_from_match(removed.match)
        switch = self._switches.get(removed.dpid)
        if found is None or switch is None:
            return []
        client, _ = found
        age = removed.duration_sec + removed.duration_nsec / 1e9
        if decoded.kind is Kind.MONITOR:
            return self._monitor_removed(removed.dpid, switch, client, age, now)
        return self._block_removed(removed, switch, client, age, now)

    def _monitor_removed(
        self, dpid: str, switch: SwitchState, client: Client, age: float, now: Instant
    ) -> list[AnyCommand]:
        monitored = switch.clients.get(client)
        if monitored is None or self._is_stale(age, monitored.installed_at, now):
            return []
        return self._forget_client(dpid, switch, client, delete_flow=False)

    def _block_removed(
        self, removed: FlowRemoved, switch: SwitchState, client: Client, age: float, now: Instant
    ) -> list[AnyCommand]:
        block = switch.blocks.get(client)
        installed = switch.block_installed.get(client)
        if block is None or (installed is not None and self._is_stale(age, installed, now)):
            return []
        commands = self._end_block(block, UnblockReason.EXPIRED, now, removed.reason.value)
        # A block has one drop flow per XMPP port; the others go now, not in a moment.
        return [*commands, DeleteFlows(removed.dpid, flows.delete_block(client))]

    # --- timers -----------------------------------------------------------------

    @locked
    def poll_requests(self, now: Instant) -> list[RequestFlowStats]:
        """One cookie-filtered flow-stats request per connected switch that is due.

        A switch without monitored clients is not polled (nothing to measure).
        """
        cookie, mask = flows.monitor_poll_selector()
        requests = []
        interval = self.settings.poll_interval_s
        for dpid, switch in self._switches.items():
            if not switch.up or not switch.clients:
                continue
            # A 5 % early margin keeps a timer that fires slightly early from
            # skipping a whole interval.
            if switch.last_poll is not None and now.mono - switch.last_poll < interval * 0.95:
                continue
            switch.last_poll = now.mono
            requests.append(RequestFlowStats(dpid, cookie, mask, table_id=0))
        return requests

    @locked
    def tick(self, now: Instant) -> list[AnyCommand]:
        """End blocks whose expiry passed unnoticed; forget clients no poll reports.

        Normally a FLOW_REMOVED ends a block and an idle-timeout FLOW_REMOVED ends a
        monitor; this catches the ones lost while a switch was away.
        """
        commands: list[AnyCommand] = []
        forget_after = self.settings.monitor_idle_timeout_s + 3 * self.settings.poll_interval_s
        for dpid, switch in self._switches.items():
            for block in list(switch.blocks.values()):
                if block.remaining(now.wall) < -EXPIRY_GRACE_S:
                    commands += self._end_block(block, UnblockReason.EXPIRED, now, "timer")
                    if switch.up:
                        commands.append(
                            DeleteFlows(dpid, flows.delete_block(Client(block.ip, block.port)))
                        )
            for table in (switch.block_backoff, switch.monitor_backoff):
                for client in [c for c, b in table.items() if now.mono > b.retry_at + RETRY_MAX_S]:
                    del table[client]  # quiet for long enough: the next refusal starts over
            if not switch.up:
                continue
            stale = [c for c, m in switch.clients.items() if now.mono - m.last_seen > forget_after]
            for client in stale:
                commands += self._forget_client(dpid, switch, client, delete_flow=True)
        return commands

    # --- switch lifecycle -----------------------------------------------------------

    @locked
    def restore(self, dpid: str, now: Instant) -> list[AnyCommand]:
        """Everything to install on a switch that (re)connected or enabled us.

        The dispatcher deleted every flow of ours first. Order: delete all meters
        (so none is left from before), capture flows, each known client's meter and
        monitor (fresh flows: their rates restart), each active block with its
        REMAINING time; blocks that expired meanwhile end here.
        """
        switch = self._switch(dpid)
        switch.up = True
        switch.last_poll = None
        commands: list[AnyCommand] = []
        metered = self._meters_in_use(switch)
        if metered:
            commands.append(ModifyMeter(dpid, "delete", OFPM_ALL))
            switch.meter_ids = MeterIds(switch.meter_support.max_meter)  # type: ignore[union-attr]
        commands += [
            InstallFlow(dpid, flow) for flow in flows.capture_flows(self.settings.xmpp_ports)
        ]
        for client, monitored in switch.clients.items():
            monitored.installed_at = now.mono
            monitored.last_seen = now.mono
            monitored.tracker = RateTracker()
            monitored.meter_id = None
            if metered:
                commands += self._attach_meter(dpid, switch, monitored)
            commands.append(InstallFlow(dpid, self._monitor_flow(client, monitored)))
        for target, block in list(switch.blocks.items()):
            if block.remaining(now.wall) < 1:
                commands += self._end_block(block, UnblockReason.EXPIRED, now, "expired while away")
                continue
            commands += self._install_block(dpid, switch, target, block, now)
        return commands

    @locked
    def switch_down(self, dpid: str) -> None:
        """The connection is gone: keep clients and blocks, forget meter support.

        Meter support is asked again at the next handshake (the switch may have
        been replaced by another one with the same dpid).
        """
        switch = self._switches.get(dpid)
        if switch is not None:
            switch.up = False
            switch.meter_support = None
            switch.meter_ids = None
            switch.last_poll = None

    @locked
    def stop(self, dpid: str, now: Instant) -> None:
        """We were disabled on ``dpid`` (the dispatcher deletes our flows): forget it."""
        switch = self._switches.get(dpid)
        if switch is None:
            return
        for block in list(switch.blocks.values()):
            self._end_block(block, UnblockReason.STOPPED, now, "module disabled on the switch")
        del self._switches[dpid]

    @locked
    def set_meter_support(self, dpid: str, support: MeterSupport, now: Instant) -> list[AnyCommand]:
        """The switch's meter features arrived; in meter mode, put meters in place."""
        switch = self._switch(dpid)
        switch.meter_support = support
        if self.settings.mode is not Mode.METER:
            return []
        if not support.usable:
            log.warning(
                "dpid %s: meter mode asked but %s: falling back to block", dpid, support.why_not()
            )
            return []
        return self._remeter_switch(dpid, switch, now)

    # --- REST ---------------------------------------------------------------------

    @locked
    def block(
        self,
        dpid: str,
        ip: str,
        port: int | None,
        *,
        duration: int | None,
        reason: str,
        now: Instant,
    ) -> tuple[BlockRecord, list[AnyCommand], bool]:
        """Block a client (``port``) or a whole address (``port`` None) by hand.

        Returns ``(record, commands, replaced)``.  Blocking a target that is
        already blocked replaces its expiry and reason (``replaced`` True): it
        is the same block running longer, so ``since`` stays, no new block is
        counted and history says ``extend``.  Raises UnknownSwitchError,
        InvalidRequestError, WhitelistedError; changes nothing when it raises.
        """
        # The request's own fields first: a bad one is a 400 even on an unknown switch.
        try:
            target = Client.of(ip, port)
        except ValueError as error:
            raise InvalidRequestError(str(error)) from None
        if duration is None:
            duration = self.settings.block_duration_s
        if (
            isinstance(duration, bool)
            or not isinstance(duration, int)
            or not (1 <= duration <= flows.MAX_TIMEOUT)
        ):
            raise InvalidRequestError(
                f"duration: must be an integer in 1..{flows.MAX_TIMEOUT} seconds, got {duration!r}"
            )
        if not isinstance(reason, str) or len(reason) > 200:
            raise InvalidRequestError("reason: must be a string of at most 200 characters")
        switch = self._known_switch(dpid)
        if self.settings.is_whitelisted(target.ip):
            raise WhitelistedError(f"{target.ip} is whitelisted and is never blocked")
        monitored = switch.clients.get(target)
        server_ports = (
            (monitored.server_port,) if monitored is not None else self.settings.xmpp_ports
        )
        previous = switch.blocks.get(target)
        record = BlockRecord(
            dpid=dpid,
            ip=target.ip,
            port=target.port,
            server_ports=tuple(server_ports),
            since=now.wall if previous is None else previous.since,
            expires=now.wall + duration,
            reason=reason or "manual",
            manual=True,
            packets_per_min=ppm_of(monitored),
            payload_bytes_per_min=None,
        )
        commands = self._start_block(dpid, switch, target, record, now=now)
        return record, commands, previous is not None

    @locked
    def unblock(self, dpid: str, ip: str, port: int | None, now: Instant) -> list[AnyCommand]:
        """Lift a block by hand. Raises InvalidRequestError, UnknownSwitchError, NotBlockedError."""
        try:
            target = Client.of(ip, port)
        except ValueError as error:
            raise InvalidRequestError(str(error)) from None
        switch = self._known_switch(dpid)
        block = switch.blocks.get(target)
        if block is None:
            raise NotBlockedError(f"{target} is not blocked on switch {dpid}")
        commands = self._end_block(block, UnblockReason.MANUAL, now, "unblocked over REST")
        if switch.up:
            commands.append(DeleteFlows(dpid, flows.delete_block(target)))
        return commands

    @locked
    def update_settings(
        self, patch: dict[str, Any], now: Instant
    ) -> tuple[SettingsUpdate, list[AnyCommand]]:
        """Validate and apply a settings patch; return what to send to the switches.

        Raises :class:`~.settings_model.SettingsError` (nothing changes then).
        """
        update = apply_patch(self.settings, patch)
        old = self.settings
        self.settings = update.settings
        if self.store is not None and update.changed:
            self.store.save_settings(update.settings.to_json())
        effects = update.effects
        commands: list[AnyCommand] = []
        for dpid, switch in self._switches.items():
            if effects.whitelist_changed:
                commands += self._apply_whitelist(dpid, switch, now)
            if not switch.up:
                continue
            if effects.reinstall_capture:
                commands += self._reinstall_capture(dpid, switch)
            if effects.remeter:
                if old.mode is Mode.METER:
                    commands += self._unmeter_switch(dpid, switch)
                if update.settings.mode is Mode.METER and self._meters_usable(switch):
                    commands += self._remeter_switch(dpid, switch, now)
            elif effects.modify_meters and self._meters_usable(switch):
                commands += [
                    self._meter_mod(dpid, "modify", m.meter_id)
                    for m in switch.clients.values()
                    if m.meter_id is not None
                ]
        return update, commands

    # --- internals: clients -----------------------------------------------------------

    def _capture_client(self, packet_in: DecodedPacketIn) -> Client | None:
        """The client of a capture packet-in, or None when it is not one to monitor."""
        decoded = cookies.decode(packet_in.cookie)
        if decoded is None or decoded.kind is not Kind.CAPTURE:
            return None
        packet = packet_in.packet
        if (
            packet.ip_src is None
            or packet.ip_proto != flows.IP_PROTO_TCP
            or packet.tp_src is None
            or packet.tp_dst not in self.settings.xmpp_ports
            or packet.has_tcp_flag(TCP_RST)  # a reset connection needs no monitor
        ):
            return None
        try:
            return Client.of(packet.ip_src, packet.tp_src)
        except ValueError:
            return None

    def _client_of_entry(
        self, switch: SwitchState, cookie: int, match: Any
    ) -> tuple[Client, Monitored] | None:
        """Fast path: the cookie id names the client; the match confirms it."""
        ident = cookie & cookies.MAX_ID
        client: Client | None = None
        ip = match.get("nw_src")
        if ip is not None:
            client = Client(ip, match.get("tp_src"))
            if client.cookie_id != ident:
                return None
        else:
            found = flows.client_from_match(match)
            client = None if found is None else found[0]
        if client is None:
            return None
        monitored = switch.clients.get(client)
        if monitored is None or match.get("tp_dst") != monitored.server_port:
            return None
        return client, monitored

    def _adopt(
        self, dpid: str, switch: SwitchState, match: Any, now: Instant
    ) -> tuple[Client, Monitored] | None:
        found = flows.client_from_match(match)
        if found is None or found[0].port is None:
            return None
        client, server_port = found
        if client in switch.clients or self._block_covering(switch, client) is not None:
            return None
        if len(switch.clients) >= MAX_CLIENTS_PER_SWITCH:
            return None
        monitored = Monitored(client, server_port, now, self.settings.is_whitelisted(client.ip))
        switch.clients[client] = monitored
        log.info("dpid %s: adopted monitor flow of %s found on the switch", dpid, client)
        return client, monitored

    def _start_monitoring(
        self, dpid: str, switch: SwitchState, client: Client, server_port: int, now: Instant
    ) -> list[AnyCommand]:
        monitored = Monitored(client, server_port, now, self.settings.is_whitelisted(client.ip))
        switch.clients[client] = monitored
        commands: list[AnyCommand] = []
        if self._meters_in_use(switch):
            commands += self._attach_meter(dpid, switch, monitored)
        commands.append(InstallFlow(dpid, self._monitor_flow(client, monitored)))
        return commands

    @staticmethod
    def _may_monitor(dpid: str, switch: SwitchState, client: Client, now: Instant) -> bool:
        """False past the per-switch client bound, or while a refused monitor backs off."""
        if len(switch.clients) >= MAX_CLIENTS_PER_SWITCH:
            if not switch.refusing:
                switch.refusing = True
                log.warning(
                    "dpid %s: %d clients monitored, not monitoring new ones (SYN flood?)",
                    dpid,
                    MAX_CLIENTS_PER_SWITCH,
                )
            return False
        switch.refusing = False
        # A monitor the switch refused lately (table full) is not asked for again yet.
        return not backing_off(switch.monitor_backoff, client, now)

    def _heal_monitor(
        self, dpid: str, client: Client, monitored: Monitored, now: Instant
    ) -> list[AnyCommand]:
        """Re-add a monitor the switch lost (rate-limited).

        A capture copy from a monitored client means its monitor did not match:
        the flow is missing on the switch.
        """
        if now.mono - monitored.last_heal < REINSTALL_GAP_S:
            return []
        monitored.last_heal = now.mono
        monitored.installed_at = now.mono
        return [InstallFlow(dpid, self._monitor_flow(client, monitored))]

    def _monitor_flow(self, client: Client, monitored: Monitored) -> dict[str, Any]:
        return flows.monitor_flow(
            client,
            monitored.server_port,
            idle_timeout=self.settings.monitor_idle_timeout_s,
            meter_id=monitored.meter_id,
        )

    def _forget_client(
        self, dpid: str, switch: SwitchState, client: Client, *, delete_flow: bool
    ) -> list[AnyCommand]:
        monitored = switch.clients.pop(client, None)
        if monitored is None:
            return []
        commands: list[AnyCommand] = []
        if delete_flow and switch.up:
            commands.append(DeleteFlows(dpid, flows.delete_monitor(client, monitored.server_port)))
        commands += self._detach_meter(dpid, switch, monitored)
        return commands

    @staticmethod
    def _is_stale(age: float, installed_at: float, now: Instant) -> bool:
        return age > (now.mono - installed_at) + STALE_SLACK_S

    # --- internals: policy ----------------------------------------------------------

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

    # --- internals: blocks ----------------------------------------------------------

    def _block_covering(self, switch: SwitchState, client: Client) -> BlockRecord | None:
        if not switch.blocks:
            return None
        return switch.blocks.get(client) or switch.blocks.get(Client(client.ip, None))

    def _auto_block_of_address(
        self, switch: SwitchState, client: Client, now: Instant
    ) -> BlockRecord | None:
        """The automatic block of another connection of ``client``'s address, if any.

        Manual per-connection blocks do not count: an operator who blocks one
        connection chose that connection (the whole address is a port-less block).
        Of several, the one that ends last.
        """
        targets = switch.port_blocks.get(client.ip)
        if not targets:
            return None
        found = None
        for target in targets:
            block = switch.blocks.get(target)
            if block is None or block.manual or target == client or block.remaining(now.wall) < 1:
                continue
            if found is None or block.expires > found.expires:
                found = block
        return found

    def _blocks_reconnects(self, client: Client) -> bool:
        """Whether a reconnect of a blocked client is blocked at once (``per_ip_aggregate``).

        Off by default: behind a NAT one address is many users, and blocking every
        new connection of the address would punish the flooder's neighbours. Then
        the reconnect is monitored as a suspect instead (judged at its first poll).
        """
        settings = self.settings
        return (
            settings.per_ip_aggregate
            and settings.mode is not Mode.MONITOR
            and not settings.is_whitelisted(client.ip)
        )

    def _block_reconnect(
        self,
        dpid: str,
        switch: SwitchState,
        client: Client,
        server_port: int,
        *,
        sibling: BlockRecord,
        now: Instant,
    ) -> list[AnyCommand]:
        """Block a new connection of a blocked address until the sibling's block ends.

        Same expiry as the block it tried to escape, so reconnecting never extends
        (nor shortens) the penalty; counted as a block of kind ``reconnect``.
        """
        blocked = Client(sibling.ip, sibling.port)
        record = BlockRecord(
            dpid=dpid,
            ip=client.ip,
            port=client.port,
            server_ports=(server_port,),
            since=now.wall,
            expires=sibling.expires,
            reason=f"reconnect while {blocked} is blocked",
            manual=False,
        )
        return self._start_block(dpid, switch, client, record, now=now, count_as="reconnect")

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

    def _start_block(
        self,
        dpid: str,
        switch: SwitchState,
        target: Client,
        record: BlockRecord,
        *,
        now: Instant,
        monitored: Monitored | None = None,
        count_as: str | None = None,
    ) -> list[AnyCommand]:
        # Blocking a target that is already blocked extends that block: one block, one count.
        extends = target in switch.blocks
        switch.blocks[target] = record
        if target.port is not None:
            switch.port_blocks.setdefault(target.ip, set()).add(target)
        if not extends:
            self.blocks_total[count_as or ("manual" if record.manual else "auto")] += 1
        if self.store is not None:
            self.store.save_block(record)
        self._record(
            HistoryEvent(
                at=now.wall,
                kind=EventKind.EXTEND if extends else EventKind.BLOCK,
                dpid=dpid,
                ip=target.ip,
                port=target.port,
                reason=record.reason,
                manual=record.manual,
                packets_per_min=record.packets_per_min,
                payload_bytes_per_min=record.payload_bytes_per_min,
                packet_count=last_packets(monitored),
                byte_count=last_bytes(monitored),
            )
        )
        log.info(
            "dpid %s: %s %s until %.0f: %s",
            dpid,
            "block extended for" if extends else "blocked",
            target,
            record.expires,
            record.reason,
        )
        commands: list[AnyCommand] = []
        if switch.up:
            commands += self._install_block(dpid, switch, target, record, now)
        # The monitor flows the block covers go: they would only count drops.
        covered = (
            [target]
            if target.port is not None
            else [c for c in switch.clients if c.ip == target.ip]
        )
        for client in covered:
            commands += self._forget_client(dpid, switch, client, delete_flow=True)
        return commands

    def _install_block(
        self, dpid: str, switch: SwitchState, target: Client, record: BlockRecord, now: Instant
    ) -> list[AnyCommand]:
        remaining = min(flows.MAX_TIMEOUT, max(1, math.ceil(record.remaining(now.wall))))
        switch.block_installed[target] = now.mono
        switch.block_healed[target] = now.mono
        return [
            InstallFlow(dpid, flow)
            for flow in flows.block_flows(target, record.server_ports, remaining)
        ]

    def _heal_block(
        self, dpid: str, switch: SwitchState, block: BlockRecord, now: Instant
    ) -> list[AnyCommand]:
        target = Client(block.ip, block.port)
        if now.mono - switch.block_healed.get(target, -math.inf) < REINSTALL_GAP_S:
            return []
        if block.remaining(now.wall) < 1:
            return []  # about to expire; the timer or FLOW_REMOVED ends it
        log.info("dpid %s: drop flow of blocked %s missing on the switch; re-adding", dpid, target)
        return self._install_block(dpid, switch, target, block, now)

    def _end_block(
        self, block: BlockRecord, reason: UnblockReason, now: Instant, detail: str
    ) -> list[AnyCommand]:
        target = Client(block.ip, block.port)
        switch = self._switches.get(block.dpid)
        if switch is not None:
            switch.blocks.pop(target, None)
            discard_port_block(switch, target)
            switch.block_installed.pop(target, None)
            switch.block_healed.pop(target, None)
        self.unblocks_total[reason.value] += 1
        if self.store is not None:
            self.store.delete_block(block.dpid, block.ip, block.port)
        self._record(
            HistoryEvent(
                at=now.wall,
                kind=EventKind.UNBLOCK,
                dpid=block.dpid,
                ip=block.ip,
                port=block.port,
                reason=f"{reason.value}: {detail}",
                manual=reason is UnblockReason.MANUAL,
            )
        )
        log.info("dpid %s: unblocked %s (%s: %s)", block.dpid, target, reason.value, detail)
        return []

    def _apply_whitelist(self, dpid: str, switch: SwitchState, now: Instant) -> list[AnyCommand]:
        settings = self.settings
        for client, monitored in switch.clients.items():
            monitored.whitelisted = settings.is_whitelisted(client.ip)
        commands: list[AnyCommand] = []
        for target, block in list(switch.blocks.items()):
            if settings.is_whitelisted(block.ip):
                commands += self._end_block(block, UnblockReason.WHITELISTED, now, "whitelisted")
                if switch.up:
                    commands.append(DeleteFlows(dpid, flows.delete_block(target)))
        return commands

    def _reinstall_capture(self, dpid: str, switch: SwitchState) -> list[AnyCommand]:
        commands: list[AnyCommand] = [DeleteFlows(dpid, flows.delete_capture())]
        commands += [InstallFlow(dpid, f) for f in flows.capture_flows(self.settings.xmpp_ports)]
        ports = set(self.settings.xmpp_ports)
        gone = [c for c, m in switch.clients.items() if m.server_port not in ports]
        for client in gone:
            commands += self._forget_client(dpid, switch, client, delete_flow=True)
        return commands
