"""Match dict <-> OXM: round trips through the wire format, normalisation, errors."""

from __future__ import annotations

import pytest
from pyof.v0x04.common.flow_match import Match, OxmClass, OxmTLV

from xmpp_ofc.openflow.match import FIELDS, match_from_dict, match_to_dict
from xmpp_ofc.openflow.validation import FlowValidationError

IPV4 = {"dl_type": 0x0800}
IPV6 = {"dl_type": 0x86DD}
TCP4 = {**IPV4, "nw_proto": 6}


def wire_round_trip(match: dict) -> dict:
    """dict -> Match -> bytes -> Match -> dict, as a switch would echo it."""
    packed = match_from_dict(match).pack()
    assert len(packed) % 8 == 0
    unpacked = Match()
    unpacked.unpack(packed)
    return match_to_dict(unpacked)


# Every field family, in canonical form (read-back equals input).
CANONICAL_MATCHES = [
    {"in_port": 1, "in_phy_port": 2},
    {"in_port": 0xFFFFFF00},
    {"metadata": 0xDEADBEEF},
    {"metadata": "5/255"},
    {"tun_id": 42},
    {"tun_id": "16/240"},
    {"dl_src": "00:11:22:33:44:55", "dl_dst": "ff:ff:ff:ff:ff:ff"},
    {"dl_dst": "01:00:00:00:00:00/01:00:00:00:00:00"},
    {"dl_type": 0x88CC},
    {"dl_vlan": 100},
    {"dl_vlan": 0},
    {"dl_vlan": "16/4080"},
    {"dl_vlan": "any"},
    {"dl_vlan": "untagged"},
    {"dl_vlan": 10, "dl_vlan_pcp": 5},
    {**IPV4, "ip_dscp": 46, "ip_ecn": 3, "nw_proto": 17},
    {**IPV4, "nw_src": "10.0.0.1", "nw_dst": "192.168.0.0/16"},
    {**IPV4, "nw_src": "10.0.0.0/255.0.255.0"},
    {**TCP4, "tp_src": 40000, "tp_dst": 5222},
    {**IPV4, "nw_proto": 17, "udp_src": 53, "udp_dst": 5353},
    {**IPV4, "nw_proto": 132, "sctp_src": 1, "sctp_dst": 2},
    {**IPV4, "nw_proto": 1, "icmpv4_type": 8, "icmpv4_code": 0},
    {"dl_type": 0x0806, "arp_op": 1, "arp_spa": "10.0.0.1", "arp_tpa": "10.0.0.0/8"},
    {"dl_type": 0x0806, "arp_sha": "aa:bb:cc:dd:ee:ff", "arp_tha": "00:00:00:00:00:01"},
    {**IPV6, "ipv6_src": "2001:0db8:0000:0000:0000:0000:0000:0001"},
    {**IPV6, "ipv6_dst": "fe80:0000:0000:0000:0000:0000:0000:0000/10"},
    {**IPV6, "ipv6_flabel": 0xFFFFF},
    {**IPV6, "ipv6_flabel": "1/15"},
    {**IPV6, "v6_hdr": 0x1FF},
    {**IPV6, "nw_proto": 58, "icmpv6_type": 135, "icmpv6_code": 0},
    {
        **IPV6,
        "nw_proto": 58,
        "icmpv6_type": 135,
        "nd_tar": "2001:0db8:0000:0000:0000:0000:0000:0002",
        "nd_sll": "00:00:00:00:00:02",
    },
    {**IPV6, "nw_proto": 58, "icmpv6_type": 136, "nd_tll": "00:00:00:00:00:03"},
    {"dl_type": 0x8847, "mpls_lab": 0xFFFFF, "mpls_tc": 7, "mpls_bos": 1},
    {"dl_type": 0x88E7, "pbb_isid": 0xABCDEF},
    {"dl_type": 0x88E7, "pbb_isid": "256/65280"},
    {},
]


@pytest.mark.parametrize("match", CANONICAL_MATCHES, ids=lambda m: ",".join(m) or "empty")
def test_canonical_match_survives_the_wire(match):
    assert wire_round_trip(match) == match


def test_every_contract_field_is_covered_by_a_round_trip():
    covered = {name for match in CANONICAL_MATCHES for name in match}
    assert covered == set(FIELDS)


@pytest.mark.parametrize(
    ("given", "read_back"),
    [
        ({"dl_src": "AA:BB:CC:DD:EE:FF"}, {"dl_src": "aa:bb:cc:dd:ee:ff"}),
        ({"dl_src": "aa:bb:cc:dd:ee:ff/ff:ff:ff:ff:ff:ff"}, {"dl_src": "aa:bb:cc:dd:ee:ff"}),
        ({**IPV4, "nw_src": "10.0.0.1/32"}, {**IPV4, "nw_src": "10.0.0.1"}),
        # host bits under a 0 mask bit are cleared (OVS rejects them: BAD_WILDCARDS)
        ({**IPV4, "nw_dst": "10.1.2.3/24"}, {**IPV4, "nw_dst": "10.1.2.0/24"}),
        (
            {**IPV6, "ipv6_src": "2001:db8::1"},
            {**IPV6, "ipv6_src": "2001:0db8:0000:0000:0000:0000:0000:0001"},
        ),
        (
            {**IPV6, "ipv6_src": "2001:db8::1/128"},
            {**IPV6, "ipv6_src": "2001:0db8:0000:0000:0000:0000:0000:0001"},
        ),
        ({"metadata": "0x10/0xffffffffffffffff"}, {"metadata": 16}),
        ({"dl_vlan": "5/4095"}, {"dl_vlan": 5}),
    ],
)
def test_read_back_normalises_like_upstream(given, read_back):
    assert wire_round_trip(given) == read_back


