"""xmpp_ofc.openflow.fast_codec: struct-built FLOW_MOD / PACKET_OUT equal pyof's, byte for byte.

pyof stays the reference: every flow is also validated and packed through
``flow_json`` (pyof), and the fast path must give the same canonical dict, the
same bytes, and fall back (None) wherever the reference refuses.
"""

from __future__ import annotations

import random

import pytest
from pyof.v0x04.common.action import ActionOutput
from pyof.v0x04.common.utils import unpack_message
from pyof.v0x04.controller2switch.packet_out import PacketOut
from test_openflow_flow_stats_codec import CANONICAL_MATCHES

from xmpp_ofc.openflow.fast_codec import (
    FLAG_BITS,
    encode_flow_mod,
    encode_packet_out,
    fast_canonical_flow,
    new_xid,
)
from xmpp_ofc.openflow.flow_json import (
    COMMANDS,
    FlowValidationError,
    canonical_flow,
    flow_mod_from_dict,
    flow_mod_to_dict,
)
from xmpp_ofc.openflow.packed import PackedMessage

OUT = {"action_type": "output", "port": 2}
FLOWS = [
    {},
    {"priority": 1},
    {"table_id": 1, "priority": 0, "cookie": 0xA201 << 48, "actions": []},
    {
        "table_id": 1,
        "priority": 1000,
        "idle_timeout": 300,
        "hard_timeout": 3600,
        "cookie": 0xA202000000000001,
        "match": {"in_port": 1, "dl_dst": "0E:01:00:00:00:02"},
        "instructions": [{"instruction_type": "apply_actions", "actions": [OUT]}],
    },
    {"match": {"dl_vlan": 100}, "actions": [{"action_type": "pop_vlan"}, OUT]},
    {"actions": [{"action_type": "push_vlan"}, {"action_type": "set_vlan", "vlan_id": 7}, OUT]},
    {
        "actions": [
            {"action_type": "push_vlan", "tag_type": "s"},
            {"action_type": "group", "group_id": 3},
        ]
    },
    {"actions": [{"action_type": "set_queue", "queue_id": 5}, {**OUT, "max_len": 128}]},
    {"actions": [{"action_type": "output", "port": 0xFFFFFFFD, "max_len": 0xFFFF}]},
    {
        "table_id": 0,
        "flags": ["check_overlap", "send_flow_rem", "send_flow_rem", "no_byt_counts"],
        "instructions": [
            {"instruction_type": "meter", "meter_id": 9},
            {"instruction_type": "write_metadata", "metadata": 5},
            {"instruction_type": "clear_actions"},
            {"instruction_type": "write_actions", "actions": [OUT]},
            {"instruction_type": "goto_table", "table_id": 3},
        ],
    },
    {"instructions": [{"instruction_type": "write_metadata", "metadata": 5, "metadata_mask": 7}]},
    {"flags": [], "buffer_id": 17, "match": {"dl_type": 0x0800, "nw_src": "10.0.0.1/24"}},
    {"switch": "00:00:00:00:00:00:00:01", "id": "x", "stats": {}, "priority": 5},
]  # fmt: skip
DELETES = [
    {},
    {"cookie": 7, "cookie_mask": 255, "table_id": 255},
    {"match": {"dl_dst": "0e:01:00:00:00:02"}, "out_port": 3, "out_group": 4},
    {"out_port": 0xFFFFFFF8, "actions": [OUT]},
    {"instructions": [{"instruction_type": "goto_table", "table_id": 2}], "table_id": 1},
]
#: Valid flows outside the fast subset: the caller uses the pyof path for these.
NOT_FAST = [
    {"actions": [{"action_type": "output", "port": "FLOOD"}]},
    {"actions": [{"action_type": "set_field", "field": "dl_dst", "value": "00:00:00:00:00:01"}]},
]
INVALID = [
    [],
    {"prority": 1},
    {"priority": True},
    {"priority": 0x10000},
    {"table_id": 255},
    {"cookie": -1},
    {"flags": "send_flow_rem"},
    {"flags": ["nope"]},
    {"flags": [["list"]]},
    {"match": []},
    {"match": {"nope": 1}},
    {"match": {"tp_dst": 80}},
    {"match": {"dl_dst": "not a mac"}},
    {"match": {"in_port": "1/1"}},
    {"actions": [OUT], "instructions": []},
    {"actions": {}},
    {"actions": [1]},
    {"actions": [{"action_type": "output"}]},
    {"actions": [{"action_type": "output", "port": 0}]},
    {"actions": [{"action_type": "output", "port": 0xFFFFFF01}]},
    {"actions": [{"action_type": "output", "port": 1, "max_len": 0xFFF0}]},
    {"actions": [{"action_type": "output", "port": 1, "extra": 1}]},
    {"actions": [{"action_type": "set_vlan", "vlan_id": 4096}]},
    {"actions": [{"action_type": "push_vlan", "tag_type": "x"}]},
    {"actions": [{"action_type": "set_queue", "queue_id": 2**32 - 1}]},
    {"actions": [{"action_type": "group", "group_id": 0xFFFFFF01}]},
    {"actions": [{"action_type": "teleport"}]},
    {"instructions": [{"instruction_type": "goto_table", "table_id": 0}]},
    {"instructions": [{"instruction_type": "meter", "meter_id": 0}]},
    {"instructions": [{"instruction_type": "clear_actions"}] * 2},
    {"instructions": [{"instruction_type": "clear_actions", "x": 1}]},
    {"instructions": [{"instruction_type": "jump"}]},
    {"instructions": {}},
    {"buffer_id": -1},
    {"out_port": 1},  # delete-only key on an add
]


