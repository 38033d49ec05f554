"""Builders shared by the rate limiter tests (no tests here; named to match test_rate_limiter_*)."""

from __future__ import annotations

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.limiter import Instant
from xmpp_ofc import cookies
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.messages import (
    DecodedPacketIn,
    FlowRemoved,
    FlowRemovedReason,
    FlowStatsEntry,
    FlowStatsReply,
    PacketInReason,
)
from xmpp_ofc.openflow.flow_json import flow_mod_from_dict, flow_mod_to_dict
from xmpp_ofc.packet import ETH_TYPE_IPV6, TCP_SYN
from xmpp_ofc.testing import frames

DPID = "00:00:00:00:00:00:00:01"
SERVER_V4 = "10.0.0.1"
SERVER_V6 = "2001:db8::1"
WALL0 = 1_700_000_000.0


def at(seconds: float) -> Instant:
    """``seconds`` after the test's epoch, on both clocks."""
    return Instant(mono=1000.0 + seconds, wall=WALL0 + seconds)


def capture_cookie(version: int = 4) -> int:
    return cookies.encode(Owner.RATE_LIMITER, Kind.CAPTURE, 0 if version == 4 else 1)


def packet_in(
    ip: str, port: int, server_port: int = 5222, *, dpid: str = DPID, flags: int = TCP_SYN
) -> DecodedPacketIn:
    """The copy the capture flow sends up for one TCP segment of a client."""
    if ":" in ip:
        segment = frames.tcp(port, server_port, flags)
        data = frames.ethernet(
            "02:00:00:00:00:01",
            "02:00:00:00:00:02",
            ETH_TYPE_IPV6,
            frames.ipv6(ip, SERVER_V6, 6, segment),
        )
        cookie = capture_cookie(6)
    else:
        data = frames.tcp4_frame(
            eth_src="02:00:00:00:00:02",
            eth_dst="02:00:00:00:00:01",
            ip_src=ip,
            ip_dst=SERVER_V4,
            tp_src=port,
            tp_dst=server_port,
            flags=flags,
        )
        cookie = capture_cookie(4)
    return DecodedPacketIn.from_frame(
        dpid=dpid, in_port=2, data=data, reason=PacketInReason.ACTION, cookie=cookie
    )


def echoed_match(flow: dict) -> dict:
    """The match as a switch reports it back (IPv6 expanded, canonical)."""
    return flow_mod_to_dict(flow_mod_from_dict(flow, "add"))["match"]


def stats_entry(
    client: Client,
    packets: int,
    octets: int,
    duration: float,
    *,
    server_port: int = 5222,
    dpid: str = DPID,
) -> FlowStatsEntry:
    flow = flows.monitor_flow(client, server_port, idle_timeout=120)
    return FlowStatsEntry(
        dpid=dpid,
        table_id=0,
        cookie=flow["cookie"],
        priority=flow["priority"],
        match=echoed_match(flow),
        packet_count=packets,
        byte_count=octets,
        duration_sec=int(duration),
        duration_nsec=round((duration - int(duration)) * 1e9),
        idle_timeout=120,
    )


def stats(*entries: FlowStatsEntry, dpid: str = DPID) -> FlowStatsReply:
    return FlowStatsReply(dpid=dpid, entries=tuple(entries))


def removed(
    flow: dict,
    reason: FlowRemovedReason,
    duration: float,
    *,
    dpid: str = DPID,
) -> FlowRemoved:
    return FlowRemoved(
        dpid=dpid,
        cookie=flow["cookie"],
        reason=reason,
        table_id=0,
        priority=flow["priority"],
        match=echoed_match(flow),
        packet_count=0,
        byte_count=0,
        duration_sec=int(duration),
        duration_nsec=0,
        hard_timeout=flow.get("hard_timeout", 0),
    )


#: Frame bytes of one chat message of ~140 payload bytes (the lab's spammer).
SPAM_FRAME = 66 + 140


class SimulatedConnection:
    """A client connection's cumulative monitor counters, as a switch would report them."""

    def __init__(self, client: Client, opened_at: float) -> None:
        self.client = client
        self.opened_at = opened_at
        self.packets = 0
        self.octets = 0
        self.blocked_at: float | None = None

    def send(self, messages: float, frame_bytes: int = SPAM_FRAME) -> None:
        self.packets += round(messages)
        self.octets += round(messages) * frame_bytes

    def ack(self, count: int) -> None:
        self.packets += count
        self.octets += count * 66

    def entry(self, t: float) -> FlowStatsEntry:
        return stats_entry(self.client, self.packets, self.octets, t - self.opened_at)
