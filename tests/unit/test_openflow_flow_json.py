"""Flow dict -> FlowMod -> wire -> dict, FlowStats -> as_dict, and every refusal."""

from __future__ import annotations

import hashlib
import json

import pytest
from pyof.utils import unpack
from pyof.v0x04.common.flow_instructions import InstructionApplyAction
from pyof.v0x04.controller2switch.flow_mod import FlowModCommand
from pyof.v0x04.controller2switch.multipart_reply import FlowStats

from xmpp_ofc.openflow.flow_json import (
    FlowValidationError,
    canonical_flow,
    flow_id,
    flow_mod_from_dict,
    flow_mod_to_dict,
    flow_stats_to_dict,
)

CONTROLLER = 4294967293
DPID = "00:00:00:00:00:00:00:0a"


def over_the_wire(flow: dict, command: str = "add") -> dict:
    """Build, pack and unpack the FlowMod as a switch would receive it."""
    packed = flow_mod_from_dict(flow, command, xid=77).pack()
    message = unpack(packed)
    assert message.header.xid == 77
    return flow_mod_to_dict(message)


def test_upstream_defaults():
    result = over_the_wire({})
    assert result == {
        "table_id": 0,
        "priority": 32768,
        "idle_timeout": 0,
        "hard_timeout": 0,
        "cookie": 0,
        "cookie_mask": 0,
        "match": {},
        "instructions": [],
        "flags": ["send_flow_rem"],
    }
    message = flow_mod_from_dict({}, "add")
    assert message.command == FlowModCommand.OFPFC_ADD
    assert message.buffer_id == 0xFFFFFFFF
    assert message.out_port == 0xFFFFFFFF
    assert message.out_group == 0xFFFFFFFF


def test_all_scalar_keys_survive_the_wire():
    flow = {
        "table_id": 3,
        "priority": 65535,
        "idle_timeout": 10,
        "hard_timeout": 65535,
        "cookie": 2**64 - 1,
        "cookie_mask": 0xFF00,
        "flags": ["check_overlap", "reset_counts", "no_pkt_counts", "no_byt_counts"],
    }
    result = over_the_wire(flow)
    assert {key: result[key] for key in flow} == flow


def test_top_level_actions_become_one_apply_actions_instruction():
    actions = [
        {"action_type": "push_vlan", "tag_type": "s"},
        {"action_type": "set_vlan", "vlan_id": 42},
        {"action_type": "set_queue", "queue_id": 1},
        {"action_type": "output", "port": 2},
        {"action_type": "output", "port": CONTROLLER, "max_len": 128},
        {"action_type": "pop_vlan"},
        {"action_type": "group", "group_id": 5},
        {"action_type": "set_field", "field": "dl_dst", "value": "00:00:00:00:00:09"},
    ]
    result = over_the_wire({"actions": actions})
    assert result["instructions"] == [{"instruction_type": "apply_actions", "actions": actions}]


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("CONTROLLER", 4294967293),
        ("FLOOD", 4294967291),
        ("ALL", 4294967292),
        ("IN_PORT", 4294967288),
        ("LOCAL", 4294967294),
        ("controller", 4294967293),
    ],
)
def test_named_ports_are_read_back_as_the_upstream_ints(name, number):
    result = over_the_wire({"actions": [{"action_type": "output", "port": name}]})
    assert result["instructions"][0]["actions"] == [{"action_type": "output", "port": number}]


def test_instructions_extension_round_trip():
    instructions = [
        {"instruction_type": "meter", "meter_id": 7},
        {"instruction_type": "apply_actions", "actions": [{"action_type": "output", "port": 1}]},
        {"instruction_type": "clear_actions"},
        {"instruction_type": "write_actions", "actions": [{"action_type": "output", "port": 3}]},
        {"instruction_type": "write_metadata", "metadata": 5, "metadata_mask": 255},
        {"instruction_type": "goto_table", "table_id": 1},
    ]
    result = over_the_wire({"table_id": 0, "instructions": instructions})
    assert result["instructions"] == instructions


def test_write_metadata_mask_defaults_to_all_bits():
    result = over_the_wire(
        {"instructions": [{"instruction_type": "write_metadata", "metadata": 1}]}
    )
    assert result["instructions"][0]["metadata_mask"] == 2**64 - 1