def reference_bytes(flow, command, xid):
    return flow_mod_from_dict(flow, command, xid=xid).pack()


def assert_same_as_pyof(flow, command):
    canonical = fast_canonical_flow(flow, command)
    assert canonical == canonical_flow(flow, command)
    xid = new_xid()
    raw = encode_flow_mod(canonical, command, xid, flow.get("buffer_id", 0xFFFFFFFF))
    assert raw == reference_bytes(flow, command, xid)
    return raw


@pytest.mark.parametrize("flow", FLOWS)
def test_add_flows_equal_pyof_canonical_form_and_bytes(flow):
    assert_same_as_pyof(flow, "add")


@pytest.mark.parametrize("match", CANONICAL_MATCHES)
def test_every_match_field_equals_pyof(match):
    assert_same_as_pyof({"match": match, "actions": [OUT]}, "add")


def test_a_match_written_differently_reads_back_canonical():
    flow = {
        "match": {
            "dl_type": 0x0800,
            "nw_dst": "10.1.2.3/255.255.0.0",
            "dl_src": "AA:BB:CC:DD:EE:FF",
        }
    }
    canonical = fast_canonical_flow(flow, "add")
    assert canonical["match"] == {
        "dl_src": "aa:bb:cc:dd:ee:ff",
        "dl_type": 0x0800,
        "nw_dst": "10.1.0.0/16",
    }
    assert list(canonical["match"]) == list(canonical_flow(flow, "add")["match"])  # OXM order


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("flow", DELETES)
def test_every_command_equals_pyof(command, flow):
    if command not in ("delete", "delete_strict") and ("out_port" in flow or "out_group" in flow):
        flow = {k: v for k, v in flow.items() if k not in ("out_port", "out_group")}
    if command not in ("delete", "delete_strict") and flow.get("table_id") == 255:
        flow = {**flow, "table_id": 254}
    assert_same_as_pyof(flow, command)


@pytest.mark.parametrize("flow", NOT_FAST)
def test_valid_flows_outside_the_subset_fall_back(flow):
    canonical_flow(flow, "add")  # valid for the reference
    assert fast_canonical_flow(flow, "add") is None


@pytest.mark.parametrize("flow", INVALID)
def test_whatever_pyof_refuses_falls_back(flow):
    with pytest.raises(FlowValidationError):
        canonical_flow(flow, "add")
    assert fast_canonical_flow(flow, "add") is None


def test_unknown_command_falls_back():
    assert fast_canonical_flow({}, "replace") is None


def random_flow(rng: random.Random) -> dict:
    flow: dict = {
        "table_id": rng.randrange(0, 254),
        "priority": rng.randrange(0, 0x10000),
        "idle_timeout": rng.randrange(0, 0x10000),
        "hard_timeout": rng.randrange(0, 0x10000),
        "cookie": rng.getrandbits(64),
        "cookie_mask": rng.getrandbits(64),
        "flags": rng.sample(sorted(FLAG_BITS), rng.randrange(0, 6)),
        "match": rng.choice(CANONICAL_MATCHES),
    }
    if rng.random() < 0.5:
        flow["buffer_id"] = rng.getrandbits(32)
    actions = []
    for _ in range(rng.randrange(0, 4)):
        kind = rng.choice(["output", "set_vlan", "push_vlan", "pop_vlan", "set_queue", "group"])
        if kind == "output":
            action = {
                "action_type": kind,
                "port": rng.choice([rng.randrange(1, 0xFFFFFF00), 0xFFFFFFFB]),
            }
            if rng.random() < 0.5:
                action["max_len"] = rng.randrange(0, 0xFFE6)
        elif kind == "set_vlan":
            action = {"action_type": kind, "vlan_id": rng.randrange(0, 4096)}
        elif kind == "push_vlan":
            action = {"action_type": kind, "tag_type": rng.choice("cs")}
        elif kind == "pop_vlan":
            action = {"action_type": kind}
        elif kind == "set_queue":
            action = {"action_type": kind, "queue_id": rng.randrange(0, 2**32 - 1)}
        else:
            action = {"action_type": kind, "group_id": rng.randrange(0, 0xFFFFFF01)}
        actions.append(action)
    if rng.random() < 0.5:
        flow["actions"] = actions
    else:
        instructions = [{"instruction_type": "apply_actions", "actions": actions}]
        if flow["table_id"] < 254 and rng.random() < 0.5:
            instructions.append(
                {
                    "instruction_type": "goto_table",
                    "table_id": rng.randrange(flow["table_id"] + 1, 255),
                }
            )
        if rng.random() < 0.5:
            instructions.append(
                {"instruction_type": "meter", "meter_id": rng.randrange(1, 0xFFFF0001)}
            )
        rng.shuffle(instructions)
        flow["instructions"] = instructions
    return flow


