"""Meter mode: each monitored client policed by its own packets/s DROP meter.

A switch is metered only when its OFPMP_METER_FEATURES reply allows it
(:class:`~.state.MeterSupport`); otherwise, or once its meter ids run out, clients
fall back to blocking (counted in ``meter_fallbacks``). Switching mode on or off
rewrites every monitor of a switch: a monitor must be re-added without its meter
BEFORE the meter goes, because deleting a meter deletes the flows that use it.

The capture meter (:mod:`.capture_bounds`) lives here too, in every mode: it takes
the switch's highest meter id (clients get the others), and every delete of all
meters (reconnect, mode change) is followed by putting it and the capture flows
that use it back.
"""

from __future__ import annotations

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.capture_bounds import capture_meter_id, client_meter_count
from napps.xmpp_ofc.rate_limiter.registry import SwitchRegistry
from napps.xmpp_ofc.rate_limiter.settings_model import Mode
from napps.xmpp_ofc.rate_limiter.state import Instant, MeterIds, Monitored, SwitchState
from xmpp_ofc.commands import AnyCommand, DeleteFlows, InstallFlow, ModifyMeter
from xmpp_ofc.openflow.meter import OFPM_ALL


class MeterPolicing(SwitchRegistry):
    """Meter ids, meter modifications and the mode a switch is really in.

    Uses ``_monitor_flow`` of :class:`~.clients.ClientMonitoring`.
    """

    def _meters_usable(self, switch: SwitchState) -> bool:
        return switch.meter_support is not None and switch.meter_support.usable

    def _meters_in_use(self, switch: SwitchState) -> bool:
        return self.settings.mode is Mode.METER and self._meters_usable(switch)

    def _effective_mode(self, switch: SwitchState) -> tuple[Mode, str]:
        mode = self.settings.mode
        if mode is not Mode.METER:
            return mode, ""
        if switch.meter_support is None:
            return Mode.BLOCK, "meter mode: switch has not reported meter support (yet); blocking"
        if not switch.meter_support.usable:
            return Mode.BLOCK, f"meter mode: {switch.meter_support.why_not()}; blocking"
        return Mode.METER, ""

    def _capture_path(
        self, dpid: str, switch: SwitchState, *, fresh_meter: bool
    ) -> list[AnyCommand]:
        """The capture flows, through the capture meter where the switch has meters.

        ``fresh_meter``: (re)create the meter first. Delete before add: a meter left
        from before (controller restart) would make the add fail; deleting it also
        deletes the capture flows using it, which the next commands re-add.
        """
        meter_id = capture_meter_id(switch.meter_support)
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

    def _reinstall_capture(self, dpid: str, switch: SwitchState) -> list[AnyCommand]:
        """New XMPP ports: capture flows replaced, monitors of ports gone forgotten."""
        commands: list[AnyCommand] = [DeleteFlows(dpid, flows.delete_capture())]
        commands += self._capture_path(dpid, switch, fresh_meter=False)
        ports = set(self.settings.xmpp_ports)
        gone = [c for c, m in switch.clients.items() if m.server_port not in ports]
        for client in gone:
            commands += self._forget_client(dpid, switch, client, delete_flow=True)
        return commands

    @staticmethod
    def _client_meter_ids(switch: SwitchState) -> MeterIds:
        return MeterIds(client_meter_count(switch.meter_support))  # type: ignore[arg-type]

    def _meter_mod(self, dpid: str, command: str, meter_id: int) -> ModifyMeter:
        return ModifyMeter(
            dpid,
            command,
            meter_id,
            rate_pps=self.settings.meter_rate_pps,
            burst=self.settings.meter_burst_packets,
        )

    def _attach_meter(
        self, dpid: str, switch: SwitchState, monitored: Monitored
    ) -> list[AnyCommand]:
        if switch.meter_ids is None:
            switch.meter_ids = self._client_meter_ids(switch)
        meter_id = switch.meter_ids.take()
        if meter_id is None:
            self.meter_fallbacks += 1
            return []  # no meter left: this client is policed by blocking
        monitored.meter_id = meter_id
        return [self._meter_mod(dpid, "add", meter_id)]

    def _detach_meter(
        self, dpid: str, switch: SwitchState, monitored: Monitored
    ) -> list[AnyCommand]:
        if monitored.meter_id is None:
            return []
        meter_id, monitored.meter_id = monitored.meter_id, None
        if switch.meter_ids is not None:
            switch.meter_ids.give_back(meter_id)
        if not switch.up:
            return []
        return [ModifyMeter(dpid, "delete", meter_id)]

    def _remeter_switch(self, dpid: str, switch: SwitchState, now: Instant) -> list[AnyCommand]:
        """Delete every meter, then give each client a meter and re-add its monitor.

        Re-adding a flow with the same match and priority replaces it in place (no
        FLOW_REMOVED); its counters restart, which the rate tracker sees as a reset.
        The capture meter and flows go back right after the delete of all meters.
        """
        commands: list[AnyCommand] = [ModifyMeter(dpid, "delete", OFPM_ALL)]
        commands += self._capture_path(dpid, switch, fresh_meter=True)
        switch.meter_ids = self._client_meter_ids(switch)
        for client, monitored in switch.clients.items():
            monitored.meter_id = None
            commands += self._attach_meter(dpid, switch, monitored)
            monitored.installed_at = now.mono
            commands.append(InstallFlow(dpid, self._monitor_flow(client, monitored)))
        return commands

    def _unmeter_switch(self, dpid: str, switch: SwitchState) -> list[AnyCommand]:
        """Re-add monitors without meters first: deleting a meter deletes its flows."""
        commands: list[AnyCommand] = []
        had_meters = False
        for client, monitored in switch.clients.items():
            if monitored.meter_id is None:
                continue
            had_meters = True
            monitored.meter_id = None
            commands.append(InstallFlow(dpid, self._monitor_flow(client, monitored)))
        switch.meter_ids = None
        if had_meters or self._meters_usable(switch):
            commands.append(ModifyMeter(dpid, "delete", OFPM_ALL))
            commands += self._capture_path(dpid, switch, fresh_meter=True)
        return commands
