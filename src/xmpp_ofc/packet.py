"""Framework-neutral parsing of the frame carried by a PACKET_IN.

:func:`parse_packet` reads Ethernet (with any number of 802.1Q / 802.1ad tags, bounded),
ARP, IPv4 (options skipped, fragments recognised), IPv6 (extension headers walked,
bounded), TCP, UDP, ICMP and ICMPv6, and returns an immutable :class:`ParsedPacket`.

It never raises on bad input: a frame comes from the network, and one garbage frame
must not cost the controller the handler thread (or the switch).  A truncated or
inconsistent frame yields every field that could be read before the problem plus a
``malformed`` reason.  Frames cut short by the switch's ``miss_send_len`` are not
malformed when every header is present; ``truncated`` tells that payload is missing.

Lengths come from the IP headers, not from the captured bytes, so Ethernet padding
is not counted as payload and a capture cut by the switch still reports the real
payload length.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

ETH_TYPE_IPV4 = 0x0800
ETH_TYPE_ARP = 0x0806
ETH_TYPE_VLAN = 0x8100
ETH_TYPE_QINQ = 0x88A8
ETH_TYPE_QINQ_OLD = 0x9100
ETH_TYPE_IPV6 = 0x86DD
ETH_TYPE_LLDP = 0x88CC
VLAN_TPIDS = frozenset({ETH_TYPE_VLAN, ETH_TYPE_QINQ, ETH_TYPE_QINQ_OLD})

IP_PROTO_ICMP = 1
IP_PROTO_TCP = 6
IP_PROTO_UDP = 17
IP_PROTO_ICMPV6 = 58

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10
TCP_URG = 0x20
TCP_ECE = 0x40
TCP_CWR = 0x80

BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"

#: More tags than this is not a real frame, and walking them costs the handler.
MAX_VLAN_TAGS = 4
#: Bound on IPv6 extension headers walked (RFC 8200 expects few; attackers send many).
MAX_IPV6_EXT_HEADERS = 8

ETH_HEADER_LEN = 14
VLAN_TAG_LEN = 4
ARP_IPV4_LEN = 28
IPV4_MIN_HEADER_LEN = 20
IPV6_HEADER_LEN = 40
TCP_MIN_HEADER_LEN = 20
UDP_HEADER_LEN = 8
ICMP_MIN_LEN = 4

# IPv6 extension headers that share the (next header, length in 8-octet units) layout.
_IPV6_EXT_GENERIC = frozenset({0, 43, 60, 135, 139, 140})
_IPV6_EXT_FRAGMENT = 44
_IPV6_EXT_AH = 51


@dataclass(frozen=True)
class VlanTag:
    """One 802.1Q / 802.1ad tag, outermost first in :attr:`ParsedPacket.vlans`."""

    tpid: int
    pcp: int
    dei: bool
    vid: int


@dataclass(frozen=True)
class ParsedPacket:
    """Everything the controller reads from a frame; None where absent or unreadable."""

    raw: bytes = field(repr=False)
    eth_dst: str | None = None
    eth_src: str | None = None
    #: The EtherType after every VLAN tag (the payload's type).
    eth_type: int | None = None
    vlans: tuple[VlanTag, ...] = ()
    arp_op: int | None = None
    arp_sha: str | None = None
    arp_spa: str | None = None
    arp_tha: str | None = None
    arp_tpa: str | None = None
    ip_version: int | None = None
    ip_src: str | None = None
    ip_dst: str | None = None
    #: IPv4 protocol, or the IPv6 upper-layer protocol after the extension headers.
    ip_proto: int | None = None
    ip_ttl: int | None = None
    ip_dscp: int | None = None
    #: Bytes after the IP header (and IPv6 extension headers), from the length fields.
    ip_payload_len: int | None = None
    ip_fragment_offset: int | None = None
    ip_more_fragments: bool | None = None
    ipv6_ext_headers: tuple[int, ...] = ()
    tp_src: int | None = None
    tp_dst: int | None = None
    tcp_flags: int | None = None
    tcp_header_len: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    #: Application bytes after the TCP/UDP header, from the IP length fields.
    payload_len: int | None = None
    #: True when the capture holds fewer bytes than the headers announce.
    truncated: bool = False
    malformed: str | None = None

    @property
    def vlan_id(self) -> int | None:
        """The outermost VLAN id, or None for an untagged frame."""
        return self.vlans[0].vid if self.vlans else None

    @property
    def is_fragment(self) -> bool:
        """True for any IP fragment (first or later)."""
        return bool(self.ip_more_fragments) or bool(self.ip_fragment_offset)

    @property
    def is_later_fragment(self) -> bool:
        """True for a non-first fragment, which carries no L4 header."""
        return bool(self.ip_fragment_offset)

    def has_tcp_flag(self, flag: int) -> bool:
        """True when this is a TCP segment with ``flag`` (e.g. :data:`TCP_SYN`) set."""
        return self.tcp_flags is not None and bool(self.tcp_flags & flag)


class _Malformed(Exception):
    """Raised inside the parser to stop at the first unreadable header."""


def mac_to_str(octets: bytes) -> str:
    """Six octets as a lowercase ``aa:bb:cc:dd:ee:ff`` string."""
    return ":".join(f"{octet:02x}" for octet in octets)


def mac_to_int(mac: str) -> int:
    """A ``aa:bb:..`` MAC string as a 48-bit integer; raises ValueError if not a MAC."""
    parts = mac.split(":")
    if len(parts) != 6 or not all(len(part) == 2 for part in parts):
        raise ValueError(f"{mac!r} is not a MAC address")
    return int("".join(parts), 16)


def is_multicast_mac(mac: str) -> bool:
    """True for group addresses (broadcast included): the I/G bit of the first octet."""
    return bool(int(mac[:2], 16) & 0x01)


def is_broadcast_mac(mac: str) -> bool:
    """True for ff:ff:ff:ff:ff:ff."""
    return mac.lower() == BROADCAST_MAC


def is_link_local_control_mac(mac: str) -> bool:
    """True for 01:80:c2:00:00:00..0f, which IEEE 802.1D says a bridge never forwards.

    STP, LACP, 802.1X and LLDP use these; flooding them would loop them through the
    network or leak a link's control traffic to every port.
    """
    return mac.lower()[:15] == "01:80:c2:00:00:" and mac[15:16] == "0"


def parse_packet(data: bytes | bytearray | memoryview) -> ParsedPacket:
    """Parse a frame; never raises, see the module docstring."""
    raw = bytes(data)
    found: dict[str, object] = {}
    try:
        _parse_ethernet(raw, found)
    except _Malformed as problem:
        found["malformed"] = str(problem)
    return ParsedPacket(raw=raw, **found)


def _need(raw: bytes, offset: int, length: int, what: str) -> None:
    if offset + length > len(raw):
        raise _Malformed(f"truncated {what}: need {length} bytes at {offset}, have {len(raw)}")


def _parse_ethernet(raw: bytes, found: dict[str, object]) -> None:
    _need(raw, 0, ETH_HEADER_LEN, "Ethernet header")
    found["eth_dst"] = mac_to_str(raw[0:6])
    found["eth_src"] = mac_to_str(raw[6:12])
    (eth_type,) = struct.unpack_from("!H", raw, 12)
    offset = ETH_HEADER_LEN
    vlans: list[VlanTag] = []
    while eth_type in VLAN_TPIDS:
        if len(vlans) == MAX_VLAN_TAGS:
            found["vlans"] = tuple(vlans)
            raise _Malformed(f"more than {MAX_VLAN_TAGS} VLAN tags")
        _need(raw, offset, VLAN_TAG_LEN, "VLAN tag")
        tci, next_type = struct.unpack_from("!HH", raw, offset)
        vlans.append(VlanTag(tpid=eth_type, pcp=tci >> 13, dei=bool(tci & 0x1000), vid=tci & 0xFFF))
        eth_type = next_type
        offset += VLAN_TAG_LEN
    found["vlans"] = tuple(vlans)
    found["eth_type"] = eth_type
    if eth_type == ETH_TYPE_ARP:
        _parse_arp(raw, offset, found)
    elif eth_type == ETH_TYPE_IPV4:
        _parse_ipv4(raw, offset, found)
    elif eth_type == ETH_TYPE_IPV6:
        _parse_ipv6(raw, offset, found)


def _parse_arp(raw: bytes, offset: int, found: dict[str, object]) -> None:
    _need(raw, offset, 8, "ARP header")
    hw_type, proto_type, hw_len, proto_len, op = struct.unpack_from("!HHBBH", raw, offset)
    found["arp_op"] = op
    if (hw_type, proto_type, hw_len, proto_len) != (1, ETH_TYPE_IPV4, 6, 4):
        # Not Ethernet/IPv4 ARP: nothing else we understand; not an error.
        return
    _need(raw, offset, ARP_IPV4_LEN, "ARP body")
    body = offset + 8
    found["arp_sha"] = mac_to_str(raw[body : body + 6])
    found["arp_spa"] = str(ipaddress.IPv4Address(raw[body + 6 : body + 10]))
    found["arp_tha"] = mac_to_str(raw[body + 10 : body + 16])
    found["arp_tpa"] = str(ipaddress.IPv4Address(raw[body + 16 : body + 20]))


def _parse_ipv4(raw: bytes, offset: int, found: dict[str, object]) -> None:
    _need(raw, offset, IPV4_MIN_HEADER_LEN, "IPv4 header")
    version_ihl, tos, total_len, _ident, flags_frag, ttl, proto = struct.unpack_from(
        "!BBHHHBB", raw, offset
    )
    version, header_len = version_ihl >> 4, (version_ihl & 0x0F) * 4
    if version != 4:
        raise _Malformed(f"IPv4 EtherType with IP version {version}")
    found["ip_version"] = 4
    found["ip_src"] = str(ipaddress.IPv4Address(raw[offset + 12 : offset + 16]))
    found["ip_dst"] = str(ipaddress.IPv4Address(raw[offset + 16 : offset + 20]))
    found["ip_proto"] = proto
    found["ip_ttl"] = ttl
    found["ip_dscp"] = tos >> 2
    frag_offset = (flags_frag & 0x1FFF) * 8
    found["ip_fragment_offset"] = frag_offset
    found["ip_more_fragments"] = bool(flags_frag & 0x2000)
    if header_len < IPV4_MIN_HEADER_LEN:
        raise _Malformed(f"IPv4 header length {header_len} < {IPV4_MIN_HEADER_LEN}")
    if total_len < header_len:
        raise _Malformed(f"IPv4 total length {total_len} < header length {header_len}")
    _need(raw, offset, header_len, "IPv4 options")
    payload_len = total_len - header_len
    found["ip_payload_len"] = payload_len
    if frag_offset:
        # A later fragment has no transport header: its first bytes are payload.
        _mark_truncation(raw, offset + header_len, payload_len, found)
        return
    _parse_transport(raw, offset + header_len, payload_len, proto, found)


def _parse_ipv6(raw: bytes, offset: int, found: dict[str, object]) -> None:
    _need(raw, offset, IPV6_HEADER_LEN, "IPv6 header")
    (first_word, payload_len, next_header, hop_limit) = struct.unpack_from("!IHBB", raw, offset)
    version = first_word >> 28
    if version != 6:
        raise _Malformed(f"IPv6 EtherType with IP version {version}")
    found["ip_version"] = 6
    found["ip_dscp"] = (first_word >> 22) & 0x3F
    found["ip_ttl"] = hop_limit
    found["ip_src"] = str(ipaddress.IPv6Address(raw[offset + 8 : offset + 24]))
    found["ip_dst"] = str(ipaddress.IPv6Address(raw[offset + 24 : offset + 40]))
    offset += IPV6_HEADER_LEN
    remaining = payload_len
    walked: list[int] = []
    frag_offset = 0
    try:
        while next_header in _IPV6_EXT_GENERIC or next_header in (
            _IPV6_EXT_FRAGMENT,
            _IPV6_EXT_AH,
        ):
            if len(walked) == MAX_IPV6_EXT_HEADERS:
                raise _Malformed(f"more than {MAX_IPV6_EXT_HEADERS} IPv6 extension headers")
            _need(raw, offset, 8, "IPv6 extension header")
            walked.append(next_header)
            if next_header == _IPV6_EXT_FRAGMENT:
                (frag_field,) = struct.unpack_from("!H", raw, offset + 2)
                frag_offset = (frag_field >> 3) * 8
                found["ip_fragment_offset"] = frag_offset
                found["ip_more_fragments"] = bool(frag_field & 0x1)
                length = 8
            elif next_header == _IPV6_EXT_AH:
                length = (raw[offset + 1] + 2) * 4
            else:
                length = (raw[offset + 1] + 1) * 8
            if length > remaining:
                raise _Malformed(f"IPv6 extension header {walked[-1]} overruns the payload length")
            next_header = raw[offset]
            offset += length
            remaining -= length
            if frag_offset:
                break
    finally:
        found["ipv6_ext_headers"] = tuple(walked)
    found["ip_proto"] = next_header
    found["ip_payload_len"] = remaining
    if frag_offset:
        _mark_truncation(raw, offset, remaining, found)
        return
    _parse_transport(raw, offset, remaining, next_header, found)


def _mark_truncation(raw: bytes, offset: int, length: int, found: dict[str, object]) -> None:
    if offset + length > len(raw):
        found["truncated"] = True


def _parse_transport(
    raw: bytes, offset: int, ip_payload_len: int, proto: int, found: dict[str, object]
) -> None:
    if proto == IP_PROTO_TCP:
        _parse_tcp(raw, offset, ip_payload_len, found)
    elif proto == IP_PROTO_UDP:
        _parse_udp(raw, offset, ip_payload_len, found)
    elif proto in (IP_PROTO_ICMP, IP_PROTO_ICMPV6):
        _parse_icmp(raw, offset, ip_payload_len, found)
    else:
        _mark_truncation(raw, offset, ip_payload_len, found)


def _parse_ports(
    raw: bytes, offset: int, ip_payload_len: int, what: str, found: dict[str, object]
) -> None:
    if ip_payload_len < 4:
        raise _Malformed(f"IP payload of {ip_payload_len} bytes cannot hold a {what} header")
    _need(raw, offset, 4, f"{what} ports")
    found["tp_src"], found["tp_dst"] = struct.unpack_from("!HH", raw, offset)


def _parse_tcp(raw: bytes, offset: int, ip_payload_len: int, found: dict[str, object]) -> None:
    _parse_ports(raw, offset, ip_payload_len, "TCP", found)
    _need(raw, offset, TCP_MIN_HEADER_LEN, "TCP header")
    data_offset, flags = struct.unpack_from("!BB", raw, offset + 12)
    found["tcp_flags"] = flags | ((data_offset & 0x01) << 8)  # the NS bit, if anyone sets it
    header_len = (data_offset >> 4) * 4
    found["tcp_header_len"] = header_len
    if header_len < TCP_MIN_HEADER_LEN:
        raise _Malformed(f"TCP header length {header_len} < {TCP_MIN_HEADER_LEN}")
    if header_len > ip_payload_len:
        raise _Malformed(f"TCP header length {header_len} > IP payload {ip_payload_len}")
    found["payload_len"] = ip_payload_len - header_len
    _mark_truncation(raw, offset, ip_payload_len, found)


def _parse_udp(raw: bytes, offset: int, ip_payload_len: int, found: dict[str, object]) -> None:
    _parse_ports(raw, offset, ip_payload_len, "UDP", found)
    _need(raw, offset, UDP_HEADER_LEN, "UDP header")
    if ip_payload_len < UDP_HEADER_LEN:
        raise _Malformed(f"IP payload of {ip_payload_len} bytes cannot hold a UDP header")
    # The IP length is authoritative: UDP's own length field is redundant in practice.
    found["payload_len"] = ip_payload_len - UDP_HEADER_LEN
    _mark_truncation(raw, offset, ip_payload_len, found)


def _parse_icmp(raw: bytes, offset: int, ip_payload_len: int, found: dict[str, object]) -> None:
    if ip_payload_len < ICMP_MIN_LEN:
        raise _Malformed(f"IP payload of {ip_payload_len} bytes cannot hold an ICMP header")
    _need(raw, offset, 2, "ICMP header")
    found["icmp_type"], found["icmp_code"] = raw[offset], raw[offset + 1]
    _mark_truncation(raw, offset, ip_payload_len, found)