def test_empty_actions_and_empty_instructions_both_mean_drop():
    assert flow_mod_from_dict({"actions": []}, "add").instructions == []
    assert flow_mod_from_dict({"instructions": []}, "add").instructions == []


def test_delete_defaults_and_filters():
    message = flow_mod_from_dict(
        {"table_id": 255, "cookie": 0x0100, "cookie_mask": 0xFF00, "out_port": 2, "out_group": 1},
        "delete",
    )
    assert message.command == FlowModCommand.OFPFC_DELETE
    result = flow_mod_to_dict(unpack(message.pack()))
    assert result["table_id"] == 255
    assert (result["cookie"], result["cookie_mask"]) == (0x0100, 0xFF00)
    assert (result["out_port"], result["out_group"]) == (2, 1)
    assert flow_mod_from_dict({}, "delete").table_id == 0  # upstream default, not "all"


def test_delete_validates_but_does_not_send_actions():
    message = flow_mod_from_dict({"actions": [{"action_type": "output", "port": 1}]}, "delete")
    assert message.instructions == []
    with pytest.raises(FlowValidationError):
        flow_mod_from_dict({"actions": [{"action_type": "output", "port": 0}]}, "delete")


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ("add", FlowModCommand.OFPFC_ADD),
        ("modify", FlowModCommand.OFPFC_MODIFY),
        ("modify_strict", FlowModCommand.OFPFC_MODIFY_STRICT),
        ("delete", FlowModCommand.OFPFC_DELETE),
        ("delete_strict", FlowModCommand.OFPFC_DELETE_STRICT),
    ],
)
def test_commands(command, code):
    assert unpack(flow_mod_from_dict({}, command).pack()).command == code


def test_an_unknown_command_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown flow command"):
        flow_mod_from_dict({}, "insert")


def test_get_answer_keys_are_accepted_so_listed_flows_can_be_deleted():
    listed = {"switch": DPID, "id": "abc", "stats": {"packet_count": 1}, "priority": 5}
    assert flow_mod_from_dict(listed, "delete_strict").priority == 5


def test_buffer_id_is_sent_but_never_part_of_the_canonical_flow():
    message = flow_mod_from_dict({"buffer_id": 12}, "add")
    assert message.buffer_id == 12
    assert "buffer_id" not in canonical_flow({"buffer_id": 12}, "add")


def test_canonical_flow_makes_spellings_equal():
    one = {
        "match": {"dl_src": "AA:BB:CC:DD:EE:FF"},
        "actions": [{"action_type": "output", "port": "FLOOD"}],
    }
    two = {
        "priority": 32768,
        "match": {"dl_src": "aa:bb:cc:dd:ee:ff"},
        "instructions": [
            {
                "instruction_type": "apply_actions",
                "actions": [{"action_type": "output", "port": 4294967291}],
            }
        ],
    }
    assert canonical_flow(one, "add") == canonical_flow(two, "add")
    # canonical form is valid input again
    assert canonical_flow(canonical_flow(one, "add"), "add") == canonical_flow(one, "add")


