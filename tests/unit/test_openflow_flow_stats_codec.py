"""xmpp_ofc.openflow.flow_stats_codec: struct decoding of OFPMP_FLOW replies equals pyof's."""

from __future__ import annotations

import contextlib
import random
import struct

import pytest
from pyof.v0x04.common.utils import unpack_message
from pyof.v0x04.controller2switch.common import MultipartType

from xmpp_ofc import pyof_decode
from xmpp_ofc.openflow.flow_json import flow_stats_to_dict
from xmpp_ofc.openflow.flow_stats_codec import (
    FlowStatsDecodeError,
    FlowStatsRecord,
    decode_flow_stats_body,
    decode_flow_stats_reply,
    is_flow_stats_reply,
)
from xmpp_ofc.openflow.match import FIELDS
from xmpp_ofc.testing.fake_switch import flow_stats, multipart_parts

DPID = "00:00:00:00:00:00:00:01"
IPV4, IPV6 = {"dl_type": 0x0800}, {"dl_type": 0x86DD}
ICMPV6 = {**IPV6, "nw_proto": 58}
#: Every field of the JSON contract, masked where it can be, in canonical form.
CANONICAL_MATCHES = [
    {},
    {"in_port": 1, "in_phy_port": 2},
    {"metadata": 0xDEADBEEF},
    {"metadata": "5/255", "tun_id": "16/240"},
    {"tun_id": 42},
    {"dl_src": "00:11:22:33:44:55", "dl_dst": "01:00:00:00:00:00/01:00:00:00:00:00"},
    {"dl_type": 0x88CC},
    {"dl_vlan": 100, "dl_vlan_pcp": 5},
    {"dl_vlan": "16/4080"},
    {"dl_vlan": "any"},
    {"dl_vlan": "untagged"},
    {**IPV4, "ip_dscp": 46, "ip_ecn": 3, "nw_proto": 17, "udp_src": 53, "udp_dst": 5353},
    {**IPV4, "nw_src": "10.0.0.1", "nw_dst": "192.168.0.0/16"},
    {**IPV4, "nw_src": "10.0.0.0/255.0.255.0"},
    {**IPV4, "nw_proto": 6, "nw_src": "10.0.0.9", "tp_src": 40000, "tp_dst": 5222},
    {**IPV4, "nw_proto": 132, "sctp_src": 1, "sctp_dst": 2},
    {**IPV4, "nw_proto": 1, "icmpv4_type": 8, "icmpv4_code": 0},
    {"dl_type": 0x0806, "arp_op": 1, "arp_spa": "10.0.0.1", "arp_tpa": "10.0.0.0/8"},
    {"dl_type": 0x0806, "arp_sha": "aa:bb:cc:dd:ee:ff", "arp_tha": "00:00:00:00:00:01"},
    {**IPV6, "ipv6_src": "2001:0db8:0000:0000:0000:0000:0000:0001", "ipv6_flabel": "1/15"},
    {**IPV6, "ipv6_dst": "fe80:0000:0000:0000:0000:0000:0000:0000/10", "v6_hdr": 0x1FF},
    {**ICMPV6, "icmpv6_type": 135, "icmpv6_code": 0, "nd_sll": "00:00:00:00:00:02",
     "nd_tar": "2001:0db8:0000:0000:0000:0000:0000:0002"},
    {**ICMPV6, "icmpv6_type": 136, "nd_tll": "00:00:00:00:00:03"},
    {"dl_type": 0x8847, "mpls_lab": 0xFFFFF, "mpls_tc": 7, "mpls_bos": 1},
    {"dl_type": 0x88E7, "pbb_isid": "256/65280"},
]  # fmt: skip
OUTPUT_1 = [{"action_type": "output", "port": 1}]
INSTRUCTION_SETS = [
    [],
    [{"instruction_type": "apply_actions", "actions": OUTPUT_1}],
    [
        {"instruction_type": "meter", "meter_id": 7},
        {
            "instruction_type": "apply_actions",
            "actions": [
                {"action_type": "push_vlan", "tag_type": "s"},
                {"action_type": "set_vlan", "vlan_id": 42},
                {"action_type": "set_field", "field": "dl_dst", "value": "00:00:00:00:00:09"},
                {"action_type": "output", "port": 4294967293, "max_len": 128},
            ],
        },
        {"instruction_type": "clear_actions"},
        {"instruction_type": "write_actions", "actions": [{"action_type": "group", "group_id": 5}]},
        {"instruction_type": "write_metadata", "metadata": 5, "metadata_mask": 255},
        {"instruction_type": "goto_table", "table_id": 3},
    ],
]


