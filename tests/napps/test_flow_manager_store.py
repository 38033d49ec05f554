"""FlowStore: what is kept per dpid, OpenFlow delete rules, replay, persistence."""

from __future__ import annotations

import json

import pytest

from napps.kytos.flow_manager.flow_store import FlowStore, FlowStoreError, deleted_by
from xmpp_ofc.openflow.flow_json import canonical_flow

DPID = "00:00:00:00:00:00:00:01"
OTHER = "00:00:00:00:00:00:00:02"


def add(**flow) -> dict:
    return canonical_flow(flow, "add")


def delete(command: str = "delete", **flow) -> dict:
    return canonical_flow(flow, command)


def client(ip: str, port: int, **extra) -> dict:
    match = {"dl_type": 2048, "nw_src": ip, "nw_proto": 6, "tp_src": port, "tp_dst": 5222}
    return add(priority=200, cookie=0x0102_0000_0000_0000 | port, match=match, **extra)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> FlowStore:
    return FlowStore()


def test_add_is_kept_per_dpid(store):
    store.record(DPID, "add", [client("10.0.0.1", 4000)])
    assert store.flows(DPID) == [client("10.0.0.1", 4000)]
    assert store.flows(OTHER) == []
    assert store.dpids() == [DPID]


def test_an_identical_entry_replaces_the_stored_one(store):
    store.record(DPID, "add", [client("10.0.0.1", 4000, hard_timeout=10)])
    store.record(DPID, "add", [client("10.0.0.1", 4000, hard_timeout=60)])
    assert [flow["hard_timeout"] for flow in store.flows(DPID)] == [60]


def test_idle_timeout_flows_are_not_kept_and_their_add_replaces_a_kept_one(store):
    store.record(DPID, "add", [client("10.0.0.1", 4000)])
    store.record(DPID, "add", [client("10.0.0.1", 4000, idle_timeout=10)])
    store.record(DPID, "add", [client("10.0.0.2", 4000, idle_timeout=10)])
    assert store.flows(DPID) == []


def test_idle_timeout_flows_kept_when_asked():
    store = FlowStore(keep_idle_flows=True)
    store.record(DPID, "add", [client("10.0.0.1", 4000, idle_timeout=10)])
    assert [flow["idle_timeout"] for flow in store.flows(DPID)] == [10]


def test_different_priority_is_a_different_entry(store):
    store.record(DPID, "add", [add(priority=1), add(priority=2)])
    assert len(store.flows(DPID)) == 2


def test_spellings_of_one_entry_collapse_through_canonical_form(store):
    store.record(DPID, "add", [add(match={"dl_src": "AA:BB:CC:DD:EE:FF"})])
    store.record(DPID, "add", [add(match={"dl_src": "aa:bb:cc:dd:ee:ff"})])
    assert len(store.flows(DPID)) == 1


def test_non_strict_delete_removes_what_it_covers(store):
    store.record(DPID, "add", [client("10.0.0.1", 4000), client("10.1.0.1", 4001)])
    store.record(
        DPID,
        "add",
        [add(priority=0, instructions=[{"instruction_type": "goto_table", "table_id": 1}])],
    )
    store.record(DPID, "delete", [delete(match={"dl_type": 2048, "nw_src": "10.0.0.0/16"})])
    remaining = [flow["match"].get("nw_src") for flow in store.flows(DPID)]
    assert sorted(remaining, key=str) == ["10.1.0.1", None]


def test_empty_match_delete_in_table_0_removes_only_table_0(store):
    store.record(DPID, "add", [add(table_id=0), add(table_id=1)])
    store.record(DPID, "delete", [delete()])
    assert [flow["table_id"] for flow in store.flows(DPID)] == [1]
    store.record(DPID, "delete", [delete(table_id=255)])
    assert store.flows(DPID) == []
    assert store.dpids() == []


def test_delete_by_cookie_and_mask(store):
    store.record(DPID, "add", [client("10.0.0.1", 1), client("10.0.0.1", 2)])
    store.record(DPID, "add", [add(cookie=0x0300_0000_0000_0001)])
    store.record(
        DPID, "delete", [delete(cookie=0x0102_0000_0000_0000, cookie_mask=0xFFFF_0000_0000_0000)]
    )
    assert [flow["cookie"] for flow in store.flows(DPID)] == [0x0300_0000_0000_0001]


