"""Enforcement: which flows and meters each decision means on a switch, and the switch's link.

Everything the rate limiter sends is built here, from the flow templates of
:mod:`.flows` and :mod:`.prefix_blocks`: capture flows (through the capture meter
where the switch has meters), monitor flows (with meter mode's per-client meter),
drop flows of blocks, and every meter modification. Nothing is sent to a switch
that is not connected (its state is restored whole at RESTORE).

The state here is the switch's side only: connected or not, what its
OFPMP_METER_FEATURES reply said (:class:`~.state.MeterSupport`), and which meter
ids meter mode has handed out. A switch is metered only when that reply allows it;
otherwise, or once its meter ids run out, clients fall back to blocking (counted in
``meter_fallbacks``). Switching mode on or off rewrites every monitor of a switch:
a monitor must be re-added without its meter BEFORE the meter goes, because
deleting a meter deletes the flows that use it.

The capture meter (:mod:`.capture_bounds`) is here too, in every mode: it takes the
switch's highest meter id (clients get the others), and every delete of all
meters (reconnect, mode change) is followed by putting it and the capture flows
that use it back.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.capture_bounds import (
    CaptureBounds,
    capture_meter_id,
    client_meter_count,
)
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.prefix_blocks import (
    PrefixBlock,
    delete_prefix_block,
    prefix_block_flows,
)
from napps.xmpp_ofc.rate_limiter.records import BlockRecord
from napps.xmpp_ofc.rate_limiter.settings_model import LimiterSettings, Mode
from napps.xmpp_ofc.rate_limiter.state import Instant, MeterIds, MeterSupport, Monitored
from xmpp_ofc.commands import AnyCommand, DeleteFlows, InstallFlow, ModifyMeter
from xmpp_ofc.openflow.meter import OFPM_ALL

log = logging.getLogger(__name__)

Clients = Iterable[tuple[Client, Monitored]]


class _Link:
    __slots__ = ("meter_ids", "meter_support", "up")

    def __init__(self) -> None:
        self.up = False
        self.meter_support: MeterSupport | None = None
        self.meter_ids: MeterIds | None = None


class Enforcer:
    """The commands for each change, per switch; the switches' links and meters."""

    def __init__(self, settings: LimiterSettings, capture: CaptureBounds | None = None) -> None:
        #: The coordinator replaces it when settings change.
        self.settings = settings
        self.capture = capture or CaptureBounds()
        self._links: dict[str, _Link] = {}
        #: Clients that meter mode could not give a meter (policed by blocking).
        self.meter_fallbacks = 0

    def _link(self, dpid: str) -> _Link:
        found = self._links.get(dpid)
        if found is None:
            found = self._links[dpid] = _Link()
        return found

    # --- the link ------------------------------------------------------------------------

    def is_up(self, dpid: str) -> bool:
        """Whether ``dpid`` is connected (commands for it are sent)."""
        found = self._links.get(dpid)
        return found is not None and found.up

    def connected(self, dpid: str) -> None:
        """``dpid`` is connected (a packet-in or a RESTORE came from it)."""
        self._link(dpid).up = True

    def disconnected(self, dpid: str) -> None:
        """Gone: meter support is asked again at the next handshake (maybe another switch)."""
        link = self._links.get(dpid)
        if link is not None:
            link.up = False
            link.meter_support = None
            link.meter_ids = None

    def forget_switch(self, dpid: str) -> None:
        """The module was disabled on ``dpid``."""
        self._links.pop(dpid, None)

    # --- meters and mode -----------------------------------------------------------------

    def meter_support(self, dpid: str) -> MeterSupport | None:
        """What the switch's meter features said (None: not known yet)."""
        found = self._links.get(dpid)
        return None if found is None else found.meter_support

    def meters_usable(self, dpid: str) -> bool:
        """Whether the switch has packets/s DROP meters."""
        support = self.meter_support(dpid)
        return support is not None and support.usable

    def meters_in_use(self, dpid: str) -> bool:
        """Whether monitors of ``dpid`` get a meter each (meter mode, and meters usable)."""
        return self.settings.mode is Mode.METER and self.meters_usable(dpid)

    def effective_mode(self, dpid: str) -> tuple[Mode, str]:
        """The mode ``dpid`` is really in, and why it differs from the setting."""
        mode = self.settings.mode
        if mode is not Mode.METER:
            return mode, ""
        support = self.meter_support(dpid)
        if support is None:
            return Mode.BLOCK, "meter mode: switch has not reported meter support (yet); blocking"
        if not support.usable:
            return Mode.BLOCK, f"meter mode: {support.why_not()}; blocking"
        return Mode.METER, ""

    def switch_status(self, dpid: str) -> dict[str, Any]:
        """Connected, effective mode (and why it differs), capture meter, meter support."""
        mode, note = self.effective_mode(dpid)
        support = self.meter_support(dpid)
        return {
            "connected": self.is_up(dpid),
            "mode": mode.value,
            "mode_note": note,
            "capture_meter_id": capture_meter_id(support),
            "meter_support": None
            if support is None
            else {
                "max_meter": support.max_meter,
                "band_drop": support.band_drop,
                "pps": support.pps,
            },
        }

    def set_meter_support(self, dpid: str, support: MeterSupport, clients: Clients, now: Instant):
        """The switch's meter features arrived: the capture meter, and meter mode's meters.

        Without usable meters the capture flows stay unmetered and the dispatcher's
        per-switch packet-in budget is the only bound (README "Capture-path bounds").
        """
        self._link(dpid).meter_support = support
        if not support.usable:
            log.warning(
                "dpid %s: %s: capture flows unmetered%s",
                dpid,
                support.why_not(),
                "; meter mode falls back to block" if self.settings.mode is Mode.METER else "",
            )
            return []
        if self.settings.mode is not Mode.METER:
            return self.capture_path(dpid, fresh_meter=True)
        return self.remeter(dpid, clients, now)

    def _client_meter_ids(self, link: _Link) -> MeterIds:
        return MeterIds(client_meter_count(link.meter_support))  # type: ignore[arg-type]

    def _meter_mod(self, dpid: str, command: str, meter_id: int) -> ModifyMeter:
        return ModifyMeter(
            dpid,
            command,
            meter_id,
            rate_pps=self.settings.meter_rate_pps,
            burst=self.settings.meter_burst_packets,
        )

    def _attach_meter(self, dpid: str, monitored: Monitored) -> list[AnyCommand]:
        link = self._link(dpid)
        if link.meter_ids is None:
            link.meter_ids = self._client_meter_ids(link)
        meter_id = link.meter_ids.take()
        if meter_id is None:
            self.meter_fallbacks += 1
            return []  # no meter left: this client is policed by blocking
        monitored.meter_id = meter_id
        return [self._meter_mod(dpid, "add", meter_id)]

    def _detach_meter(self, dpid: str, monitored: Monitored) -> list[AnyCommand]:
        if monitored.meter_id is None:
            return []
        meter_id, monitored.meter_id = monitored.meter_id, None
        link = self._link(dpid)
        if link.meter_ids is not None:
            link.meter_ids.give_back(meter_id)
        if not link.up:
            return []
        return [ModifyMeter(dpid, "delete", meter_id)]

    def remeter(self, dpid: str, clients: Clients, now: Instant) -> list[AnyCommand]:
        """Delete every meter, then give each client a meter and re-add its monitor.

        Re-adding a flow with the same match and priority replaces it in place (no
        FLOW_REMOVED); its counters restart, which the rate tracker sees as a reset.
        The capture meter and flows go back right after the delete of all meters.
        """
        commands: list[AnyCommand] = [ModifyMeter(dpid, "delete", OFPM_ALL)]
        commands += self.capture_path(dpid, fresh_meter=True)
        link = self._link(dpid)
        link.meter_ids = self._client_meter_ids(link)
        for client, monitored in clients:
            monitored.meter_id = None
            commands += self._attach_meter(dpid, monitored)
            monitored.installed_at = now.mono
            commands.append(InstallFlow(dpid, self._monitor_flow(client, monitored)))
        return commands

    def unmeter(self, dpid: str, clients: Clients) -> list[AnyCommand]:
        """Re-add monitors without meters first: deleting a meter deletes its flows."""
        commands: list[AnyCommand] = []
        had_meters = False
        for client, monitored in clients:
            if monitored.meter_id is None:
                continue
            had_meters = True
            monitored.meter_id = None
            commands.append(InstallFlow(dpid, self._monitor_flow(client, monitored)))
        self._link(dpid).meter_ids = None
        if had_meters or self.meters_usable(dpid):
            commands.append(ModifyMeter(dpid, "delete", OFPM_ALL))
            commands += self.capture_path(dpid, fresh_meter=True)
        return commands

    def modify_meters(self, dpid: str, clients: Clients) -> list[AnyCommand]:
        """New meter rate or burst: every client meter of ``dpid`` modified in place."""
        return [
            self._meter_mod(dpid, "modify", m.meter_id)
            for _, m in clients
            if m.meter_id is not None
        ]

    # --- capture ---------------------------------------------------------------------------

    def capture_path(self, dpid: str, *, fresh_meter: bool) -> list[AnyCommand]:
        """The capture flows, through the capture meter where the switch has meters.

        ``fresh_meter``: (re)create the meter first. Delete before add: a meter left
        from before (controller restart) would make the add fail; deleting it also
        deletes the capture flows using it, which the next commands re-add.
        """
        meter_id = capture_meter_id(self.meter_support(dpid))
        commands: list[AnyCommand] = []
        if meter_id is not None and fresh_meter:
            bounds = self.capture
            commands += [
                ModifyMeter(dpid, "delete", meter_id),
                ModifyMeter(
                    dpid,
                    "add",
                    meter_id,
                    rate_pps=bounds.meter_rate_pps,
                    burst=bounds.meter_burst,
                ),
            ]
        ports = self.settings.xmpp_ports
        commands += [InstallFlow(dpid, f) for f in flows.capture_flows(ports, meter_id=meter_id)]
        return commands

    def replace_capture(self, dpid: str) -> list[AnyCommand]:
        """New XMPP ports: the capture flows replaced (the caller forgets monitors of old ports)."""
        commands: list[AnyCommand] = [DeleteFlows(dpid, flows.delete_capture())]
        return commands + self.capture_path(dpid, fresh_meter=False)

    def restore(self, dpid: str, clients: Clients) -> list[AnyCommand]:
        """A (re)connected switch: meters cleared, capture path, each client's meter and monitor.

        The clients' old meters are gone with the switch's state: each gets a new one.
        """
        link = self._link(dpid)
        link.up = True
        commands: list[AnyCommand] = []
        metered = self.meters_in_use(dpid)
        if metered:
            commands.append(ModifyMeter(dpid, "delete", OFPM_ALL))
            link.meter_ids = self._client_meter_ids(link)
        commands += self.capture_path(dpid, fresh_meter=True)
        for client, monitored in clients:
            monitored.meter_id = None
            if metered:
                commands += self._attach_meter(dpid, monitored)
            commands.append(InstallFlow(dpid, self._monitor_flow(client, monitored)))
        return commands

    # --- monitors ----------------------------------------------------------------------------

    def _monitor_flow(self, client: Client, monitored: Monitored) -> dict[str, Any]:
        return flows.monitor_flow(
            client,
            monitored.server_port,
            idle_timeout=self.settings.monitor_idle_timeout_s,
            meter_id=monitored.meter_id,
        )

    def monitor(self, dpid: str, client: Client, monitored: Monitored) -> list[AnyCommand]:
        """A newly monitored connection: its meter (meter mode) and its monitor flow."""
        commands: list[AnyCommand] = []
        if self.meters_in_use(dpid):
            commands += self._attach_meter(dpid, monitored)
        commands.append(InstallFlow(dpid, self._monitor_flow(client, monitored)))
        return commands

    def reinstall_monitor(
        self, dpid: str, client: Client, monitored: Monitored
    ) -> list[AnyCommand]:
        """The monitor flow again (the switch lost it)."""
        return [InstallFlow(dpid, self._monitor_flow(client, monitored))]

    def unmonitor(
        self, dpid: str, client: Client, monitored: Monitored, *, delete_flow: bool
    ) -> list[AnyCommand]:
        """A connection no longer monitored: its flow deleted (``delete_flow``), its meter freed."""
        commands: list[AnyCommand] = []
        if delete_flow and self.is_up(dpid):
            commands.append(DeleteFlows(dpid, flows.delete_monitor(client, monitored.server_port)))
        return commands + self._detach_meter(dpid, monitored)

    # --- blocks --------------------------------------------------------------------------------

    @staticmethod
    def block(dpid: str, target: Client, record: BlockRecord, now: Instant) -> list[AnyCommand]:
        """The drop flows of ``record``, with its remaining time as hard timeout."""
        remaining = min(flows.MAX_TIMEOUT, max(1, math.ceil(record.remaining(now.wall))))
        return [
            InstallFlow(dpid, flow)
            for flow in flows.block_flows(target, record.server_ports, remaining)
        ]

    def unblock(self, dpid: str, target: Client, *, if_up: bool = True) -> list[AnyCommand]:
        """Delete ``target``'s drop flows (every XMPP port), if the switch is connected.

        ``if_up`` False: the switch just told us about the block (FLOW_REMOVED).
        """
        if if_up and not self.is_up(dpid):
            return []
        return [DeleteFlows(dpid, flows.delete_block(target))]

    @staticmethod
    def prefix_block(block: PrefixBlock, now: Instant) -> list[AnyCommand]:
        """The drop flows of a prefix block, with its remaining time."""
        return [InstallFlow(block.dpid, flow) for flow in prefix_block_flows(block, now.wall)]

    def prefix_unblock(self, block: PrefixBlock) -> list[AnyCommand]:
        """Delete a prefix block's drop flows, if its switch is connected."""
        if not self.is_up(block.dpid):
            return []
        return [DeleteFlows(block.dpid, delete_prefix_block(block.prefix))]
