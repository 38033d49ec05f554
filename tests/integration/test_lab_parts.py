"""Pure parts of the lab: flow-dump parsing, names and tags, process identity (no root)."""

from __future__ import annotations

import os
import subprocess

import pytest

from xmpp_ofc.lab import ovs, state


def test_parse_flow_reads_stats_match_flags_and_actions():
    line = (
        " cookie=0x2a, duration=3.021s, table=0, n_packets=5, n_bytes=420, send_flow_rem "
        "idle_timeout=30, hard_timeout=60, priority=1000,tcp,in_port=1,nw_src=10.77.0.11,"
        "tp_dst=5222 actions=CONTROLLER:65535,goto_table:1"
    )
    flow = ovs.parse_flow(line)
    assert (flow.cookie, flow.table, flow.priority) == (42, 0, 1000)
    assert (flow.idle_timeout, flow.hard_timeout) == (30, 60)
    assert (flow.n_packets, flow.n_bytes) == (5, 420)
    assert flow.flags == ("send_flow_rem",)
    assert flow.match == {"tcp": None, "in_port": "1", "nw_src": "10.77.0.11", "tp_dst": "5222"}
    assert flow.actions == "CONTROLLER:65535,goto_table:1"
    assert str(flow) == line.strip()


def test_parse_flow_defaults_priority_and_empty_match():
    flow = ovs.parse_flow("cookie=0x0, duration=1s, table=1, n_packets=0, n_bytes=0, actions=drop")
    assert (flow.priority, flow.match, flow.actions) == (32768, {}, "drop")


def test_parse_flows_skips_the_reply_header():
    dump = (
        "OFPST_FLOW reply (OF1.3) (xid=0x2):\n"
        " cookie=0x0, table=0, n_packets=0, priority=0 actions=goto_table:1\n"
        " cookie=0x0, table=1, n_packets=0, priority=0 actions=CONTROLLER:65535\n"
    )
    assert [(flow.table, flow.actions) for flow in ovs.parse_flows(dump)] == [
        (0, "goto_table:1"),
        (1, "CONTROLLER:65535"),
    ]


def test_parse_flow_rejects_a_line_without_actions():
    with pytest.raises(ValueError, match="not a flow line"):
        ovs.parse_flow("OFPST_FLOW reply (OF1.3) (xid=0x2):")


def test_dpid_string_is_kytos_spelling(tmp_path):
    switch = ovs.OvsSwitch("ns", tmp_path, dpid=0x0A, state=state.LabState("x"))
    assert switch.dpid_string == "00:00:00:00:00:00:00:0a"


def test_tags_and_namespace_names():
    tag = state.new_tag()
    assert state.check_tag(tag) == tag
    assert state.new_tag() != tag
    assert state.namespace_name("abc1", "s1") == "xofc-abc1-s1"
    for bad in ("", "UPPER", "a-b", "a" * 13, "../x"):
        with pytest.raises(ValueError):
            state.check_tag(bad)


def test_state_file_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv(state.STATE_ROOT_ENV, str(tmp_path))
    saved = state.LabState("abc")
    saved.add_namespace("xofc-abc-s1")
    recorded = saved.add_process(os.getpid(), "test process")
    loaded = state.LabState.load("abc")
    assert loaded.namespaces == ["xofc-abc-s1"]
    assert loaded.processes == [recorded]
    assert state.LabState.load("missing").processes == []


def test_recorded_process_is_not_confused_with_a_recycled_pid():
    child = subprocess.Popen(["sleep", "30"])
    try:
        recorded = state.RecordedProcess.of(child.pid, "sleep")
        assert recorded.alive()
        impostor = state.RecordedProcess(child.pid, recorded.started + 1, "other")
        assert not impostor.alive()
        impostor.terminate()  # must not signal the real process
        assert child.poll() is None
        recorded.terminate()
        assert child.wait(5) is not None
        assert not recorded.alive()
    finally:
        child.kill()
        child.wait(5)