def stats_for(match: dict, instructions: list, index: int = 0):
    """A pyof FlowStats with distinctive values in every numeric field."""
    stats = flow_stats(
        {
            "table_id": index % 4,
            "priority": 1000 + index,
            "idle_timeout": 60 + index,
            "hard_timeout": 600,
            "cookie": 0xA2_0000_0000_0000_00 + index,
            "match": match,
            "instructions": instructions,
        },
        packet_count=2**40 + index,
        byte_count=2**50 + index,
        duration_sec=86_400 + index,
    )
    stats.duration_nsec = 999_999_999 - index
    stats.flags = index & 0x1F
    return stats


def packed_parts(entries: list, per_part: int = 1000, xid: int = 9) -> list[bytes]:
    return [
        part.pack() for part in multipart_parts(xid, MultipartType.OFPMP_FLOW, entries, per_part)
    ]


def both_paths(raw: bytes) -> tuple[list, list[FlowStatsRecord]]:
    """(pyof FlowStats as of_core used to unpack them, records from the codec)."""
    return list(unpack_message(raw).body), decode_flow_stats_reply(raw).entries


ALL_FLOWS = [
    (match, instructions)
    for match in CANONICAL_MATCHES
    for instructions in (INSTRUCTION_SETS if len(match) <= 1 else INSTRUCTION_SETS[1:2])
]


def test_the_match_families_cover_every_contract_field():
    assert {name for match in CANONICAL_MATCHES for name in match} == set(FIELDS)


def test_every_match_family_and_instruction_set_decodes_as_pyof_does():
    entries = [stats_for(m, i, n) for n, (m, i) in enumerate(ALL_FLOWS)]
    (raw,) = packed_parts(entries)
    pyof_body, records = both_paths(raw)
    assert len(records) == len(ALL_FLOWS)
    assert [r.to_entry(DPID) for r in records] == pyof_decode.flow_stats_entries(DPID, pyof_body)
    assert [flow_stats_to_dict(r, DPID) for r in records] == [
        flow_stats_to_dict(s, DPID) for s in pyof_body
    ]
    assert [r.flags for r in records] == [int(s.flags) for s in pyof_body]
    assert [r.match for r in records] == [m for m, _ in ALL_FLOWS]


def test_the_dispatcher_decoder_accepts_records_and_pyof_alike():
    (raw,) = packed_parts([stats_for(m, [], n) for n, m in enumerate(CANONICAL_MATCHES)])
    pyof_body, records = both_paths(raw)
    assert pyof_decode.flow_stats_entries(DPID, records) == pyof_decode.flow_stats_entries(
        DPID, pyof_body
    )


def test_reply_header_fields_and_reply_more_flag_are_read():
    entries = [stats_for({"in_port": n + 1}, []) for n in range(5)]
    first, last = packed_parts(entries, per_part=3, xid=0xDEADBEEF)
    head, tail = decode_flow_stats_reply(first), decode_flow_stats_reply(last)
    assert (head.xid, head.flags, len(head.entries)) == (0xDEADBEEF, 1, 3)
    assert (tail.xid, tail.flags, len(tail.entries)) == (0xDEADBEEF, 0, 2)
    assert [r.match["in_port"] for r in head.entries + tail.entries] == [1, 2, 3, 4, 5]


def test_an_empty_reply_has_no_entries():
    (raw,) = packed_parts([])
    assert unpack_message(raw).body in ([], b"") or not list(unpack_message(raw).body)
    assert decode_flow_stats_reply(raw).entries == []


def test_only_flow_stats_replies_are_recognised():
    (raw,) = packed_parts([stats_for({}, [])])
    assert is_flow_stats_reply(raw)
    port_stats = bytearray(raw)
    port_stats[9] = int(MultipartType.OFPMP_PORT_STATS)
    assert not is_flow_stats_reply(bytes(port_stats))
    assert not is_flow_stats_reply(raw[:15])
    with pytest.raises(FlowStatsDecodeError, match="not an OFPMP_FLOW"):
        decode_flow_stats_reply(bytes(port_stats))


def test_a_header_length_that_disagrees_with_the_frame_is_refused():
    (raw,) = packed_parts([stats_for({}, [])])
    with pytest.raises(FlowStatsDecodeError, match="header length"):
        decode_flow_stats_reply(raw + b"\0" * 8)


def oxm(oxm_class: int, field: int, value: bytes, has_mask: bool = False) -> bytes:
    return struct.pack("!HBB", oxm_class, field << 1 | has_mask, len(value)) + value


