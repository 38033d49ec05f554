"""The table plan as flow dicts: what each function builds, and that the codec accepts it."""

import pytest

from xmpp_ofc import cookies, pipeline
from xmpp_ofc.cookies import Kind, Owner

MAC = "00:00:00:00:00:0b"


def test_base_table_miss_sends_everything_on_to_forwarding():
    flow = pipeline.base_table_miss()
    assert flow["table_id"] == pipeline.TABLE_POLICY == 0
    assert flow["priority"] == 0
    assert flow["match"] == {}
    assert flow["instructions"] == [{"instruction_type": "goto_table", "table_id": 1}]
    assert cookies.decode(flow["cookie"]) == cookies.Cookie(Owner.DISPATCHER, Kind.TABLE_MISS)
    assert flow["flags"] == []
    assert pipeline.base_pipeline() == [flow]


def test_l2_table_miss_sends_unknown_destinations_to_the_controller():
    flow = pipeline.l2_table_miss()
    assert (flow["table_id"], flow["priority"], flow["match"]) == (1, 0, {})
    assert flow["instructions"] == [
        {
            "instruction_type": "apply_actions",
            "actions": [{"action_type": "output", "port": 4294967293}],
        }
    ]
    assert cookies.owner_of(flow["cookie"]) is Owner.L2_SWITCH


def test_l2_forwarding_sets_both_timeouts_and_the_mac_as_cookie_id():
    flow = pipeline.l2_forwarding(
        in_port=3, eth_dst=MAC, out_port=7, idle_timeout=10, hard_timeout=30
    )
    assert (flow["table_id"], flow["priority"]) == (1, 100)
    assert flow["match"] == {"in_port": 3, "dl_dst": MAC}
    assert (flow["idle_timeout"], flow["hard_timeout"]) == (10, 30)
    assert flow["instructions"][0]["actions"] == [{"action_type": "output", "port": 7}]
    assert cookies.decode(flow["cookie"]) == cookies.Cookie(Owner.L2_SWITCH, Kind.FORWARDING, 0x0B)


def test_delete_towards_a_mac_selects_exactly_its_forwarding_flows():
    delete = pipeline.l2_delete_towards(MAC)
    assert delete["table_id"] == 1
    assert delete["match"] == {"dl_dst": MAC}
    selector = (delete["cookie"], delete["cookie_mask"])
    towards = pipeline.l2_forwarding(
        in_port=1, eth_dst=MAC, out_port=2, idle_timeout=1, hard_timeout=2
    )
    other = pipeline.l2_forwarding(
        in_port=1, eth_dst="00:00:00:00:00:0c", out_port=2, idle_timeout=1, hard_timeout=2
    )
    assert cookies.selects(selector, towards["cookie"])
    assert not cookies.selects(selector, other["cookie"])
    assert not cookies.selects(selector, pipeline.l2_table_miss()["cookie"])


def test_delete_ours_covers_every_table_and_only_our_cookies():
    delete = pipeline.delete_ours()
    assert delete["table_id"] == pipeline.TABLE_ALL
    assert delete["match"] == {}
    selector = (delete["cookie"], delete["cookie_mask"])
    for flow in (pipeline.base_table_miss(), pipeline.l2_table_miss()):
        assert cookies.selects(selector, flow["cookie"])
    assert not cookies.selects(selector, 0)


def test_delete_owner_spares_the_other_modules():
    delete = pipeline.delete_owner(Owner.L2_SWITCH)
    selector = (delete["cookie"], delete["cookie_mask"])
    assert cookies.selects(selector, pipeline.l2_table_miss()["cookie"])
    assert not cookies.selects(selector, pipeline.base_table_miss()["cookie"])


def test_l2_delete_forwarding_keeps_the_table_miss():
    delete = pipeline.l2_delete_forwarding()
    selector = (delete["cookie"], delete["cookie_mask"])
    assert not cookies.selects(selector, pipeline.l2_table_miss()["cookie"])
    assert cookies.selects(selector, pipeline.l2_forwarding_cookie(MAC))


def test_the_plan_priorities_order_policy_above_forwarding():
    assert (
        pipeline.PRIORITY_BLOCK
        > pipeline.PRIORITY_MONITOR
        > pipeline.PRIORITY_CAPTURE
        > pipeline.PRIORITY_TABLE_MISS
    )


def test_flow_manager_codec_accepts_every_flow_we_build():
    """Cross-check with the bundle's flow_manager JSON codec: a typo here would be a 400 there."""
    flow_json = pytest.importorskip("xmpp_ofc.openflow.flow_json")
    adds = [
        *pipeline.base_pipeline(),
        pipeline.l2_table_miss(),
        pipeline.l2_forwarding(
            in_port=1, eth_dst=MAC, out_port=pipeline.OFPP_LOCAL, idle_timeout=10, hard_timeout=30
        ),
    ]
    for flow in adds:
        flow_mod = flow_json.flow_mod_from_dict(flow, "add")
        assert int(flow_mod.flags) == 0, "no FLOW_REMOVED for these flows"
    for delete in (
        pipeline.delete_ours(),
        pipeline.delete_owner(Owner.RATE_LIMITER),
        pipeline.l2_delete_towards(MAC),
        pipeline.l2_delete_forwarding(),
    ):
        flow_json.flow_mod_from_dict(delete, "delete")
