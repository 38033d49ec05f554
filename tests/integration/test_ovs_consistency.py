"""The switch converges back to what the controller believes (issue 13, item 5), real OVS.

An operator (or another controller, or a switch reset) deletes the bundle's flows
behind the controller's back with ``ovs-ofctl``: the base pipeline, the capture
flows and a manual block come back within one consistency round (10 s at the
shipped default), with the block's remaining time, while a flow of another owner
that the operator installed is left exactly as it is.
"""

from __future__ import annotations

import pytest

from tests.waiting import wait_for
from xmpp_ofc import cookies

pytestmark = pytest.mark.ovs

DPID = 0x0C
API = "xmpp_ofc/rate_limiter/v1"
FOREIGN = "table=1,priority=5,cookie=0x7,in_port=2,actions=output:1"
ROUND_S = 10  # flow_manager's CONSISTENCY_CHECK_INTERVAL default


def ours(switch) -> set[tuple[int, int, int]]:
    """(table, priority, cookie) of the bundle's flows on the switch."""
    return {
        (flow.table, flow.priority, flow.cookie)
        for flow in switch.ovs.dump_flows()
        if cookies.is_ours(flow.cookie)
    }


def foreign(switch) -> list[tuple[int, int, int]]:
    return [
        (flow.table, flow.priority, flow.cookie)
        for flow in switch.ovs.dump_flows()
        if not cookies.is_ours(flow.cookie)
    ]


def test_deleted_pipeline_and_block_come_back_foreign_flow_untouched(controller_factory, lab):
    controller = controller_factory()
    topology = lab()
    switch = topology.add_switch("s1", dpid=DPID, controller_port=controller.of_port)
    topology.add_host("h1")
    topology.start()
    assert switch.ovs.wait_connected(timeout=30), "OVS never connected"
    pipeline = wait_for(lambda: len(ours(switch)) >= 4 and ours(switch), timeout=30)
    assert pipeline, switch.ovs.dump_flows()

    status, body = controller.post(
        f"{API}/blocked", {"dpid": switch.dpid, "ip": "10.0.0.99", "duration": 600}
    )
    assert status == 201, body
    believed = wait_for(lambda: len(ours(switch)) > len(pipeline) and ours(switch), timeout=10)
    assert believed, switch.ovs.dump_flows()
    switch.ovs.add_flow(FOREIGN)
    assert foreign(switch) == [(1, 5, 7)]

    # The operator wipes every flow of the bundle, by cookie, outside the controller.
    switch.ovs.ofctl("del-flows", "cookie=0xa000000000000000/0xf000000000000000")
    assert ours(switch) == set()

    restored = wait_for(lambda: ours(switch) == believed, timeout=ROUND_S + 10, interval=0.5)
    assert restored, f"not restored: {sorted(believed - ours(switch))}"
    assert foreign(switch) == [(1, 5, 7)], "the foreign flow was touched"
    block = [f for f in switch.ovs.dump_flows() if "10.0.0.99" in str(f.match)]
    assert block and block[0].actions == "drop", switch.ovs.dump_flows()
    assert 0 < block[0].hard_timeout <= 600, block[0]

    # The controller still believes the block (REST) and says what it restored.
    status, body = controller.get(f"{API}/blocked")
    assert [b["ip"] for b in body["blocked"]] == ["10.0.0.99"]
    assert "consistency check" in controller.log_text()
    assert "Traceback" not in controller.log_text()