def entry_with_oxms(oxms: bytes, instructions: bytes = b"") -> bytes:
    match = struct.pack("!HH", 1, 4 + len(oxms)) + oxms
    match += b"\0" * (-len(match) % 8)
    body = match + instructions
    fixed = struct.pack("!HBxIIHHHH4xQQQ", 48 + len(body), 0, 1, 2, 3, 4, 5, 0, 6, 7, 8)
    return fixed + body


def test_other_oxm_classes_and_unknown_fields_are_skipped_like_match_to_dict():
    oxms = (
        oxm(0xFFFF, 0, b"\0\0\x23\x20" + b"\1\2\3\4")  # experimenter class
        + oxm(0x8000, 0, b"\0\0\0\7")  # in_port 7
        + oxm(0x8000, 41, b"\0" * 4)  # basic field 41 (after OF1.3): not in the contract
        + oxm(0x8000, 11, b"\x0a\0\0\0\xff\xff\0\0", has_mask=True)  # nw_src 10.0.0.0/16
    )
    (record,) = decode_flow_stats_body(entry_with_oxms(oxms))
    assert record.match == {"in_port": 7, "nw_src": "10.0.0.0/16"}
    assert (record.table_id, record.duration_sec, record.cookie, record.byte_count) == (0, 1, 6, 8)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (entry_with_oxms(b"")[:40], "bytes left"),
        (struct.pack("!H", 0) + entry_with_oxms(b"")[2:], "length 0 does not fit"),
        (struct.pack("!H", 4096) + entry_with_oxms(b"")[2:], "length 4096 does not fit"),
        (entry_with_oxms(oxm(0x8000, 0, b"\0\0\0\7"))[:-1] + b"", "bytes left|does not fit"),
        (entry_with_oxms(b"\x80\x00"), "truncated header"),
        (entry_with_oxms(struct.pack("!HBB", 0x8000, 0, 200)), "overruns the match"),
        (entry_with_oxms(oxm(0x8000, 11, b"\x0a\0\0")), "bad value"),
        (entry_with_oxms(b"", struct.pack("!HH", 1, 64)), "instruction at byte 56"),
        (entry_with_oxms(b"", struct.pack("!HH", 1, 0)), "instruction at byte 56"),
        (entry_with_oxms(b"", b"\0\1"), "truncated header"),
    ],
    ids=[
        "short-entry",
        "zero-length",
        "length-beyond-body",
        "truncated-last-byte",
        "truncated-oxm",
        "oxm-overrun",
        "ipv4-of-3-bytes",
        "instruction-overrun",
        "instruction-zero-length",
        "instruction-truncated",
    ],
)
def test_malformed_bodies_raise_a_clear_error(body, message):
    with pytest.raises(FlowStatsDecodeError, match=message):
        decode_flow_stats_body(body)


def test_a_match_length_beyond_its_entry_is_refused():
    entry = bytearray(entry_with_oxms(oxm(0x8000, 0, b"\0\0\0\7")))
    struct.pack_into("!H", entry, 50, 200)
    with pytest.raises(FlowStatsDecodeError, match="match length 200"):
        decode_flow_stats_body(bytes(entry))


def test_every_truncation_and_random_corruption_raises_only_the_decode_error():
    (raw,) = packed_parts(
        [stats_for(m, INSTRUCTION_SETS[1], n) for n, m in enumerate(CANONICAL_MATCHES[:6])]
    )
    body = raw[16:]
    for cut in range(1, len(body)):
        try:
            decode_flow_stats_body(body[:cut])
        except FlowStatsDecodeError:
            pass
        else:  # only a cut at an entry boundary may decode
            assert cut in _entry_boundaries(body)
    rng = random.Random(7)
    for _ in range(500):
        garbled = bytearray(body)
        for _ in range(rng.randint(1, 8)):
            garbled[rng.randrange(len(garbled))] = rng.randrange(256)
        with contextlib.suppress(FlowStatsDecodeError):
            decode_flow_stats_body(bytes(garbled))


def _entry_boundaries(body: bytes) -> set[int]:
    offsets, offset = set(), 0
    while offset < len(body):
        offset += struct.unpack_from("!H", body, offset)[0]
        offsets.add(offset)
    return offsets


def test_instructions_are_unpacked_with_pyof_on_demand():
    (raw,) = packed_parts([stats_for({"in_port": 1}, INSTRUCTION_SETS[2])])
    pyof_body, (record,) = both_paths(raw)
    assert [i.pack() for i in record.instructions] == [i.pack() for i in pyof_body[0].instructions]
