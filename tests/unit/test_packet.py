"""Packet parsing: each layer, the malformed cases, and a fuzz proof that nothing escapes."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_ofc import packet as p
from xmpp_ofc.packet import parse_packet
from xmpp_ofc.testing import frames as f

A = "00:00:00:00:00:0a"
B = "00:00:00:00:00:0b"


def tcp4(**overrides):
    args = dict(
        eth_src=A,
        eth_dst=B,
        ip_src="10.0.0.1",
        ip_dst="10.0.0.2",
        tp_src=40001,
        tp_dst=5222,
        flags=p.TCP_PSH | p.TCP_ACK,
        payload=b"<message/>",
    )
    args.update(overrides)
    return f.tcp4_frame(**args)


def test_tcp_over_ipv4_gives_every_field():
    parsed = parse_packet(tcp4())
    assert parsed.malformed is None
    assert (parsed.eth_src, parsed.eth_dst, parsed.eth_type) == (A, B, p.ETH_TYPE_IPV4)
    assert (parsed.ip_version, parsed.ip_src, parsed.ip_dst) == (4, "10.0.0.1", "10.0.0.2")
    assert (parsed.ip_proto, parsed.tp_src, parsed.tp_dst) == (6, 40001, 5222)
    assert parsed.has_tcp_flag(p.TCP_PSH) and parsed.has_tcp_flag(p.TCP_ACK)
    assert not parsed.has_tcp_flag(p.TCP_SYN)
    assert parsed.tcp_header_len == 20
    assert parsed.payload_len == len(b"<message/>")
    assert parsed.truncated is False
    assert parsed.vlan_id is None


def test_ethernet_padding_is_not_payload():
    frame = tcp4(payload=b"", flags=p.TCP_ACK)
    assert len(frame) == 60  # padded by the builder as a NIC pads
    assert parse_packet(frame).payload_len == 0


def test_mac_strings_are_lowercase():
    frame = f.ethernet("AA:BB:CC:DD:EE:FF", "02:AB:00:00:00:01", 0x1234)
    parsed = parse_packet(frame)
    assert parsed.eth_dst == "aa:bb:cc:dd:ee:ff"
    assert parsed.eth_src == "02:ab:00:00:00:01"
    assert parsed.eth_type == 0x1234
    assert parsed.ip_version is None and parsed.malformed is None


def test_qinq_tags_are_read_outermost_first():
    frame = f.ethernet(
        B,
        A,
        p.ETH_TYPE_IPV4,
        f.ipv4("10.0.0.1", "10.0.0.2", 17, f.udp(5353, 53, b"q")),
        vlans=[(p.ETH_TYPE_QINQ, 100), (p.ETH_TYPE_VLAN, 200)],
    )
    parsed = parse_packet(frame)
    assert [tag.vid for tag in parsed.vlans] == [100, 200]
    assert [tag.tpid for tag in parsed.vlans] == [p.ETH_TYPE_QINQ, p.ETH_TYPE_VLAN]
    assert parsed.vlan_id == 100
    assert parsed.eth_type == p.ETH_TYPE_IPV4
    assert (parsed.tp_src, parsed.tp_dst, parsed.payload_len) == (5353, 53, 1)


def test_too_many_vlan_tags_is_malformed_not_a_loop():
    frame = f.ethernet(B, A, 0x0800, b"", vlans=[(p.ETH_TYPE_VLAN, n) for n in range(20)])
    parsed = parse_packet(frame)
    assert "VLAN tags" in parsed.malformed
    assert len(parsed.vlans) == p.MAX_VLAN_TAGS


def test_arp_request():
    body = f.arp(1, A, "10.0.0.1", "00:00:00:00:00:00", "10.0.0.2")
    parsed = parse_packet(f.ethernet(p.BROADCAST_MAC, A, p.ETH_TYPE_ARP, body))
    assert parsed.malformed is None
    assert (parsed.arp_op, parsed.arp_sha, parsed.arp_spa, parsed.arp_tpa) == (
        1,
        A,
        "10.0.0.1",
        "10.0.0.2",
    )


def test_ipv4_options_are_skipped():
    segment = f.tcp(1234, 5222, p.TCP_SYN)
    packet = f.ipv4("10.0.0.1", "10.0.0.2", 6, segment, options=bytes([1, 1, 1, 0]) * 2)
    parsed = parse_packet(f.ethernet(B, A, p.ETH_TYPE_IPV4, packet))
    assert parsed.malformed is None
    assert (parsed.tp_src, parsed.tp_dst) == (1234, 5222)
    assert parsed.has_tcp_flag(p.TCP_SYN)
    assert parsed.ip_payload_len == 20


def test_first_fragment_is_parsed_but_later_fragments_are_not():
    first = f.ipv4("10.0.0.1", "10.0.0.2", 6, f.tcp(1, 2), more_fragments=True)
    parsed = parse_packet(f.ethernet(B, A, p.ETH_TYPE_IPV4, first))
    assert parsed.is_fragment and not parsed.is_later_fragment
    assert parsed.tp_dst == 2

    # A later fragment whose payload happens to look like ports must not be read as L4.
    later = f.ipv4("10.0.0.1", "10.0.0.2", 6, f.tcp(1, 2), fragment_offset=1480)
    parsed = parse_packet(f.ethernet(B, A, p.ETH_TYPE_IPV4, later))
    assert parsed.is_later_fragment
    assert parsed.ip_fragment_offset == 1480
    assert parsed.tp_src is None and parsed.tp_dst is None and parsed.tcp_flags is None
    assert parsed.malformed is None


def test_tcp_with_options_reports_header_and_payload_length():
    segment = f.tcp(1, 5222, p.TCP_ACK, payload=b"x" * 100, options=bytes(12))
    parsed = parse_packet(f.ethernet(B, A, 0x0800, f.ipv4("10.0.0.1", "10.0.0.2", 6, segment)))
    assert parsed.tcp_header_len == 32
    assert parsed.payload_len == 100


def test_capture_cut_by_the_switch_is_truncated_but_not_malformed():
    frame = tcp4(payload=b"x" * 1000)
    parsed = parse_packet(frame[:128])
    assert parsed.malformed is None
    assert parsed.truncated is True
    assert parsed.payload_len == 1000, "lengths come from the IP header, not the capture"


def test_ipv6_walks_extension_headers_to_tcp():
    packet = f.ipv6(
        "2001:db8::1",
        "2001:db8::2",
        6,
        f.tcp(50000, 5222, p.TCP_SYN),
        ext_headers=[(0, f.ipv6_generic_ext(1)), (60, f.ipv6_generic_ext(0))],
    )
    parsed = parse_packet(f.ethernet(B, A, p.ETH_TYPE_IPV6, packet))
    assert parsed.malformed is None
    assert (parsed.ip_version, parsed.ip_src, parsed.ip_dst) == (6, "2001:db8::1", "2001:db8::2")
    assert parsed.ipv6_ext_headers == (0, 60)
    assert (parsed.ip_proto, parsed.tp_src, parsed.tp_dst) == (6, 50000, 5222)
    assert parsed.ip_payload_len == 20


def test_ipv6_later_fragment_stops_before_l4():
    packet = f.ipv6(
        "2001:db8::1",
        "2001:db8::2",
        6,
        f.tcp(1, 2),
        ext_headers=[(44, f.ipv6_fragment_ext(offset=8, more=False))],
    )
    parsed = parse_packet(f.ethernet(B, A, p.ETH_TYPE_IPV6, packet))
    assert parsed.is_later_fragment and parsed.ip_proto == 6
    assert parsed.tp_src is None and parsed.malformed is None


def test_ipv6_extension_header_chain_is_bounded():
    chain = [(60, f.ipv6_generic_ext(0))] * (p.MAX_IPV6_EXT_HEADERS + 1)
    packet = f.ipv6("2001:db8::1", "2001:db8::2", 6, f.tcp(1, 2), ext_headers=chain)
    parsed = parse_packet(f.ethernet(B, A, p.ETH_TYPE_IPV6, packet))
    assert "extension headers" in parsed.malformed
    assert len(parsed.ipv6_ext_headers) == p.MAX_IPV6_EXT_HEADERS
    assert parsed.ip_src == "2001:db8::1", "fields read before the problem are kept"


def test_icmpv6_and_icmp():
    v6 = f.ipv6("fe80::1", "ff02::1", 58, f.icmp(135, 0, bytes(20)))
    parsed = parse_packet(f.ethernet("33:33:ff:00:00:01", A, p.ETH_TYPE_IPV6, v6))
    assert (parsed.icmp_type, parsed.icmp_code) == (135, 0)
    v4 = f.ipv4("10.0.0.1", "10.0.0.2", 1, f.icmp(8, 0, b"ping"))
    parsed = parse_packet(f.ethernet(B, A, p.ETH_TYPE_IPV4, v4))
    assert (parsed.icmp_type, parsed.icmp_code) == (8, 0)


@pytest.mark.parametrize(
    "frame, reason",
    [
        (b"", "Ethernet header"),
        (bytes(13), "Ethernet header"),
        (f.ethernet(B, A, 0x0800, b"\x45\x00", pad=False), "IPv4 header"),
        (f.ethernet(B, A, 0x0800, f.ipv4("1.1.1.1", "2.2.2.2", 6, b"", total_len=10)), "total"),
        (f.ethernet(B, A, 0x0800, b"\x65" + bytes(19)), "IP version"),
        (f.ethernet(B, A, 0x0800, b"\x43" + bytes(19)), "header length"),
        (f.ethernet(B, A, 0x86DD, bytes(40)), "IP version"),
        (f.ethernet(B, A, 0x8100, b"\x00", pad=False), "VLAN tag"),
        (f.ethernet(B, A, 0x0806, b"\x00\x01", pad=False), "ARP"),
    ],
)
def test_malformed_frames_report_a_reason(frame, reason):
    parsed = parse_packet(frame)
    assert parsed.malformed is not None and reason in parsed.malformed


def test_truncated_tcp_header_keeps_the_ports():
    frame = tcp4()
    cut = frame[: 14 + 20 + 6]
    parsed = parse_packet(cut)
    assert (parsed.tp_src, parsed.tp_dst) == (40001, 5222)
    assert "TCP header" in parsed.malformed


def test_tcp_data_offset_below_minimum_is_malformed():
    segment = bytearray(f.tcp(1, 2))
    segment[12] = 0x40  # data offset 4 words = 16 bytes
    frame = f.ethernet(B, A, 0x0800, f.ipv4("10.0.0.1", "10.0.0.2", 6, bytes(segment)))
    assert "TCP header length" in parse_packet(frame).malformed


def test_parsed_packet_is_immutable():
    parsed = parse_packet(tcp4())
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.tp_dst = 1


@pytest.mark.parametrize(
    "mac, multicast, control",
    [
        ("ff:ff:ff:ff:ff:ff", True, False),
        ("01:00:5e:00:00:fb", True, False),
        ("33:33:00:00:00:01", True, False),
        ("01:80:c2:00:00:00", True, True),
        ("01:80:c2:00:00:0e", True, True),
        ("01:80:C2:00:00:03", True, True),
        ("01:80:c2:00:00:10", True, False),
        ("00:00:00:00:00:0a", False, False),
    ],
)
def test_mac_classification(mac, multicast, control):
    assert p.is_multicast_mac(mac) is multicast
    assert p.is_link_local_control_mac(mac) is control


def test_mac_to_int():
    assert p.mac_to_int("00:00:00:00:01:0a") == 0x10A
    with pytest.raises(ValueError):
        p.mac_to_int("00:00:00:00:01")


# --- fuzzing: no input may make the parser raise -------------------------------------

_PREFIXES = [
    tcp4(),
    f.ethernet(B, A, 0x0806, f.arp(1, A, "10.0.0.1", B, "10.0.0.2")),
    f.ethernet(
        B,
        A,
        0x86DD,
        f.ipv6("::1", "::2", 6, f.tcp(1, 2), ext_headers=[(0, f.ipv6_generic_ext(0))]),
    ),
    f.ethernet(B, A, 0x0800, f.ipv4("1.1.1.1", "2.2.2.2", 17, f.udp(1, 2, b"x"))),
    f.ethernet(B, A, 0x0800, b"", vlans=[(0x8100, 1), (0x88A8, 2)]),
]


@settings(max_examples=400, deadline=None, database=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_never_raise(data):
    parsed = parse_packet(data)
    assert parsed.raw == data


@settings(max_examples=800, deadline=None, database=None)
@given(
    prefix=st.sampled_from(_PREFIXES),
    cut=st.integers(min_value=0, max_value=120),
    flips=st.lists(st.tuples(st.integers(0, 119), st.integers(0, 255)), max_size=6),
)
def test_fuzz_mutated_real_frames_never_raise(prefix, cut, flips):
    frame = bytearray(prefix[:cut])
    for position, value in flips:
        if position < len(frame):
            frame[position] = value
    parsed = parse_packet(bytes(frame))
    if parsed.eth_src is not None:
        assert len(parsed.eth_src) == 17
    assert parsed.malformed is None or isinstance(parsed.malformed, str)
