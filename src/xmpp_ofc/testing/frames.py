"""Build Ethernet frames for tests and fake switches, layer by layer.

Checksums are left zero: the controller never verifies them, and a test that
needs a frame a real host accepts should capture one instead.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable

from xmpp_ofc import packet as p


def mac_bytes(mac: str) -> bytes:
    """``aa:bb:..`` as six octets."""
    return bytes.fromhex(mac.replace(":", ""))


def ethernet(
    dst: str,
    src: str,
    eth_type: int,
    payload: bytes = b"",
    *,
    vlans: Iterable[tuple[int, int]] = (),
    pad: bool = True,
) -> bytes:
    """An Ethernet frame; ``vlans`` are (tpid, vid) pairs, outermost first.

    ``pad`` pads to the 60-byte minimum as a NIC does, so tests see the padding a
    real capture has.
    """
    header = mac_bytes(dst) + mac_bytes(src)
    for tpid, vid in vlans:
        header += struct.pack("!HH", tpid, vid & 0xFFF)
    frame = header + struct.pack("!H", eth_type) + payload
    if pad and len(frame) < 60:
        frame += bytes(60 - len(frame))
    return frame


def arp(op: int, sha: str, spa: str, tha: str, tpa: str) -> bytes:
    """An Ethernet/IPv4 ARP body."""
    return (
        struct.pack("!HHBBH", 1, p.ETH_TYPE_IPV4, 6, 4, op)
        + mac_bytes(sha)
        + ipaddress.IPv4Address(spa).packed
        + mac_bytes(tha)
        + ipaddress.IPv4Address(tpa).packed
    )


def ipv4(
    src: str,
    dst: str,
    proto: int,
    payload: bytes,
    *,
    ttl: int = 64,
    options: bytes = b"",
    fragment_offset: int = 0,
    more_fragments: bool = False,
    total_len: int | None = None,
) -> bytes:
    """An IPv4 packet; ``options`` must be a multiple of 4 bytes long."""
    header_len = 20 + len(options)
    flags_frag = (0x2000 if more_fragments else 0) | (fragment_offset // 8)
    length = header_len + len(payload) if total_len is None else total_len
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | header_len // 4,
        0,
        length,
        1,
        flags_frag,
        ttl,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    return header + options + payload


def ipv6(
    src: str,
    dst: str,
    proto: int,
    payload: bytes,
    *,
    ext_headers: Iterable[tuple[int, bytes]] = (),
    hop_limit: int = 64,
) -> bytes:
    """An IPv6 packet; ``ext_headers`` are (header type, complete header bytes).

    Each extension header's first byte (its next-header field) is rewritten to
    chain the headers and end at ``proto``.
    """
    chain = list(ext_headers)
    body = b""
    next_types = [kind for kind, _ in chain[1:]] + [proto]
    for (_, header), following in zip(chain, next_types, strict=False):
        body += bytes([following]) + header[1:]
    body += payload
    first_type = chain[0][0] if chain else proto
    return (
        struct.pack("!IHBB", 6 << 28, len(body), first_type, hop_limit)
        + ipaddress.IPv6Address(src).packed
        + ipaddress.IPv6Address(dst).packed
        + body
    )


def ipv6_generic_ext(length_units: int = 0) -> bytes:
    """A hop-by-hop / destination-options style header of (units + 1) * 8 bytes."""
    return bytes([0, length_units]) + bytes((length_units + 1) * 8 - 2)


def ipv6_fragment_ext(offset: int, more: bool) -> bytes:
    """An IPv6 fragment header."""
    return struct.pack("!BBHI", 0, 0, (offset // 8) << 3 | int(more), 7)


def tcp(
    src_port: int,
    dst_port: int,
    flags: int = p.TCP_ACK,
    payload: bytes = b"",
    options: bytes = b"",
) -> bytes:
    """A TCP segment; ``options`` must be a multiple of 4 bytes long."""
    header_len = 20 + len(options)
    return (
        struct.pack(
            "!HHIIBBHHH", src_port, dst_port, 1, 0, (header_len // 4) << 4, flags, 65535, 0, 0
        )
        + options
        + payload
    )


def udp(src_port: int, dst_port: int, payload: bytes = b"") -> bytes:
    """A UDP datagram."""
    return struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload


def icmp(icmp_type: int, code: int, payload: bytes = b"") -> bytes:
    """An ICMP or ICMPv6 message."""
    return struct.pack("!BBH", icmp_type, code, 0) + payload


def tcp4_frame(
    *,
    eth_src: str,
    eth_dst: str,
    ip_src: str,
    ip_dst: str,
    tp_src: int,
    tp_dst: int,
    flags: int = p.TCP_ACK,
    payload: bytes = b"",
) -> bytes:
    """The common case: Ethernet + IPv4 + TCP."""
    segment = tcp(tp_src, tp_dst, flags, payload)
    return ethernet(eth_dst, eth_src, p.ETH_TYPE_IPV4, ipv4(ip_src, ip_dst, 6, segment))