@pytest.mark.parametrize(
    ("flow", "command", "message"),
    [
        ([], "add", "flows[0]: [] is not a JSON object"),
        ({"priority": 65536}, "add", "flows[0].priority: 65536 is out of range 0..65535"),
        ({"priority": -1}, "add", "flows[0].priority"),
        ({"priority": "10"}, "add", "flows[0].priority: '10' is not an integer"),
        ({"priority": 1.5}, "add", "is not an integer"),
        ({"table_id": 255}, "add", "flows[0].table_id: 255 is out of range 0..254"),
        ({"table_id": 256}, "delete", "flows[0].table_id: 256 is out of range 0..255"),
        ({"idle_timeout": 70000}, "add", "flows[0].idle_timeout"),
        ({"hard_timeout": -5}, "add", "flows[0].hard_timeout"),
        ({"cookie": 2**64}, "add", "flows[0].cookie"),
        ({"cookie_mask": -1}, "delete", "flows[0].cookie_mask"),
        ({"flags": ["send_flow_removed"]}, "add", "flows[0].flags[0]: 'send_flow_removed'"),
        ({"flags": "send_flow_rem"}, "add", "flows[0].flags: 'send_flow_rem' is not a JSON array"),
        ({"idle_timout": 5}, "add", "flows[0]: unknown key(s) 'idle_timout'"),
        ({"out_port": 1}, "add", "unknown key(s) 'out_port'"),
        ({"buffer_id": 1}, "delete", "unknown key(s) 'buffer_id'"),
        ({"out_port": 0xFFFFFF01}, "delete", "flows[0].out_port"),
        ({"out_group": 0xFFFFFF01}, "delete", "flows[0].out_group"),
        ({"match": []}, "add", "flows[0].match: [] is not a JSON object"),
        ({"match": {"tp_dst": 80}}, "add", "flows[0].match.tp_dst: needs nw_proto 6"),
        (
            {"match": {"dl_type": 2048, "nw_src": "10.0.0.300"}},
            "add",
            "flows[0].match.nw_src: '10.0.0.300' is not an IPv4 address",
        ),
        ({"actions": {}}, "add", "flows[0].actions: {} is not a JSON array"),
        ({"actions": ["output"]}, "add", "flows[0].actions[0]: 'output' is not a JSON object"),
        ({"actions": [{"action_type": "drop"}]}, "add", "flows[0].actions[0].action_type: 'drop'"),
        ({"actions": [{"port": 1}]}, "add", "flows[0].actions[0].action_type: None"),
        ({"actions": [{"action_type": "output"}]}, "add", "flows[0].actions[0].port: missing"),
        ({"actions": [{"action_type": "output", "port": 0}]}, "add", "actions[0].port: 0"),
        ({"actions": [{"action_type": "output", "port": 2**32}]}, "add", "actions[0].port"),
        ({"actions": [{"action_type": "output", "port": 0xFFFFFFFF}]}, "add", "reserved port"),
        ({"actions": [{"action_type": "output", "port": "SIDEWAYS"}]}, "add", "'SIDEWAYS'"),
        ({"actions": [{"action_type": "output", "port": 1, "max_len": 0xFFF0}]}, "add", "max_len"),
        ({"actions": [{"action_type": "output", "port": 1, "queue": 1}]}, "add", "'queue'"),
        ({"actions": [{"action_type": "set_vlan", "vlan_id": 4096}]}, "add", "vlan_id: 4096"),
        ({"actions": [{"action_type": "push_vlan", "tag_type": "x"}]}, "add", "tag_type: 'x'"),
        ({"actions": [{"action_type": "set_queue"}]}, "add", "queue_id: missing"),
        (
            {"actions": [{"action_type": "set_field", "field": "dl_dst", "value": "x"}]},
            "add",
            "flows[0].actions[0].value: 'x' is not a MAC address",
        ),
        (
            {"actions": [{"action_type": "set_field", "field": "color", "value": 1}]},
            "add",
            "actions[0].field: 'color'",
        ),
        ({"actions": [], "instructions": []}, "add", "not both"),
        (
            {"instructions": [{"instruction_type": "jump"}]},
            "add",
            "instructions[0].instruction_type",
        ),
        ({"instructions": [{"instruction_type": "goto_table"}]}, "add", "table_id: missing"),
        (
            {"table_id": 1, "instructions": [{"instruction_type": "goto_table", "table_id": 1}]},
            "add",
            "flows[0].instructions[0].table_id: 1 is out of range 2..254",
        ),
        ({"instructions": [{"instruction_type": "meter", "meter_id": 0}]}, "add", "meter_id: 0"),
        (
            {"instructions": [{"instruction_type": "meter", "meter_id": 1, "rate": 5}]},
            "add",
            "unknown key(s) 'rate'",
        ),
        (
            {"instructions": [{"instruction_type": "clear_actions"}] * 2},
            "add",
            "appears twice",
        ),
        (
            {"instructions": [{"instruction_type": "apply_actions"}]},
            "add",
            "instructions[0].actions: missing",
        ),
        # Unhashable names were a TypeError (500 over REST; schemathesis, issue 13).
        ({"instructions": [{"instruction_type": {}}]}, "delete", "instruction_type: {}"),
        ({"actions": [{"action_type": "push_vlan", "tag_type": []}]}, "add", "tag_type: []"),
        (
            {"actions": [{"action_type": "set_field", "field": {}, "value": 1}]},
            "add",
            "field: {} is not a match field name",
        ),
    ],
)
def test_invalid_flows_are_refused_with_path_and_value(flow, command, message):
    with pytest.raises(FlowValidationError) as error:
        flow_mod_from_dict(flow, command, path="flows[0]")
    assert message in str(error.value)


