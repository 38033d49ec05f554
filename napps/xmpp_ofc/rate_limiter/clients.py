"""Monitored client connections: start, adopt, heal, forget.

A capture packet-in starts monitoring a connection (one monitor flow, idle-timed
out by the switch); a monitor found in a flow-stats reply that we do not know
(state lost) is adopted; a capture copy from a client we monitor means its flow is
missing, so it is re-added (at most once a second). The bounds per switch
and per address (:mod:`.capture_bounds`) keep a SYN flood from spoofed ports from
exhausting memory or the flow table.
"""

from __future__ import annotations

import logging
from typing import Any

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.capture_bounds import LOG_INTERVAL_S, Unmonitored
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.registry import SwitchRegistry
from napps.xmpp_ofc.rate_limiter.state import (
    REINSTALL_GAP_S,
    STALE_SLACK_S,
    Instant,
    Monitored,
    SwitchState,
    backing_off,
)
from xmpp_ofc import cookies
from xmpp_ofc.commands import AnyCommand, DeleteFlows, InstallFlow
from xmpp_ofc.cookies import Kind
from xmpp_ofc.messages import DecodedPacketIn
from xmpp_ofc.packet import TCP_RST

log = logging.getLogger(__name__)


class ClientMonitoring(SwitchRegistry):
    """The monitored clients of each switch and their monitor flows.

    Uses ``_block_covering`` of :class:`~.blocks.BlockKeeping` and the meter
    helpers of :class:`~.meters.MeterPolicing`.
    """

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
            monitored = switch.clients.get(client)
            # The cookie id was computed once, at the install (parsing the address
            # for every entry was half the cost of a 50k-client poll).
            if monitored is None or monitored.cookie_id != ident:
                return None
            if match.get("tp_dst") != monitored.server_port:
                return None
            return client, monitored
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
        if len(switch.clients) >= self.capture.max_per_switch:
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

    def _may_monitor(self, dpid: str, switch: SwitchState, client: Client, now: Instant) -> bool:
        """False past a monitor bound (counted, logged), or while a refused monitor backs off."""
        bound = self._bound_reached(switch, client)
        if bound is not None:
            self.unmonitored_total[bound] += 1
            if now.mono - switch.bound_logged >= LOG_INTERVAL_S:
                switch.bound_logged = now.mono
                log.warning(
                    "dpid %s: %s not monitored: %s (%d on the switch, %d from %s; "
                    "xmpp_ofc_unmonitored_connections_total)",
                    dpid,
                    client,
                    bound.value,
                    len(switch.clients),
                    switch.clients.of_address(client.ip),
                    client.ip,
                )
            return False
        # A monitor the switch refused lately (table full) is not asked for again yet.
        return not backing_off(switch.monitor_backoff, client, now)

    def _bound_reached(self, switch: SwitchState, client: Client) -> Unmonitored | None:
        if len(switch.clients) >= self.capture.max_per_switch:
            return Unmonitored.SWITCH_BOUND
        if switch.clients.of_address(
            client.ip
        ) >= self.capture.max_per_address and not self.settings.is_whitelisted(client.ip):
            return Unmonitored.ADDRESS_BOUND
        return None

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

    def _monitor_removed(
        self, dpid: str, switch: SwitchState, client: Client, age: float, now: Instant
    ) -> list[AnyCommand]:
        monitored = switch.clients.get(client)
        if monitored is None or self._is_stale(age, monitored.installed_at, now):
            return []
        return self._forget_client(dpid, switch, client, delete_flow=False)
