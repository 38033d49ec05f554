"""The rate limiter's flows (DESIGN section 4, table 0) as flow_manager JSON dicts.

| prio | flow     | match                                            | instructions            |
|------|----------|--------------------------------------------------|-------------------------|
| 300  | block    | ip src (+ tcp src) + tcp dst                     | none = drop; hard tmo   |
| 200  | monitor  | ip src + tcp src + tcp dst                       | (meter) + goto 1; idle  |
| 150  | capture  | tcp dst = XMPP port, IPv4 and IPv6               | CONTROLLER + goto 1     |

A client is (switch, ip src, tcp src). The monitor and block matches also carry the
XMPP port the client talks to (tcp dst), so a client's traffic to other services
from the same source port is never counted or dropped; the server's IP is left
out, so a server with several addresses needs no extra flows.

Cookie ids (48 bits, see :mod:`xmpp_ofc.cookies`): an IPv4 client is
``address << 16 | tcp src`` -- exactly 48 bits, readable in ``ovs-ofctl
dump-flows`` (``0xa3040a0000073039`` is 10.0.0.7:12345) -- and an IPv6 client a
48-bit BLAKE2b hash of (address, port). tcp src 0 (never a real source port)
stands for "every port of the address" (an aggregate block). The client is always
read back from the flow's *match*, which switches echo in every flow-stats entry
and FLOW_REMOVED, so no lookup table is needed and an IPv6 hash collision is
harmless: deletes name the cookie AND the match.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from xmpp_ofc import cookies, pipeline
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.pipeline import FlowDict

ETH_TYPE_IPV4 = 0x0800
ETH_TYPE_IPV6 = 0x86DD
IP_PROTO_TCP = 6
#: Bytes of a captured packet sent to the controller: Ethernet, 4 VLAN tags, IPv6
#: with extension headers and a full TCP header fit; the payload is not needed.
CAPTURE_MAX_LEN = 256
#: Capture cookie ids (cookies.py): one per IP version.
CAPTURE_ID_IPV4 = 0
CAPTURE_ID_IPV6 = 1
#: OpenFlow timeouts are 16-bit seconds.
MAX_TIMEOUT = 0xFFFF


@dataclass(frozen=True, slots=True, order=True)
class Client:
    """One client connection on one switch: (ip src, tcp src) plus the XMPP port it uses.

    ``port`` None means every source port of ``ip`` (an aggregate block target).
    ``ip`` is canonical (compressed IPv6), so equal addresses compare equal.
    """

    ip: str
    port: int | None

    @classmethod
    def of(cls, ip: str, port: int | None) -> Client:
        """Canonicalise ``ip``; raises ValueError naming the bad field (``ip:`` / ``port:``)."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            raise ValueError(f"ip: {ip!r} is not an IPv4 or IPv6 address") from None
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 0xFFFF
        ):
            raise ValueError(f"port: must be an integer in 1..65535 or null, got {port!r}")
        return cls(str(address), port)

    @property
    def ip_version(self) -> int:
        """4 or 6."""
        return 6 if ":" in self.ip else 4

    @property
    def cookie_id(self) -> int:
        """The 48-bit cookie id of this client's monitor and block flows."""
        address = ipaddress.ip_address(self.ip)
        port = self.port or 0
        if address.version == 4:
            return int(address) << 16 | port
        digest = hashlib.blake2b(address.packed + port.to_bytes(2, "big"), digest_size=6)
        return int.from_bytes(digest.digest(), "big")

    def __str__(self) -> str:
        port = "*" if self.port is None else str(self.port)
        return f"[{self.ip}]:{port}" if self.ip_version == 6 else f"{self.ip}:{port}"


def _ip_match(client: Client) -> dict[str, Any]:
    if client.ip_version == 6:
        return {"dl_type": ETH_TYPE_IPV6, "ipv6_src": client.ip, "nw_proto": IP_PROTO_TCP}
    return {"dl_type": ETH_TYPE_IPV4, "nw_src": client.ip, "nw_proto": IP_PROTO_TCP}


def client_match(client: Client, server_port: int) -> dict[str, Any]:
    """The match of one client's monitor or block flow."""
    match = _ip_match(client)
    if client.port is not None:
        match["tp_src"] = client.port
    match["tp_dst"] = server_port
    return match


def client_from_match(match: Mapping[str, Any]) -> tuple[Client, int] | None:
    """(client, server port) of a monitor/block flow's match; None if it is not one.

    Reads what a switch echoes back (IPv6 comes back fully expanded); never raises.
    """
    ip = match.get("nw_src", match.get("ipv6_src"))
    server_port = match.get("tp_dst")
    port = match.get("tp_src")
    if not isinstance(ip, str) or "/" in ip or not isinstance(server_port, int):
        return None
    try:
        return Client.of(ip, port if isinstance(port, int) else None), server_port
    except ValueError:
        return None


# --- capture ---------------------------------------------------------------------