def test_validation_error_is_a_value_error():
    assert issubclass(FlowValidationError, ValueError)


# --- FlowStats -> Flow.as_dict() -------------------------------------------------


def flow_stats_from_switch(flow: dict, **counters) -> FlowStats:
    """A FlowStats entry as unpacked from a multipart reply."""
    message = flow_mod_from_dict(flow, "add")
    stats = FlowStats(
        table_id=message.table_id,
        duration_sec=counters.get("duration_sec", 5),
        duration_nsec=counters.get("duration_nsec", 6),
        priority=message.priority,
        idle_timeout=message.idle_timeout,
        hard_timeout=message.hard_timeout,
        flags=1,
        cookie=message.cookie,
        packet_count=counters.get("packet_count", 7),
        byte_count=counters.get("byte_count", 800),
        match=message.match,
        instructions=message.instructions,
    )
    stats.length = stats.get_size()
    unpacked = FlowStats()
    unpacked.unpack(stats.pack())
    return unpacked


def test_flow_stats_to_dict_has_the_upstream_shape_plus_instructions():
    flow = {
        "table_id": 0,
        "priority": 200,
        "idle_timeout": 30,
        "cookie": 0x0102000000000007,
        "match": {"dl_type": 2048, "nw_src": "10.0.0.5", "nw_proto": 6, "tp_dst": 5222},
        "instructions": [
            {"instruction_type": "meter", "meter_id": 7},
            {
                "instruction_type": "apply_actions",
                "actions": [{"action_type": "output", "port": CONTROLLER}],
            },
            {"instruction_type": "goto_table", "table_id": 1},
        ],
    }
    result = flow_stats_to_dict(flow_stats_from_switch(flow), DPID)
    assert list(result) == [
        "switch",
        "table_id",
        "match",
        "priority",
        "idle_timeout",
        "hard_timeout",
        "cookie",
        "actions",
        "instructions",
        "id",
        "stats",
    ]
    assert result["switch"] == DPID
    assert result["match"] == flow["match"]
    assert result["actions"] == [{"action_type": "output", "port": CONTROLLER}]
    assert result["instructions"] == flow["instructions"]
    assert result["stats"] == {
        "byte_count": 800,
        "duration_sec": 5,
        "duration_nsec": 6,
        "packet_count": 7,
    }


def test_flow_id_is_md5_of_sorted_json_without_id_and_stats():
    result = flow_stats_from_switch(
        {"priority": 9, "actions": [{"action_type": "output", "port": 1}]}
    )
    as_dict = flow_stats_to_dict(result, DPID)
    body = {key: value for key, value in as_dict.items() if key not in ("id", "stats")}
    assert as_dict["id"] == hashlib.md5(json.dumps(body, sort_keys=True).encode()).hexdigest()
    assert flow_id(as_dict) == as_dict["id"]


def test_flow_id_ignores_counters_but_not_instructions():
    flow = {"actions": [{"action_type": "output", "port": 1}]}
    first = flow_stats_to_dict(flow_stats_from_switch(flow, packet_count=1), DPID)
    later = flow_stats_to_dict(flow_stats_from_switch(flow, packet_count=99), DPID)
    assert first["id"] == later["id"]
    with_goto = {
        "instructions": [
            {"instruction_type": "apply_actions", "actions": flow["actions"]},
            {"instruction_type": "goto_table", "table_id": 1},
        ]
    }
    assert flow_stats_to_dict(flow_stats_from_switch(with_goto), DPID)["id"] != first["id"]


def test_flow_stats_built_in_memory_decode_too():
    message = flow_mod_from_dict({"actions": [{"action_type": "pop_vlan"}]}, "add")
    stats = FlowStats(
        table_id=0,
        duration_sec=0,
        duration_nsec=0,
        priority=1,
        idle_timeout=0,
        hard_timeout=0,
        flags=0,
        cookie=0,
        packet_count=0,
        byte_count=0,
        match=message.match,
        instructions=[InstructionApplyAction(actions=message.instructions[0].actions)],
    )
    assert flow_stats_to_dict(stats, DPID)["actions"] == [{"action_type": "pop_vlan"}]