def test_delete_strict_needs_the_same_priority_and_match(store):
    store.record(DPID, "add", [client("10.0.0.1", 4000)])
    near_miss = client("10.0.0.1", 4000)
    near_miss["priority"] = 201
    store.record(
        DPID,
        "delete_strict",
        [delete("delete_strict", **{k: near_miss[k] for k in ("priority", "match")})],
    )
    assert len(store.flows(DPID)) == 1
    exact = client("10.0.0.1", 4000)
    store.record(
        DPID, "delete_strict", [delete("delete_strict", priority=200, match=exact["match"])]
    )
    assert store.flows(DPID) == []


def test_delete_strict_does_not_touch_more_specific_flows(store):
    store.record(DPID, "add", [client("10.0.0.1", 4000)])
    store.record(
        DPID, "delete_strict", [delete("delete_strict", priority=200, match={"dl_type": 2048})]
    )
    assert len(store.flows(DPID)) == 1


def test_delete_out_port_filter():
    to_two = add(actions=[{"action_type": "output", "port": 2}])
    assert deleted_by("delete", delete(out_port=2), to_two)
    assert not deleted_by("delete", delete(out_port=3), to_two)
    assert not deleted_by("delete", delete(out_group=1), to_two)


def test_modify_changes_instructions_of_covered_entries(store):
    store.record(
        DPID, "add", [client("10.0.0.1", 4000, actions=[{"action_type": "output", "port": 1}])]
    )
    new = canonical_flow(
        {"match": {"dl_type": 2048}, "actions": [{"action_type": "output", "port": 9}]}, "modify"
    )
    store.record(DPID, "modify", [new])
    (flow,) = store.flows(DPID)
    assert flow["instructions"][0]["actions"] == [{"action_type": "output", "port": 9}]
    assert flow["priority"] == 200


def test_forget_needs_the_same_cookie(store):
    flow = client("10.0.0.1", 4000)
    store.record(DPID, "add", [flow])
    assert not store.forget(DPID, 0, 200, flow["match"], cookie=1)
    assert store.forget(DPID, 0, 200, flow["match"], cookie=flow["cookie"])
    assert store.flows(DPID) == []
    assert not store.forget(DPID, 0, 200, flow["match"], cookie=flow["cookie"])


def test_replay_honours_the_remaining_hard_timeout():
    clock = Clock()
    store = FlowStore(clock=clock)
    store.record(
        DPID,
        "add",
        [
            client("10.0.0.1", 1, hard_timeout=300),
            client("10.0.0.2", 2, hard_timeout=30),
            client("10.0.0.3", 3),
        ],
    )
    clock.now += 100.5
    replay = {flow["match"]["nw_src"]: flow["hard_timeout"] for flow in store.flows_to_replay(DPID)}
    assert replay == {"10.0.0.1": 200, "10.0.0.3": 0}
    assert len(store.flows(DPID)) == 2  # the expired block is gone for good


def test_persistence_round_trip(tmp_path):
    path = tmp_path / "state" / "flows.json"
    store = FlowStore(path)
    store.record(DPID, "add", [client("10.0.0.1", 4000)])
    assert not path.exists()  # writes are batched
    assert store.flush()
    assert not store.flush()  # nothing changed since
    reopened = FlowStore(path)
    assert reopened.flows(DPID) == [client("10.0.0.1", 4000)]
    reopened.record(DPID, "delete", [delete(table_id=255)])
    reopened.flush()
    assert FlowStore(path).flows(DPID) == []
    assert [p.name for p in path.parent.iterdir()] == ["flows.json"]  # no temp files left


@pytest.mark.parametrize(
    "content",
    ["{not json", "[]", '{"version": 99, "switches": {}}', '{"version": 1, "switches": {"x": 1}}'],
)
def test_a_broken_file_is_an_error_not_an_empty_store(tmp_path, content):
    path = tmp_path / "flows.json"
    path.write_text(content)
    with pytest.raises(FlowStoreError):
        FlowStore(path)


def test_file_format_is_documented_json(tmp_path):
    path = tmp_path / "flows.json"
    store = FlowStore(path, clock=Clock())
    store.record(DPID, "add", [add(priority=5)])
    store.flush()
    data = json.loads(path.read_text())
    assert data["version"] == 1
    assert data["switches"][DPID][0]["installed_at"] == 1000.0
    assert data["switches"][DPID][0]["flow"]["priority"] == 5