def capture_flows(ports: Iterable[int], *, meter_id: int | None = None) -> list[FlowDict]:
    """Copy every packet towards an XMPP port to the controller and forward it.

    Output to CONTROLLER *and* goto the forwarding table: the first packets of a
    connection are never held back and no packet-out is needed. The switch port
    of the server is found by the learning switch, not hard-coded (the seed's port 1).
    ``meter_id``: the capture meter every captured packet goes through first, which
    bounds the packet-ins a flood can push (see :mod:`.capture_bounds`).
    """
    metered = [] if meter_id is None else [{"instruction_type": "meter", "meter_id": meter_id}]
    flows = []
    for port in ports:
        for eth_type, ident in ((ETH_TYPE_IPV4, CAPTURE_ID_IPV4), (ETH_TYPE_IPV6, CAPTURE_ID_IPV6)):
            flows.append(
                pipeline.flow(
                    cookie=cookies.encode(Owner.RATE_LIMITER, Kind.CAPTURE, ident),
                    table_id=pipeline.TABLE_POLICY,
                    priority=pipeline.PRIORITY_CAPTURE,
                    match={"dl_type": eth_type, "nw_proto": IP_PROTO_TCP, "tp_dst": port},
                    instructions=[
                        *metered,
                        pipeline.apply_actions(
                            {
                                "action_type": "output",
                                "port": pipeline.OFPP_CONTROLLER,
                                "max_len": CAPTURE_MAX_LEN,
                            }
                        ),
                        pipeline.goto_table(pipeline.TABLE_FORWARDING),
                    ],
                )
            )
    return flows


def delete_capture() -> FlowDict:
    """Delete every capture flow (all ports, both IP versions)."""
    return pipeline.delete_kind(Owner.RATE_LIMITER, Kind.CAPTURE, table_id=pipeline.TABLE_POLICY)


# --- monitor ---------------------------------------------------------------------


def monitor_cookie(client: Client) -> int:
    """The cookie of a client's monitor flow."""
    return cookies.encode(Owner.RATE_LIMITER, Kind.MONITOR, client.cookie_id)


def monitor_flow(
    client: Client, server_port: int, *, idle_timeout: int, meter_id: int | None = None
) -> FlowDict:
    """Count one client connection and pass it on (through its meter in meter mode).

    The idle timeout removes the flow of a connection that went away; SEND_FLOW_REM
    tells us so, and the next packet of a live one comes up through capture again.
    """
    instructions = []
    if meter_id is not None:
        instructions.append({"instruction_type": "meter", "meter_id": meter_id})
    instructions.append(pipeline.goto_table(pipeline.TABLE_FORWARDING))
    return pipeline.flow(
        cookie=monitor_cookie(client),
        table_id=pipeline.TABLE_POLICY,
        priority=pipeline.PRIORITY_MONITOR,
        match=client_match(client, server_port),
        instructions=instructions,
        idle_timeout=idle_timeout,
        send_flow_removed=True,
    )


def delete_monitor(client: Client, server_port: int) -> FlowDict:
    """Delete exactly one client's monitor flow (cookie and match)."""
    return pipeline.delete_selector(
        (monitor_cookie(client), cookies.FULL_MASK),
        table_id=pipeline.TABLE_POLICY,
        match=client_match(client, server_port),
    )


def delete_monitors_of_ip(client: Client) -> FlowDict:
    """Delete every monitor flow of one source address (any port)."""
    return pipeline.delete_selector(
        cookies.select_kind(Owner.RATE_LIMITER, Kind.MONITOR),
        table_id=pipeline.TABLE_POLICY,
        match=_ip_match(client),
    )


def monitor_poll_selector() -> tuple[int, int]:
    """(cookie, mask) of one flow-stats request that covers every monitor flow."""
    return cookies.select_kind(Owner.RATE_LIMITER, Kind.MONITOR)


# --- block -----------------------------------------------------------------------


def block_cookie(client: Client) -> int:
    """The cookie of a client's (or an address's) block flows."""
    return cookies.encode(Owner.RATE_LIMITER, Kind.BLOCK, client.cookie_id)


def block_flows(client: Client, server_ports: Iterable[int], hard_timeout: int) -> list[FlowDict]:
    """Drop flows, one per XMPP port, that expire by themselves after ``hard_timeout``.

    No instructions = drop. ``client.port`` None blocks every source port of the
    address on those XMPP ports (the per-IP aggregate block), so a client cannot
    escape by reconnecting from a new port. SEND_FLOW_REM reports the expiry.
    """
    if not 1 <= hard_timeout <= MAX_TIMEOUT:
        raise ValueError(f"hard_timeout must be in 1..{MAX_TIMEOUT}, got {hard_timeout}")
    return [
        pipeline.flow(
            cookie=block_cookie(client),
            table_id=pipeline.TABLE_POLICY,
            priority=pipeline.PRIORITY_BLOCK,
            match=client_match(client, server_port),
            instructions=[],
            hard_timeout=hard_timeout,
            send_flow_removed=True,
        )
        for server_port in sorted(set(server_ports))
    ]


def delete_block(client: Client) -> FlowDict:
    """Delete one block's drop flows (all its XMPP ports)."""
    match = _ip_match(client)
    if client.port is not None:
        match["tp_src"] = client.port
    return pipeline.delete_selector(
        (block_cookie(client), cookies.FULL_MASK), table_id=pipeline.TABLE_POLICY, match=match
    )
