"""The rate limiter's policy, free of Kytos: decoded messages in, commands out.

This is the seed's IDS (capture -> per-client monitor flow -> poll -> drop flow)
without its defects (DESIGN section 9): one cookie-filtered flow-stats request per
switch per poll, rates from deltas between polls (:mod:`.rates`), an unblock that
is counted, no hard-coded server port.

Life of a client on a switch::

    capture packet-in --> monitored --(over allowance)--> blocked --(FLOW_REMOVED
          ^                   |  (idle FLOW_REMOVED)         |      hard timeout,
          |                   v                              |      REST, whitelist)
          +--------------- forgotten <-----------------------+

When a client is over its allowance is :mod:`.policy` (token buckets on payload
bytes and messages, acted on only when one stays empty for ``sustain_s``); how long
it is blocked, and when its whole address is, is :mod:`.escalation` (fail2ban's
``bantime.increment``). Whitelisted clients are monitored (their monitor flow keeps
their packets off the capture flow) but never blocked. In meter mode a client whose
switch supports meters is policed by its own meter and not blocked; without
support, or without a free meter id, it falls back to blocking.

Reconnects (DESIGN section 5: a new source port must not escape a block): a new
connection of an address that is blocked or offended within ``offence_window_s``
is a *suspect*: its buckets start empty, so it gets no fresh burst, and its next
offence is blocked longer (from the ``address_block_after``-th on, the whole
address). With ``per_ip_aggregate`` a capture packet-in from an address that has
an automatic per-connection block is blocked at once until that block ends
(counted as kind ``reconnect``).

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

Where the pieces live (:class:`RateLimiter` is the one public class; it inherits
each piece, and each piece reads the shared state named by :class:`~.registry.SwitchRegistry`):

* :mod:`.state` -- per-switch and per-client data, clocks, backoff, the lock decorator;
* :mod:`.registry` -- finding a switch's state, history, the REST snapshots;
* :mod:`.clients` -- monitoring connections (start, adopt, heal, forget);
* :mod:`.evaluation` -- flow-stats replies to rates, flags and blocks;
* :mod:`.blocks` -- blocks (start/extend, install, heal, end, whitelist);
* :mod:`.meters` -- meter mode;
* :mod:`.flow_errors` -- rollback and backoff when a switch refuses a flow;
* :mod:`.errors` -- what a REST call can do wrong.

This module keeps the entry points that tie the pieces together: persistence,
packet-in, FLOW_REMOVED, timers, switch lifecycle and the REST commands.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from typing import Any

from napps.xmpp_ofc.rate_limiter import flood_blocks, flows, guards
from napps.xmpp_ofc.rate_limiter.blocks import BlockKeeping
from napps.xmpp_ofc.rate_limiter.capture_bounds import CaptureBounds
from napps.xmpp_ofc.rate_limiter.clients import ClientMonitoring
from napps.xmpp_ofc.rate_limiter.connection_guard import ConnectionGuard
from napps.xmpp_ofc.rate_limiter.errors import (
    InvalidRequestError,
    LimiterError,
    NotBlockedError,
    UnknownSwitchError,
    WhitelistedError,
)
from napps.xmpp_ofc.rate_limiter.escalation import OffenceLog
from napps.xmpp_ofc.rate_limiter.evaluation import FloodEvaluation
from napps.xmpp_ofc.rate_limiter.flow_errors import FlowErrorRollback
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.meters import MeterPolicing
from napps.xmpp_ofc.rate_limiter.prefix_blocks import PrefixBlocks
from napps.xmpp_ofc.rate_limiter.rates import RateTracker
from napps.xmpp_ofc.rate_limiter.records import (
    BlockRecord,
    HistoryEvent,
    LimiterStore,
    UnblockReason,
)
from napps.xmpp_ofc.rate_limiter.registry import SwitchRegistry
from napps.xmpp_ofc.rate_limiter.settings_model import (
    RETIRED_SETTINGS,
    LimiterSettings,
    Mode,
    SettingsUpdate,
    apply_patch,
)
from napps.xmpp_ofc.rate_limiter.state import (
    EXPIRY_GRACE_S,
    RETRY_MAX_S,
    Instant,
    MeterSupport,
    Monitored,
    SwitchState,
    backing_off,
    locked,
    ppm_of,
)
from xmpp_ofc import cookies
from xmpp_ofc.commands import AnyCommand, DeleteFlows, InstallFlow, ModifyMeter, RequestFlowStats
from xmpp_ofc.cookies import Kind
from xmpp_ofc.messages import DecodedPacketIn, FlowRemoved, FlowRemovedReason
from xmpp_ofc.openflow.meter import OFPM_ALL

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
DEFAULT_POLL_CPU_BUDGET = 0.25


class RateLimiter(
    FloodEvaluation,
    FlowErrorRollback,
    BlockKeeping,
    ClientMonitoring,
    MeterPolicing,
    SwitchRegistry,
):
    """Per-switch monitored clients and blocks, and the decision for each message.

    The public API: the ``handle_*`` methods, timers, switch lifecycle and REST
    commands here, ``handle_flow_stats`` (:mod:`.evaluation`), ``handle_flow_error``
    (:mod:`.flow_errors`) and the snapshots (:mod:`.registry`).
    """

    def __init__(
        self,
        settings: LimiterSettings | None = None,
        store: LimiterStore | None = None,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        capture: CaptureBounds | None = None,
        poll_cpu_budget: float = DEFAULT_POLL_CPU_BUDGET,
    ) -> None:
        self.settings = settings or LimiterSettings()
        self.capture = capture or CaptureBounds()  # the capture path's bounds (issue 14)
        self.unmonitored_total: Counter[str] = Counter()  # by capture_bounds.Unmonitored
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
        self.connection_guard = ConnectionGuard()  # connection floods (issue 14)
        self.offences = OffenceLog()  # repeat offenders (escalation.py)
        #: Share of one core a switch's polls may take: a switch whose last reply
        #: took ``cost`` s to judge is polled every ``cost / budget`` s at the most often.
        self.poll_cpu_budget = poll_cpu_budget
        self.prefix_blocks = PrefixBlocks()  # their /24 and /64 blocks (flood_blocks.py)

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
            retired = sorted(key for key in stored if key in RETIRED_SETTINGS)
            if retired:
                log.warning(
                    "stored rate_limiter settings %s are retired (now %s): dropped",
                    retired,
                    "; ".join(RETIRED_SETTINGS[key] for key in retired),
                )
                stored = {k: v for k, v in stored.items() if k not in RETIRED_SETTINGS}
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
        healed = (
            self._heal_block(dpid, switch, block, now)
            if block is not None
            else flood_blocks.heal_prefix_block(self, switch, dpid, client, now)
        )
        if healed is not None:
            return healed
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
        flood = flood_blocks.on_new_connection(self, switch, packet_in, client, now=now)
        if flood or not self._may_monitor(dpid, switch, client, now):
            return flood
        commands = self._start_monitoring(dpid, switch, client, packet.tp_dst, now)
        if sibling is not None or self.offences.recent(
            client.ip, now.wall, self.settings.offence_window_s
        ):
            switch.clients[client].suspect = True
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

    # --- timers -----------------------------------------------------------------

    @locked
    def poll_requests(self, now: Instant) -> list[RequestFlowStats]:
        """One cookie-filtered flow-stats request per connected switch that is due.

        A switch without monitored clients is not polled (nothing to measure). A
        switch whose replies are costly to judge (tens of thousands of clients) is
        polled less often than ``poll_interval_s``, within ``poll_cpu_budget``.
        """
        cookie, mask = flows.monitor_poll_selector()
        requests = []
        for dpid, switch in self._switches.items():
            if not switch.up or not switch.clients:
                continue
            interval = self.poll_interval(switch)
            # A 5 % early margin keeps a timer that fires slightly early from
            # skipping a whole interval.
            if switch.last_poll is not None and now.mono - switch.last_poll < interval * 0.95:
                continue
            switch.last_poll = now.mono
            requests.append(RequestFlowStats(dpid, cookie, mask, table_id=0))
        return requests

    def poll_interval(self, switch: SwitchState) -> float:
        """Seconds between two polls of ``switch``: the setting, or longer within budget."""
        return max(self.settings.poll_interval_s, switch.poll_cost / self.poll_cpu_budget)

    @locked
    def record_poll_cost(self, dpid: str, seconds: float) -> None:
        """How long judging the last reply of ``dpid`` took (the shell measures it)."""
        switch = self._switches.get(dpid)
        if switch is not None:
            switch.poll_cost = max(0.0, seconds)

    @locked
    def tick(self, now: Instant) -> list[AnyCommand]:
        """End blocks whose expiry passed unnoticed; forget clients no poll reports.

        Normally a FLOW_REMOVED ends a block and an idle-timeout FLOW_REMOVED ends a
        monitor; this catches the ones lost while a switch was away.
        """
        commands = flood_blocks.expire_prefix_blocks(self, now)
        for dpid, switch in self._switches.items():
            forget_after = self.settings.monitor_idle_timeout_s + 3 * self.poll_interval(switch)
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
        (so none is left from before), capture flows (through the capture meter when
        the switch's meter support is known already), each known client's meter and
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
            switch.meter_ids = self._client_meter_ids(switch)
        commands += self._capture_path(dpid, switch, fresh_meter=True)
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
        commands += flood_blocks.restore_prefix_blocks(self, dpid, now)
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
        flood_blocks.stop_prefix_blocks(self, dpid, now)
        del self._switches[dpid]

    @locked
    def set_meter_support(self, dpid: str, support: MeterSupport, now: Instant) -> list[AnyCommand]:
        """The switch's meter features arrived: the capture meter, and meter mode's meters.

        Without usable meters the capture flows stay unmetered and the dispatcher's
        per-switch packet-in budget is the only bound (README "Capture-path bounds").
        """
        switch = self._switch(dpid)
        switch.meter_support = support
        if not support.usable:
            log.warning(
                "dpid %s: %s: capture flows unmetered%s",
                dpid,
                support.why_not(),
                "; meter mode falls back to block" if self.settings.mode is Mode.METER else "",
            )
            return []
        if self.settings.mode is not Mode.METER:
            return self._capture_path(dpid, switch, fresh_meter=True)
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
        if isinstance(ip, str) and (refusal := guards.block_target_refusal(ip)):
            raise InvalidRequestError(refusal)
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
        self.offences.forget(target.ip)  # the operator forgave it: the next offence is a first
        if switch.up:
            commands.append(DeleteFlows(dpid, flows.delete_block(target)))
        return commands

    @locked
    def update_settings(
        self, patch: dict[str, Any], now: Instant, *, force: bool = False
    ) -> tuple[SettingsUpdate, list[AnyCommand]]:
        """Validate and apply a settings patch; return what to send to the switches.

        ``force`` accepts whitelist entries wider than /16 or /48. Raises
        :class:`~.settings_model.SettingsError` (nothing changes then).
        """
        update = apply_patch(self.settings, patch, force=force)
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

    # --- internals: policy ----------------------------------------------------------
