"""The rate limiter's coordinator, free of Kytos: decoded messages in, commands out.

This is the seed's IDS (capture -> per-client monitor flow -> poll -> drop flow)
without its defects (DESIGN section 9). Life of a client on a switch::

    capture packet-in --> monitored --(over allowance)--> blocked --(FLOW_REMOVED
          ^                   |  (idle FLOW_REMOVED)         |      hard timeout,
          |                   v                              |      REST, whitelist)
          +--------------- forgotten <-----------------------+

:class:`RateLimiter` owns no policy and no tables of its own: it wires small
collaborators, each with its own state and a narrow interface (Faucet's valve_*
modules around one valve are the model), and sequences them for each message:

* **rate estimation** -- :mod:`.estimation` (flow-stats entry -> usage since the
  last poll; :mod:`.rates` keeps each connection's baseline), :mod:`.polling`
  (when each switch is polled, within a CPU budget);
* **policy** -- :mod:`.policy`, the one file that decides: when a connection is
  over its allowance, flag or block, for how long, reconnects, address totals;
  :mod:`.connection_guard` counts new connections for it;
* **enforcement** -- :mod:`.enforcement`: which capture, monitor, drop flows and
  meters a change means, and each switch's link and meter support;
* **bookkeeping** -- :mod:`.monitors` (monitored connections, bounds),
  :mod:`.blocks` (active blocks, persisted, counted), :mod:`.escalation` (offences
  per address), :mod:`.flood_blocks` (connection floods' prefix blocks),
  :mod:`.history` (every decision with its reason).

Self-healing: a capture packet-in from a client we believe monitored or blocked
means its flow is missing on the switch, so it is installed again (at most once a
second per client). Refused flows (OFPT_ERROR via flow_manager): a refused drop
flow rolls the block back (the client is monitored again), a refused monitor
forgets the client; either is retried only after a backoff. Stale FLOW_REMOVEDs
(of a flow re-added since) are ignored; removals with reason DELETE are ours or
the dispatcher's reconnect cleanup, so they never change state.

Times: :class:`Instant` pairs monotonic time (rates, timers) with wall-clock time
(block expiry, which must survive a restart). Thread-safety: every public method
takes one re-entrant lock, so REST snapshots and event handlers can run on
Kytos' threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

from napps.xmpp_ofc.rate_limiter import blocks as block_records
from napps.xmpp_ofc.rate_limiter import flows, guards, policy
from napps.xmpp_ofc.rate_limiter.blocks import BlockBook
from napps.xmpp_ofc.rate_limiter.capture_bounds import CaptureBounds
from napps.xmpp_ofc.rate_limiter.connection_guard import ConnectionGuard, Scope
from napps.xmpp_ofc.rate_limiter.enforcement import Enforcer
from napps.xmpp_ofc.rate_limiter.errors import (
    InvalidRequestError,
    LimiterError,
    NotBlockedError,
    UnknownSwitchError,
    WhitelistedError,
)
from napps.xmpp_ofc.rate_limiter.escalation import OffenceLog
from napps.xmpp_ofc.rate_limiter.estimation import (
    min_window,
    monitor_entries,
    usage_since_last_poll,
)
from napps.xmpp_ofc.rate_limiter.flood_blocks import ADDRESS_KIND, ConnectionFloods
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.history import DEFAULT_HISTORY_LIMIT, History
from napps.xmpp_ofc.rate_limiter.monitors import Monitors, capture_client
from napps.xmpp_ofc.rate_limiter.policy import AddressTotals, Buckets, Usage, Verdict, judge
from napps.xmpp_ofc.rate_limiter.polling import DEFAULT_POLL_CPU_BUDGET, PollSchedule
from napps.xmpp_ofc.rate_limiter.rates import CounterSample, RateTracker
from napps.xmpp_ofc.rate_limiter.records import (
    BlockRecord,
    EventKind,
    HistoryEvent,
    LimiterStore,
    UnblockReason,
)
from napps.xmpp_ofc.rate_limiter.server_addresses import ServerAddresses
from napps.xmpp_ofc.rate_limiter.settings_model import (
    RETIRED_SETTINGS,
    LimiterSettings,
    Mode,
    SettingsUpdate,
    apply_patch,
    header_bytes,
)
from napps.xmpp_ofc.rate_limiter.state import (
    EXPIRY_GRACE_S,
    Instant,
    MeterSupport,
    Monitored,
    last_bytes,
    last_packets,
    locked,
    ppm_of,
)
from xmpp_ofc import cookies
from xmpp_ofc.commands import AnyCommand, RequestFlowStats
from xmpp_ofc.cookies import Kind
from xmpp_ofc.flow_errors import FlowError
from xmpp_ofc.messages import DecodedPacketIn, FlowRemoved, FlowRemovedReason, FlowStatsReply

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


class RateLimiter:
    """Per-switch monitored clients and blocks, and the decision for each message."""

    def __init__(
        self,
        settings: LimiterSettings | None = None,
        store: LimiterStore | None = None,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        capture: CaptureBounds | None = None,
        poll_cpu_budget: float = DEFAULT_POLL_CPU_BUDGET,
        *,
        connection_guard: ConnectionGuard | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self.store = store
        self.capture = capture or CaptureBounds()  # the capture path's bounds (issue 14)
        self.history_log = History(history_limit, store)
        self.monitors = Monitors(self.capture)
        self.blocks = BlockBook(self.history_log, store)
        self.offences = OffenceLog(store=store)  # repeat offenders (escalation.py)
        self.floods = ConnectionFloods(self.history_log, connection_guard)
        self.address_totals = AddressTotals()  # per_ip_aggregate (policy.py)
        self.servers = ServerAddresses()  # the protected server, learned (issue 13)
        self.enforcer = Enforcer(settings or LimiterSettings(), self.capture)
        self.polls = PollSchedule(poll_cpu_budget)
        self.flow_errors_total: Counter[str] = Counter()  # by flow kind
        #: Every dpid with state, in the order first seen.
        self._dpids: dict[str, None] = {}

    @property
    def settings(self) -> LimiterSettings:
        """The current settings (one frozen value; the enforcer reads the same)."""
        return self.enforcer.settings

    @settings.setter
    def settings(self, value: LimiterSettings) -> None:
        self.enforcer.settings = value

    @property
    def connection_guard(self) -> ConnectionGuard:
        """The connection-flood detector (issue 14, item 5)."""
        return self.floods.guard

    @property
    def blocks_total(self) -> Counter[str]:
        """Blocks started, by kind (connections and addresses, and prefixes)."""
        return self.blocks.blocks_total + self.floods.blocks_total

    @property
    def unblocks_total(self) -> Counter[str]:
        """Blocks ended, by reason."""
        return self.blocks.unblocks_total + self.floods.unblocks_total

    def _know(self, dpid: str) -> None:
        self._dpids.setdefault(dpid, None)

    def _known(self, dpid: str) -> None:
        if dpid not in self._dpids:
            raise UnknownSwitchError(f"switch {dpid!r} is not known to the rate limiter")

    # --- persistence ------------------------------------------------------------

    @locked
    def load_persisted(self, now: Instant) -> None:
        """Take settings, blocks, offences and history from the store (controller start).

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
        self.history_log.load()
        self.offences.load(now.wall, self.settings.offence_window_s)
        for dpid in self.blocks.load(now):
            self._know(dpid)

    # --- messages from the dispatcher --------------------------------------------

    @locked
    def handle_packet_in(self, packet_in: DecodedPacketIn, now: Instant) -> list[AnyCommand]:
        """A capture packet-in: start monitoring a new client connection."""
        settings = self.settings
        client = capture_client(packet_in, settings.xmpp_ports)
        if client is None:
            return []
        dpid = packet_in.dpid
        self._know(dpid)
        self.enforcer.connected(dpid)
        self.servers.observe(client.ip, packet_in.packet.ip_dst)
        healed = self._heal(dpid, client, now)
        if healed is not None:
            return healed
        # A new connection.
        server_port = packet_in.packet.tp_dst
        sibling = self.blocks.auto_block_of_address(dpid, client, now)
        if (
            sibling is not None
            and policy.blocks_reconnect(
                per_ip_aggregate=settings.per_ip_aggregate,
                monitor_mode=settings.mode is Mode.MONITOR,
                exempt=self._exemption(client.ip) is not None,
            )
            and not self.blocks.backing_off(dpid, client, now)
        ):
            record = block_records.reconnect_block(dpid, client, server_port, sibling, now)
            return self._start_block(dpid, client, record, now=now, count_as="reconnect")
        flood = self._connection_flood(packet_in, client, now)
        if flood or not self.monitors.may_monitor(
            dpid, client, now, whitelisted=settings.is_whitelisted(client.ip)
        ):
            return flood
        commands = self._start_monitoring(dpid, client, server_port, now)
        if policy.is_suspect(
            address_blocked=sibling is not None,
            recent_offences=self.offences.recent(client.ip, now.wall, settings.offence_window_s),
        ):
            self.monitors.get(dpid, client).suspect = True  # type: ignore[union-attr]
        return commands

    def _heal(self, dpid: str, client: Client, now: Instant) -> list[AnyCommand] | None:
        """A packet-in through a block or a monitor: its flow is missing on the switch.

        None when ``client`` is neither blocked nor monitored (a new connection).
        """
        block = self.blocks.covering(dpid, client)
        if block is not None:
            return self._heal_block(block, now)
        prefix = self.floods.covering(dpid, client)
        if prefix is not None:
            if not self.floods.heal_due(prefix, now, up=self.enforcer.is_up(dpid)):
                return []
            return self.enforcer.prefix_block(prefix, now)
        monitored = self.monitors.get(dpid, client)
        if monitored is None:
            return None
        if not self.monitors.heal_due(monitored, now):
            return []
        return self.enforcer.reinstall_monitor(dpid, client, monitored)

    @locked
    def handle_flow_removed(self, removed: FlowRemoved, now: Instant) -> list[AnyCommand]:
        """A monitor idled out (forget the client) or a block expired (unblock)."""
        decoded = cookies.decode(removed.cookie)
        if (
            decoded is None
            or decoded.kind not in (Kind.MONITOR, Kind.BLOCK)
            # A DELETE is ours (state already updated) or the reconnect cleanup.
            or removed.reason is FlowRemovedReason.DELETE
        ):
            return []
        found = flows.client_from_match(removed.match)
        dpid = removed.dpid
        if found is None or dpid not in self._dpids:
            return []
        client, _ = found
        age = removed.duration_sec + removed.duration_nsec / 1e9
        if decoded.kind is Kind.MONITOR:
            if self.monitors.removal_counts(dpid, client, age, now):
                return self._forget(dpid, client, delete_flow=False)
            return []
        block = self.blocks.removal_ends(dpid, client, age, now)
        if block is not None:
            self.blocks.end(block, UnblockReason.EXPIRED, now, removed.reason.value)
            # A block has one drop flow per XMPP port; the others go now, not in a moment.
            return self.enforcer.unblock(dpid, client, if_up=False)
        return []

    @locked
    def handle_flow_stats(self, reply: FlowStatsReply, now: Instant) -> list[AnyCommand]:
        """Judge every monitored client in ``reply``; block the ones flooding.

        Entries of other kinds are skipped (the reply may answer of_core's poll of
        every flow). A monitor flow we do not know (lost state) is adopted.
        """
        dpid = reply.dpid
        self._know(dpid)
        settings = self.settings
        allowance = settings.allowance
        min_elapsed = min_window(settings.poll_interval_s)
        monitors = self.monitors
        judged: list[tuple[Client, Monitored, Usage, Verdict]] = []
        for entry in monitor_entries(reply.entries):
            found = monitors.entry(dpid, entry.cookie, entry.match)
            if found is None:
                found = monitors.adopt(
                    dpid,
                    entry.match,
                    now,
                    whitelisted=settings.is_whitelisted,
                    blocked=lambda c: self.blocks.covering(dpid, c) is not None,
                )
                if found is None:
                    continue
            client, monitored = found
            monitored.last_seen = now.mono
            sample = CounterSample(entry.packet_count, entry.byte_count, entry.duration, now.mono)
            usage = usage_since_last_poll(
                monitored.tracker,
                monitored.installed_at,
                sample,
                min_elapsed,
                header_bytes(client.ip_version),
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
                    dpid, client, monitored, usage=usage, verdict=verdict, now=now
                )
            else:
                monitored.flagged = False
        if settings.per_ip_aggregate:
            commands += self._address_totals(dpid, judged, now)
        return commands

    @locked
    def handle_flow_error(self, error: FlowError, now: Instant) -> list[AnyCommand]:
        """A switch refused one of our flows (OFPT_ERROR): make our state say so.

        * a drop flow: the client is NOT blocked -- the block is rolled back
          (history ``block_failed``, no unblock counted), any drop flow of it the
          switch did accept is deleted, a per-connection client is monitored again,
          and it is not blocked again before a backoff (10 s, doubling to 300 s);
        * a monitor: the client is not monitored; its next capture copy re-adds the
          monitor, but not before a backoff either;
        * a capture flow, or a refused delete: logged and counted only.

        Every error is counted by flow kind (``flow_errors_total``).
        """
        self.flow_errors_total[error.kind_name] += 1
        log.error(
            "dpid %s: switch refused %s of our %s flow %s: %s",
            error.dpid,
            error.command,
            error.kind_name,
            error.flow.get("match"),
            error.reason,
        )
        dpid = error.dpid
        match = error.flow.get("match")
        found = flows.client_from_match(match) if isinstance(match, dict) else None
        if dpid not in self._dpids or found is None or error.command != "add":
            return []
        client, server_port = found
        if error.kind is Kind.BLOCK:
            return self._block_refused(dpid, client, server_port, error.reason, now)
        if error.kind is Kind.MONITOR and self.monitors.get(dpid, client) is not None:
            self.monitors.back_off(dpid, client, now)
            return self._forget(dpid, client, delete_flow=False)
        return []

    # --- timers -----------------------------------------------------------------

    @locked
    def poll_requests(self, now: Instant) -> list[RequestFlowStats]:
        """One cookie-filtered flow-stats request per connected switch that is due.

        A switch without monitored clients is not polled (nothing to measure). A
        switch whose replies are costly to judge (tens of thousands of clients) is
        polled less often than ``poll_interval_s`` (:mod:`.polling`).
        """
        cookie, mask = flows.monitor_poll_selector()
        requests = []
        for dpid in self._dpids:
            if not self.enforcer.is_up(dpid) or not self.monitors.count(dpid):
                continue
            if self.polls.due(dpid, now.mono, self.settings.poll_interval_s):
                requests.append(RequestFlowStats(dpid, cookie, mask, table_id=0))
        return requests

    @locked
    def record_poll_cost(self, dpid: str, seconds: float) -> None:
        """How long judging the last reply of ``dpid`` took (the shell measures it)."""
        if dpid in self._dpids:
            self.polls.record_cost(dpid, seconds)

    @locked
    def tick(self, now: Instant) -> list[AnyCommand]:
        """End blocks whose expiry passed unnoticed; forget clients no poll reports.

        Normally a FLOW_REMOVED ends a block and an idle-timeout FLOW_REMOVED ends a
        monitor; this catches the ones lost while a switch was away.
        """
        commands: list[AnyCommand] = []
        for prefix_block in self.floods.expire(now):
            commands += self.enforcer.prefix_unblock(prefix_block)
        self.blocks.expire_backoffs(now)
        self.monitors.expire_backoffs(now)
        settings = self.settings
        for dpid in self._dpids:
            for target, block in self.blocks.active(dpid):
                if block.remaining(now.wall) < -EXPIRY_GRACE_S:
                    self.blocks.end(block, UnblockReason.EXPIRED, now, "timer")
                    commands += self.enforcer.unblock(dpid, target)
            if not self.enforcer.is_up(dpid):
                continue
            interval = self.polls.interval(dpid, settings.poll_interval_s)
            forget_after = settings.monitor_idle_timeout_s + 3 * interval
            for client in self.monitors.silent(dpid, now, forget_after):
                commands += self._forget(dpid, client, delete_flow=True)
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
        self._know(dpid)
        self.polls.restart(dpid)
        clients = list(self.monitors.items(dpid))
        for _, monitored in clients:
            monitored.installed_at = now.mono
            monitored.last_seen = now.mono
            monitored.tracker = RateTracker()
        commands = self.enforcer.restore(dpid, clients)
        for target, block in self.blocks.active(dpid):
            if block.remaining(now.wall) < 1:
                self.blocks.end(block, UnblockReason.EXPIRED, now, "expired while away")
                continue
            commands += self._install_block(dpid, target, block, now)
        for prefix_block in self.floods.restore(dpid, now):
            commands += self.enforcer.prefix_block(prefix_block, now)
        return commands

    @locked
    def switch_down(self, dpid: str) -> None:
        """The connection is gone: keep clients and blocks, forget meter support."""
        if dpid in self._dpids:
            self.enforcer.disconnected(dpid)
            self.polls.restart(dpid)

    @locked
    def stop(self, dpid: str, now: Instant) -> None:
        """We were disabled on ``dpid`` (the dispatcher deletes our flows): forget it."""
        if dpid not in self._dpids:
            return
        for block in self.blocks.forget_switch(dpid):
            self.blocks.end(block, UnblockReason.STOPPED, now, "module disabled on the switch")
        self.floods.stop(dpid, now)
        for collaborator in (
            self.monitors,
            self.enforcer,
            self.polls,
            self.address_totals,
        ):
            collaborator.forget_switch(dpid)
        self.blocks.drop_switch(dpid)
        del self._dpids[dpid]

    @locked
    def set_meter_support(self, dpid: str, support: MeterSupport, now: Instant) -> list[AnyCommand]:
        """The switch's meter features arrived: the capture meter, and meter mode's meters."""
        self._know(dpid)
        return self.enforcer.set_meter_support(dpid, support, self.monitors.items(dpid), now)

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
        target, duration = guards.manual_block_request(
            ip, port, duration, reason, default_duration=self.settings.block_duration_s
        )
        refusal = guards.protected_refusal(
            target.ip,
            configured=self.settings.is_protected(target.ip),
            learned=target.ip in self.servers,
        )
        if refusal is not None:
            raise InvalidRequestError(refusal)
        self._known(dpid)
        if self.settings.is_whitelisted(target.ip):
            raise WhitelistedError(f"{target.ip} is whitelisted and is never blocked")
        monitored = self.monitors.get(dpid, target)
        server_ports = (
            (monitored.server_port,) if monitored is not None else self.settings.xmpp_ports
        )
        previous = self.blocks.get(dpid, target)
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
        commands = self._start_block(dpid, target, record, now=now)
        return record, commands, previous is not None

    @locked
    def unblock(self, dpid: str, ip: str, port: int | None, now: Instant) -> list[AnyCommand]:
        """Lift a block by hand. Raises InvalidRequestError, UnknownSwitchError, NotBlockedError."""
        try:
            target = Client.of(ip, port)
        except ValueError as error:
            raise InvalidRequestError(str(error)) from None
        self._known(dpid)
        block = self.blocks.get(dpid, target)
        if block is None:
            raise NotBlockedError(f"{target} is not blocked on switch {dpid}")
        self.blocks.end(block, UnblockReason.MANUAL, now, "unblocked over REST")
        self.offences.forget(target.ip)  # the operator forgave it: the next offence is a first
        return self.enforcer.unblock(dpid, target)

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
        enforcer = self.enforcer
        commands: list[AnyCommand] = []
        for dpid in self._dpids:
            if effects.whitelist_changed:
                commands += self._apply_whitelist(dpid, now)
            if not enforcer.is_up(dpid):
                continue
            if effects.reinstall_capture:
                commands += enforcer.replace_capture(dpid)
                ports = set(update.settings.xmpp_ports)
                for client, monitored in self.monitors.items(dpid):
                    if monitored.server_port not in ports:
                        commands += self._forget(dpid, client, delete_flow=True)
            if effects.remeter:
                if old.mode is Mode.METER:
                    commands += enforcer.unmeter(dpid, self.monitors.items(dpid))
                if update.settings.mode is Mode.METER and enforcer.meters_usable(dpid):
                    commands += enforcer.remeter(dpid, self.monitors.items(dpid), now)
            elif effects.modify_meters and enforcer.meters_usable(dpid):
                commands += enforcer.modify_meters(dpid, self.monitors.items(dpid))
        return update, commands

    # --- snapshots (REST, dashboard, metrics) ---------------------------------------

    def _selected(self, dpid: str | None) -> list[str]:
        if dpid is None:
            return sorted(self._dpids)
        self._known(dpid)
        return [dpid]

    @locked
    def known_switches(self) -> list[str]:
        """Every dpid with state, sorted."""
        return sorted(self._dpids)

    @locked
    def monitored(self, dpid: str | None = None) -> list[dict[str, Any]]:
        """Monitored clients with their last rates (REST, dashboard, metrics)."""
        return [row for switch_id in self._selected(dpid) for row in self.monitors.rows(switch_id)]

    @locked
    def blocked(self, dpid: str | None = None) -> list[dict[str, Any]]:
        """Active blocks with since, expires and reason."""
        return [row for switch_id in self._selected(dpid) for row in self.blocks.rows(switch_id)]

    @locked
    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Newest-last block/unblock/flag events (bounded)."""
        return self.history_log.events(limit)

    @locked
    def status(self, wall_now: float | None = None) -> dict[str, Any]:
        """Per switch: connection, effective mode (and why it differs), counts."""
        enforcer = self.enforcer
        switches = {
            dpid: {
                **enforcer.switch_status(dpid),
                "monitored": self.monitors.count(dpid),
                "blocked": self.blocks.count(dpid),
            }
            for dpid in sorted(self._dpids)
        }
        wall = time.time() if wall_now is None else wall_now
        return {
            "mode": self.settings.mode.value,
            "switches": switches,
            "blocks_total": dict(self.blocks_total),
            "unblocks_total": dict(self.unblocks_total),
            "flags_total": self.history_log.flags_total,
            "flow_errors_total": dict(self.flow_errors_total),
            "meter_fallbacks": enforcer.meter_fallbacks,
            "unmonitored_total": dict(self.monitors.unmonitored_total),
            "prefix_blocks": [block.to_json(wall) for block in self.floods.prefixes.all()],
            "server_addresses": {
                "protected": list(self.settings.protected_addresses),
                "learned": self.servers.learned(),
                "learned_overflow": self.servers.overflow,
            },
            "capture": {
                "meter_rate_pps": self.capture.meter_rate_pps,
                "meter_burst": self.capture.meter_burst,
                "max_per_switch": self.capture.max_per_switch,
                "max_per_address": self.capture.max_per_address,
            },
        }

    # --- sequences of collaborators ---------------------------------------------------

    def _start_monitoring(
        self, dpid: str, client: Client, server_port: int, now: Instant
    ) -> list[AnyCommand]:
        whitelisted = self.settings.is_whitelisted(client.ip)
        monitored = self.monitors.add(dpid, client, server_port, now, whitelisted=whitelisted)
        return self.enforcer.monitor(dpid, client, monitored)

    def _forget(self, dpid: str, client: Client, *, delete_flow: bool) -> list[AnyCommand]:
        monitored = self.monitors.pop(dpid, client)
        if monitored is None:
            return []
        return self.enforcer.unmonitor(dpid, client, monitored, delete_flow=delete_flow)

    def _start_block(
        self,
        dpid: str,
        target: Client,
        record: BlockRecord,
        *,
        now: Instant,
        monitored: Monitored | None = None,
        count_as: str | None = None,
    ) -> list[AnyCommand]:
        """Record the block, send its drop flows; the monitors it covers go."""
        self.blocks.start(target, record, now=now, monitored=monitored, count_as=count_as)
        commands: list[AnyCommand] = []
        if self.enforcer.is_up(dpid):
            commands += self._install_block(dpid, target, record, now)
        # The monitor flows the block covers go: they would only count drops.
        covered = [target] if target.port is not None else self.monitors.of_address(dpid, target.ip)
        for client in covered:
            commands += self._forget(dpid, client, delete_flow=True)
        return commands

    def _install_block(
        self, dpid: str, target: Client, record: BlockRecord, now: Instant
    ) -> list[AnyCommand]:
        self.blocks.installed(dpid, target, now)
        return self.enforcer.block(dpid, target, record, now)

    def _heal_block(self, block: BlockRecord, now: Instant) -> list[AnyCommand]:
        if not self.blocks.heal_due(block, now):
            return []
        target = Client(block.ip, block.port)
        log.info(
            "dpid %s: drop flow of blocked %s missing on the switch; re-adding", block.dpid, target
        )
        return self._install_block(block.dpid, target, block, now)

    def _apply_whitelist(self, dpid: str, now: Instant) -> list[AnyCommand]:
        settings = self.settings
        self.monitors.set_whitelisted(dpid, settings.is_whitelisted)
        commands: list[AnyCommand] = []
        for block in self.blocks.now_whitelisted(
            dpid, lambda ip: settings.is_whitelisted(ip) or settings.is_protected(ip)
        ):
            if settings.is_whitelisted(block.ip):
                self.blocks.end(block, UnblockReason.WHITELISTED, now, "whitelisted")
            else:
                self.blocks.end(block, UnblockReason.PROTECTED, now, "protected_addresses")
            commands += self.enforcer.unblock(dpid, Client(block.ip, block.port))
        return commands

    def _exemption(self, ip: str) -> str | None:
        """Why the automatic policy never blocks ``ip`` (policy.py, point 7), or None."""
        return policy.address_exemption(ip, self.settings)

    def _block_refused(
        self, dpid: str, client: Client, server_port: int, why: str, now: Instant
    ) -> list[AnyCommand]:
        rolled = self.blocks.roll_back(dpid, client, why, now)
        if rolled is None:
            return []  # rolled back already (another XMPP port's drop flow of the same block)
        block, _ = rolled
        if not block.manual:
            self.offences.pardon(client.ip)  # a block that never was is no offence
        commands: list[AnyCommand] = []
        if self.enforcer.is_up(dpid):
            # Drop flows of the same block on other XMPP ports may have been accepted.
            commands += self.enforcer.unblock(dpid, client)
            if client.port is not None and self.monitors.get(dpid, client) is None:
                commands += self._start_monitoring(dpid, client, server_port, now)
        return commands

    def _act(
        self,
        dpid: str,
        client: Client,
        monitored: Monitored,
        *,
        usage: Usage,
        verdict: Verdict,
        now: Instant,
    ) -> list[AnyCommand]:
        """A sustained excess: block it, or flag it once where the policy says not to block."""
        settings = self.settings
        elapsed = max(usage.elapsed, 1e-9)
        ppm = usage.packets / elapsed * 60
        payload_bpm = usage.payload_bytes / elapsed * 60
        buckets = monitored.buckets
        why_not = policy.why_not_block(
            exempt="whitelisted" if monitored.whitelisted else self._exemption(client.ip),
            monitor_mode=settings.mode is Mode.MONITOR,
            metered=monitored.meter_id is not None,
            dry_since=None if buckets is None else buckets.dry_since,
            now=now.mono,
            sustain_s=settings.sustain_s,
        )
        if why_not is not None:
            if not monitored.flagged:
                monitored.flagged = True
                self.history_log.record(
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
        if self.blocks.backing_off(dpid, client, now):
            return []  # its drop flow was refused lately (table full); monitored meanwhile
        return self._sentence(
            dpid,
            client,
            server_port=monitored.server_port,
            reason=verdict.reason,
            ppm=ppm,
            payload_bpm=payload_bpm,
            now=now,
            monitored=monitored,
        )

    def _sentence(
        self,
        dpid: str,
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
        """Count the offence of ``client``'s address; block for what the policy gives it."""
        settings = self.settings
        offence = self.offences.record(client.ip, now.wall, settings.offence_window_s)
        given = policy.sentence(
            offence,
            block_duration_s=settings.block_duration_s,
            block_max_s=settings.block_max_s,
            address_block_after=settings.address_block_after,
        )
        whole = whole_address or given.whole_address or server_port is None
        target = Client(client.ip, None) if whole else client
        ports = settings.xmpp_ports if whole or server_port is None else (server_port,)
        record = BlockRecord(
            dpid=dpid,
            ip=client.ip,
            port=target.port,
            server_ports=tuple(ports),
            since=now.wall,
            expires=now.wall + given.duration_s,
            reason=policy.sentence_reason(
                reason,
                given,
                ip=client.ip,
                offence_window_s=settings.offence_window_s,
                address_block_after=settings.address_block_after,
                whole_already=whole_address,
            ),
            manual=False,
            packets_per_min=ppm,
            payload_bytes_per_min=payload_bpm,
        )
        return self._start_block(dpid, target, record, now=now, monitored=monitored)

    def _address_totals(
        self,
        dpid: str,
        judged: list[tuple[Client, Monitored, Usage, Verdict]],
        now: Instant,
    ) -> list[AnyCommand]:
        """``per_ip_aggregate``: block the addresses whose connections together flood."""
        settings = self.settings
        clients = self.monitors.clients(dpid)
        usages = [
            (client.ip, usage)
            for client, monitored, usage, _ in judged
            # not whitelisted, nor blocked by itself a moment ago
            if not monitored.whitelisted and client in clients
        ]
        overs = self.address_totals.judge(
            dpid,
            usages,
            limit=settings.aggregate_messages_per_s,
            sustain_s=settings.sustain_s,
            now=now.mono,
            blocked=lambda ip: self.blocks.get(dpid, Client(ip, None)) is not None,
        )
        commands: list[AnyCommand] = []
        for over in overs:
            target = Client(over.ip, None)
            if self.blocks.backing_off(dpid, target, now) or self._exemption(over.ip):
                continue  # refused lately; or protected / never a client (whitelisted: not summed)
            if policy.never_blocked(monitor_mode=settings.mode is Mode.MONITOR, exempt=False):
                self.history_log.record(
                    HistoryEvent(
                        now.wall,
                        EventKind.FLAG,
                        dpid,
                        over.ip,
                        None,
                        over.reason,
                        False,
                        over.packets_per_min,
                    )
                )
                continue
            commands += self._sentence(
                dpid,
                target,
                server_port=None,
                reason=over.reason,
                ppm=over.packets_per_min,
                payload_bpm=None,
                now=now,
                whole_address=True,
            )
        return commands

    def _connection_flood(
        self, packet_in: DecodedPacketIn, client: Client, now: Instant
    ) -> list[AnyCommand]:
        """Count a new connection; the blocks of the connection floods it reveals."""
        settings = self.settings
        dpid = packet_in.dpid
        commands: list[AnyCommand] = []
        for decision in self.floods.new_connection(packet_in, client, now, settings):
            if decision.scope is Scope.PREFIX:
                up = self.enforcer.is_up(dpid)
                block = self.floods.start_prefix(decision, settings.xmpp_ports, now, up=up)
                if block is not None:
                    commands += self.enforcer.prefix_block(block, now)
            else:
                record = self.floods.address_block(decision, client, settings.xmpp_ports, now)
                target = Client(client.ip, None)
                commands += self._start_block(dpid, target, record, now=now, count_as=ADDRESS_KIND)
        return commands