def test_vlan_present_bit_is_added_on_the_wire():
    tlv = match_from_dict({"dl_vlan": 100}).oxm_match_fields[0]
    assert tlv.oxm_value == (0x1000 | 100).to_bytes(2, "big")


def test_prerequisites_are_emitted_before_dependent_fields():
    match = match_from_dict({"tp_dst": 80, "nw_proto": 6, "dl_type": 0x0800, "in_port": 3})
    order = [int(tlv.oxm_field) for tlv in match.oxm_match_fields]
    assert order == sorted(order)


@pytest.mark.parametrize(
    ("match", "message"),
    [
        ({**IPV4, "nw_src": "10.0.0.300"}, "match.nw_src: '10.0.0.300' is not an IPv4 address"),
        ({**IPV4, "nw_src": "2001:db8::1"}, "is not an IPv4 address"),
        ({**IPV4, "nw_src": "10.0.0.1/33"}, "invalid prefix length"),
        ({**IPV4, "nw_src": "10.0.0.0/\u00b2"}, "invalid prefix length"),  # '²'.isdigit()
        ({**IPV4, "nw_src": "10.0.0.0/\u0662\u0664"}, "invalid prefix length"),  # Arabic 24
        ({"metadata": "\u0663/0xff"}, "is not an integer"),
        ({"metadata": "1_0/0xff"}, "is not an integer"),
        ({**IPV4, "nw_src": 167772161}, "is not an IPv4 address"),
        ({**IPV6, "ipv6_src": "10.0.0.1"}, "is not an IPv6 address"),
        ({"dl_src": "aa:bb:cc:dd:ee"}, "match.dl_src: 'aa:bb:cc:dd:ee' is not a MAC address"),
        ({"dl_src": "aa-bb-cc-dd-ee-ff"}, "is not a MAC address"),
        ({"in_port": -1}, "match.in_port: -1 is out of range 0..4294967295"),
        ({"in_port": 2**32}, "out of range"),
        ({"in_port": "1"}, "match.in_port: '1' is not an integer"),
        ({"in_port": True}, "is not an integer"),
        ({"in_port": "1/1"}, "cannot be masked"),
        ({"dl_vlan": 4096}, "out of range 0..4095"),
        ({"dl_vlan": "tagged"}, "is not a VLAN id"),
        ({"dl_vlan": 1, "dl_vlan_pcp": 8}, "out of range 0..7"),
        ({"dl_type": 0x10000}, "out of range 0..65535"),
        ({"metadata": "x/1"}, "is not an integer"),
        ({"nd_tar": "::1/64", **IPV6, "nw_proto": 58, "icmpv6_type": 135}, "cannot be masked"),
        ({"dl_source": "aa:bb:cc:dd:ee:ff"}, "match: unknown key(s) 'dl_source'"),
    ],
)
def test_bad_values_are_refused_with_the_key_and_value(match, message):
    with pytest.raises(FlowValidationError) as error:
        match_from_dict(match)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("match", "message"),
    [
        ({"tp_dst": 5222}, "match.tp_dst: needs nw_proto 6 (TCP)"),
        ({**IPV4, "tp_dst": 5222}, "needs nw_proto 6"),
        ({**IPV4, "nw_proto": 17, "tp_dst": 5222}, "needs nw_proto 6"),
        ({"nw_proto": 6}, "match.nw_proto: needs dl_type 0x0800 or 0x86dd"),
        ({"nw_src": "10.0.0.1"}, "match.nw_src: needs dl_type 0x0800 (IPv4)"),
        ({"dl_type": 0x86DD, "nw_src": "10.0.0.1"}, "needs dl_type 0x0800"),
        ({"dl_type": 0x0800, "ipv6_src": "::1"}, "match.ipv6_src: needs dl_type 0x86dd"),
        ({**IPV6, "nw_proto": 1, "icmpv4_type": 8}, "match.icmpv4_type: needs dl_type 0x0800"),
        ({"in_phy_port": 1}, "match.in_phy_port: needs in_port"),
        ({"dl_vlan_pcp": 3}, "match.dl_vlan_pcp: needs dl_vlan"),
        ({"dl_vlan": "untagged", "dl_vlan_pcp": 3}, "needs dl_vlan"),
        ({"arp_op": 1}, "needs dl_type 0x0806"),
        ({**IPV6, "nw_proto": 58, "icmpv6_type": 136, "nd_sll": "00:00:00:00:00:01"}, "135"),
        ({"mpls_lab": 1}, "needs dl_type 0x8847 or 0x8848"),
    ],
)
def test_unmet_prerequisites_are_refused_before_a_switch_sees_them(match, message):
    with pytest.raises(FlowValidationError) as error:
        match_from_dict(match)
    assert message in str(error.value)
    assert "BAD_PREREQ" in str(error.value)


def test_non_basic_oxm_from_a_switch_is_skipped_not_fatal():
    match = match_from_dict({"in_port": 1})
    nicira = OxmTLV(oxm_class=OxmClass.OFPXMC_NXM_1, oxm_field=5, oxm_value=b"\x00\x01")
    match.oxm_match_fields.append(nicira)
    unpacked = Match()
    unpacked.unpack(match.pack())
    assert match_to_dict(unpacked) == {"in_port": 1}


def test_match_to_dict_of_none_is_empty():
    assert match_to_dict(None) == {}
