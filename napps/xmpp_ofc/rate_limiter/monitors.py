"""Bookkeeping of monitored connections: who is monitored on which switch, and the bounds.

A capture packet-in starts monitoring a connection; a monitor found in a
flow-stats reply that we do not know (state lost) is adopted; a monitor the switch
refused (table full) backs off before it is asked for again. The bounds per switch
and per address (:mod:`.capture_bounds`) keep a SYN flood from spoofed ports from
exhausting memory or the flow table: past one, a connection is not monitored,
which is counted (``unmonitored_total``) and logged at most once per switch every
``LOG_INTERVAL_S``.

Pure bookkeeping: this module sends nothing (:mod:`.enforcement` says which flows
a change means) and judges nothing (:mod:`.policy`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.capture_bounds import LOG_INTERVAL_S, CaptureBounds, Unmonitored
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.settings_model import header_bytes
from napps.xmpp_ofc.rate_limiter.state import (
    REINSTALL_GAP_S,
    RETRY_MAX_S,
    STALE_SLACK_S,
    Backoff,
    ClientTable,
    Instant,
    Monitored,
    back_off,
    backing_off,
)
from xmpp_ofc import cookies
from xmpp_ofc.cookies import Kind
from xmpp_ofc.messages import DecodedPacketIn
from xmpp_ofc.packet import TCP_RST

log = logging.getLogger(__name__)


def capture_client(packet_in: DecodedPacketIn, xmpp_ports: tuple[int, ...]) -> Client | None:
    """The client of a capture packet-in, or None when it is not one to monitor."""
    decoded = cookies.decode(packet_in.cookie)
    if decoded is None or decoded.kind is not Kind.CAPTURE:
        return None
    packet = packet_in.packet
    if (
        packet.ip_src is None
        or packet.ip_proto != flows.IP_PROTO_TCP
        or packet.tp_src is None
        or packet.tp_dst not in xmpp_ports
        or packet.has_tcp_flag(TCP_RST)  # a reset connection needs no monitor
    ):
        return None
    try:
        return Client.of(packet.ip_src, packet.tp_src)
    except ValueError:
        return None


def is_stale(age: float, installed_at: float, now: Instant) -> bool:
    """A FLOW_REMOVED of a flow older than our last install of it (re-added since)."""
    return age > (now.mono - installed_at) + STALE_SLACK_S


class _SwitchMonitors:
    __slots__ = ("backoff", "bound_logged", "clients")

    def __init__(self) -> None:
        self.clients = ClientTable()
        #: Clients whose monitor flow the switch refused lately (OFPT_ERROR).
        self.backoff: dict[Client, Backoff] = {}
        #: Monotonic time of the last "monitor bound reached" log line.
        self.bound_logged = float("-inf")


class Monitors:
    """The monitored connections of every switch (kept while a switch is away)."""

    def __init__(self, bounds: CaptureBounds | None = None) -> None:
        self.bounds = bounds or CaptureBounds()
        self._switches: dict[str, _SwitchMonitors] = {}
        self.unmonitored_total: Counter[str] = Counter()  # by capture_bounds.Unmonitored

    def _of(self, dpid: str) -> _SwitchMonitors:
        found = self._switches.get(dpid)
        if found is None:
            found = self._switches[dpid] = _SwitchMonitors()
        return found

    def clients(self, dpid: str) -> ClientTable:
        """The switch's monitored connections (read; change them through this class)."""
        found = self._switches.get(dpid)
        return ClientTable() if found is None else found.clients

    def items(self, dpid: str) -> Iterator[tuple[Client, Monitored]]:
        """(client, record) of every connection monitored on ``dpid``."""
        found = self._switches.get(dpid)
        return iter(()) if found is None else iter(list(found.clients.items()))

    def get(self, dpid: str, client: Client) -> Monitored | None:
        """The record of ``client`` on ``dpid``, if monitored."""
        found = self._switches.get(dpid)
        return None if found is None else found.clients.get(client)

    def count(self, dpid: str) -> int:
        """Connections monitored on ``dpid``."""
        found = self._switches.get(dpid)
        return 0 if found is None else len(found.clients)

    def add(
        self, dpid: str, client: Client, server_port: int, now: Instant, *, whitelisted: bool
    ) -> Monitored:
        """Start the record of a newly monitored connection."""
        monitored = Monitored(client, server_port, now, whitelisted)
        self._of(dpid).clients[client] = monitored
        return monitored

    def pop(self, dpid: str, client: Client) -> Monitored | None:
        """Stop monitoring ``client``; its record, or None when it was not monitored."""
        found = self._switches.get(dpid)
        return None if found is None else found.clients.pop(client, None)

    def of_address(self, dpid: str, ip: str) -> list[Client]:
        """Monitored connections of ``ip`` on ``dpid``."""
        found = self._switches.get(dpid)
        if found is None or not found.clients.of_address(ip):
            return []
        return [c for c in found.clients if c.ip == ip]

    def rows(self, dpid: str) -> list[dict[str, Any]]:
        """The switch's monitored connections with their last rates (REST, metrics)."""
        rows = []
        for client, m in self.clients(dpid).items():
            rate = m.tracker.rate
            last = m.tracker.last
            rows.append(
                {
                    "dpid": dpid,
                    "ip": client.ip,
                    "port": client.port,
                    "server_port": m.server_port,
                    "since": m.since,
                    "whitelisted": m.whitelisted,
                    "meter_id": m.meter_id,
                    "over_threshold": m.flagged,
                    "packets_per_s": None if rate is None else rate.packets_per_s,
                    "packets_per_min": None if rate is None else rate.packets_per_min,
                    "bytes_per_s": None if rate is None else rate.bytes_per_s,
                    "payload_bytes_per_min": None
                    if rate is None
                    else rate.payload_bytes_per_min(header_bytes(client.ip_version)),
                    "packet_count": None if last is None else last.packet_count,
                    "byte_count": None if last is None else last.byte_count,
                }
            )
        return rows

    # --- may a connection be monitored? -----------------------------------------------

    def may_monitor(self, dpid: str, client: Client, now: Instant, *, whitelisted: bool) -> bool:
        """False past a monitor bound (counted, logged), or while a refused monitor backs off."""
        switch = self._of(dpid)
        bound = self._bound_reached(switch, client, whitelisted)
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
        return not backing_off(switch.backoff, client, now)

    def _bound_reached(
        self, switch: _SwitchMonitors, client: Client, whitelisted: bool
    ) -> Unmonitored | None:
        if len(switch.clients) >= self.bounds.max_per_switch:
            return Unmonitored.SWITCH_BOUND
        if switch.clients.of_address(client.ip) >= self.bounds.max_per_address and not whitelisted:
            return Unmonitored.ADDRESS_BOUND
        return None

    def back_off(self, dpid: str, client: Client, now: Instant) -> Backoff:
        """The switch refused ``client``'s monitor: not again for 10 s, doubling per refusal."""
        return back_off(self._of(dpid).backoff, client, now)

    def heal_due(self, monitored: Monitored, now: Instant) -> bool:
        """Whether a lost monitor flow may be re-added now (at most once a second)."""
        if now.mono - monitored.last_heal < REINSTALL_GAP_S:
            return False
        monitored.last_heal = now.mono
        monitored.installed_at = now.mono
        return True

    # --- flow-stats entries ----------------------------------------------------------------

    def entry(self, dpid: str, cookie: int, match: Any) -> tuple[Client, Monitored] | None:
        """The monitored connection a flow-stats entry counts, or None.

        Fast path: the cookie id names the client; the match confirms it.
        """
        found = self._switches.get(dpid)
        if found is None:
            return None
        clients = found.clients
        ip = match.get("nw_src")
        if ip is not None:
            client: Client | None = Client(ip, match.get("tp_src"))
            monitored = clients.get(client)
            # The cookie id was computed once, at the install (parsing the address
            # for every entry was half the cost of a 50k-client poll).
            if monitored is not None and monitored.cookie_id != cookie & cookies.MAX_ID:
                monitored = None
        else:
            parsed = flows.client_from_match(match)
            client = None if parsed is None else parsed[0]
            monitored = None if client is None else clients.get(client)
        if monitored is None or match.get("tp_dst") != monitored.server_port:
            return None
        return client, monitored  # type: ignore[return-value]

    def adopt(
        self,
        dpid: str,
        match: Any,
        now: Instant,
        *,
        whitelisted: Callable[[str], bool],
        blocked: Callable[[Client], bool],
    ) -> tuple[Client, Monitored] | None:
        """Take over a monitor flow found on the switch that we do not know (lost state)."""
        parsed = flows.client_from_match(match)
        if parsed is None or parsed[0].port is None:
            return None
        client, server_port = parsed
        switch = self._of(dpid)
        if client in switch.clients or blocked(client):
            return None
        if len(switch.clients) >= self.bounds.max_per_switch:
            return None
        monitored = Monitored(client, server_port, now, whitelisted(client.ip))
        switch.clients[client] = monitored
        log.info("dpid %s: adopted monitor flow of %s found on the switch", dpid, client)
        return client, monitored

    # --- housekeeping --------------------------------------------------------------------

    def removal_counts(self, dpid: str, client: Client, age: float, now: Instant) -> bool:
        """Whether an idle FLOW_REMOVED of ``client``'s monitor ends its monitoring.

        Not when we do not monitor it, nor when the removed flow is older than our
        last install (a stale FLOW_REMOVED of a flow we re-added since).
        """
        monitored = self.get(dpid, client)
        return monitored is not None and not is_stale(age, monitored.installed_at, now)

    def silent(self, dpid: str, now: Instant, forget_after: float) -> list[Client]:
        """Connections no poll has reported for ``forget_after`` seconds."""
        return [c for c, m in self.clients(dpid).items() if now.mono - m.last_seen > forget_after]

    def expire_backoffs(self, now: Instant) -> None:
        """A client quiet for long enough starts over at its next refusal."""
        for switch in self._switches.values():
            table = switch.backoff
            for client in [c for c, b in table.items() if now.mono > b.retry_at + RETRY_MAX_S]:
                del table[client]

    def set_whitelisted(self, dpid: str, whitelisted: Callable[[str], bool]) -> None:
        """The whitelist changed: mark each connection again."""
        for client, monitored in self.clients(dpid).items():
            monitored.whitelisted = whitelisted(client.ip)

    def forget_switch(self, dpid: str) -> None:
        """The module was disabled on ``dpid``."""
        self._switches.pop(dpid, None)