def test_random_flows_equal_pyof():
    rng = random.Random(9)
    for _ in range(300):
        flow = random_flow(rng)
        command = rng.choice(["add", "modify", "modify_strict"])
        assert_same_as_pyof(flow, command)


def test_flow_mod_round_trips_through_pyof():
    """pyof reads our bytes back to the same canonical flow and the same header."""
    rng = random.Random(3)
    for _ in range(100):
        flow = random_flow(rng)
        canonical = fast_canonical_flow(flow, "add")
        xid = new_xid()
        parsed = unpack_message(encode_flow_mod(canonical, "add", xid, 0xFFFFFFFF))
        assert parsed.header.xid.value == xid
        assert flow_mod_to_dict(parsed) == canonical


# --- PACKET_OUT ---------------------------------------------------------------------------

FRAME = bytes(range(60))


@pytest.mark.parametrize(
    ("in_port", "out_port", "buffer_id", "data"),
    [(3, 1, 0xFFFFFFFF, FRAME), (1, 0xFFFFFFFB, 0xFFFFFFFF, FRAME), (2, 4, 77, b"")],
)
def test_packet_out_equals_pyof(in_port, out_port, buffer_id, data):
    xid = new_xid()
    raw = encode_packet_out(
        xid, in_port, [{"action_type": "output", "port": out_port}], data, buffer_id
    )
    reference = PacketOut(
        xid=xid,
        buffer_id=buffer_id,
        in_port=in_port,
        actions=[ActionOutput(port=out_port)],
        data=data,
    ).pack()
    assert raw == reference


def test_random_packet_outs_round_trip_through_pyof():
    rng = random.Random(5)
    for _ in range(200):
        xid, in_port, out_port = (
            rng.getrandbits(32),
            rng.randrange(1, 0xFFFFFF00),
            rng.randrange(1, 0xFFFFFF00),
        )
        data = rng.randbytes(rng.randrange(14, 1500))
        parsed = unpack_message(
            encode_packet_out(xid, in_port, [{"action_type": "output", "port": out_port}], data)
        )
        assert parsed.header.xid.value == xid
        assert (parsed.buffer_id.value, parsed.in_port.value) == (0xFFFFFFFF, in_port)
        assert [action.port.value for action in parsed.actions] == [out_port]
        assert parsed.data.value == data


# --- PackedMessage ------------------------------------------------------------------------


def test_packed_message_packs_its_bytes_and_shows_pyof_fields_lazily():
    flow = FLOWS[3]
    raw = encode_flow_mod(fast_canonical_flow(flow, "add"), "add", 1234)
    message = PackedMessage(raw)
    assert message.pack() is raw
    assert message.xid == 1234
    assert message.header.xid.value == 1234
    assert message.header.message_type.name == "OFPT_FLOW_MOD"
    assert message._pyof is None  # nothing unpacked yet
    assert message.priority.value == 1000  # a pyof field: unpacked on demand
    assert flow_mod_to_dict(message) == canonical_flow(flow, "add")


def test_a_joined_batch_packs_every_message_in_order():
    first = PackedMessage(encode_flow_mod(fast_canonical_flow({}, "add"), "add", 1))
    second = PackedMessage(encode_flow_mod(fast_canonical_flow({"priority": 1}, "add"), "add", 2))
    batch = PackedMessage.join([first, second])
    assert batch.pack() == first.raw + second.raw
    assert (batch.count, batch.header.xid.value) == (2, 1)
    assert PackedMessage.join([first]) is first
    assert "messages=2" in repr(batch)
