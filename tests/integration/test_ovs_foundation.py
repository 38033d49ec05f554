"""The foundation issue's acceptance test, against a real Open vSwitch.

A userspace-datapath OVS in its own namespace and run directory connects to
the controller (``make run``'s program, as a subprocess), completes the
OpenFlow 1.3 handshake, stays connected for at least 15 s (so echo keepalive
works in both directions: OVS probes an idle controller after 5 s and drops
it 5 s later without an answer), takes a two-table flow posted to the
flow_manager REST API, and loses it on DELETE.
"""

from __future__ import annotations

import time

import pytest

from tests.waiting import wait_for
from xmpp_ofc import cookies
from xmpp_ofc.lab import FlowEntry

pytestmark = pytest.mark.ovs

DPID = 0x0A
COOKIE = 42
OTHER_COOKIE = 7
ALL_BITS = 2**64 - 1
OFPP_CONTROLLER = 4294967293
STAY_CONNECTED = 15.0

TWO_TABLE_FLOW = {
    "flows": [
        {
            "table_id": 0,
            "priority": 1000,
            "cookie": COOKIE,
            "match": {"in_port": 1},
            "instructions": [
                {
                    "instruction_type": "apply_actions",
                    "actions": [{"action_type": "output", "port": 2}],
                },
                {"instruction_type": "goto_table", "table_id": 1},
            ],
        },
        {
            "table_id": 1,
            "priority": 10,
            "cookie": COOKIE,
            "match": {"dl_type": 2048},
            "actions": [{"action_type": "output", "port": OFPP_CONTROLLER}],
        },
    ]
}
BYSTANDER_FLOW = {
    "flows": [
        {
            "table_id": 1,
            "priority": 5,
            "cookie": OTHER_COOKIE,
            "match": {"in_port": 2},
            "actions": [{"action_type": "output", "port": 1}],
        }
    ]
}
DELETE_BY_COOKIE = {"flows": [{"cookie": COOKIE, "cookie_mask": ALL_BITS, "table_id": 255}]}


def ours(flows: list[FlowEntry]) -> list[FlowEntry]:
    return sorted((flow for flow in flows if flow.cookie == COOKIE), key=lambda flow: flow.table)


def connections_logged(switch) -> int:
    """How many times vswitchd logged an established controller connection."""
    return sum(
        1
        for line in switch.ovs.log_text().splitlines()
        if "rconn" in line and "<->tcp:127.0.0.1:" in line and line.rstrip().endswith(": connected")
    )


def test_real_ovs_handshake_keepalive_and_two_table_flow(controller_factory, lab):
    controller = controller_factory()
    topology = lab()
    switch = topology.add_switch("s1", dpid=DPID, controller_port=controller.of_port)
    topology.add_host("h1")
    topology.add_host("h2")
    topology.start()
    flows_path = f"kytos/flow_manager/v2/flows/{switch.dpid}"

    # Handshake: OVS says connected, and the controller knows the datapath.
    assert switch.ovs.wait_connected(timeout=30), "OVS never reported is_connected=true"
    wait_for(lambda: controller.get(flows_path)[0] == 200, timeout=20)
    status, body = controller.get(flows_path)
    assert status == 200, f"controller does not know {switch.dpid}: {status} {body}"
    assert switch.dpid in body

    # Keepalive: connected the whole time, on the first connection.
    first_connections = connections_logged(switch)
    assert first_connections == 1
    deadline = time.monotonic() + STAY_CONNECTED
    while time.monotonic() < deadline:
        assert switch.ovs.is_connected(), "OVS lost the controller connection"
        time.sleep(0.5)
    assert connections_logged(switch) == first_connections, "OVS reconnected meanwhile"
    assert controller.running

    # Install: both tables, with the goto_table instruction.
    status, body = controller.post(flows_path, TWO_TABLE_FLOW)
    assert status in (200, 202), body
    status, body = controller.post(flows_path, BYSTANDER_FLOW)
    assert status in (200, 202), body
    installed = wait_for(lambda: ours(switch.ovs.dump_flows()), timeout=10)
    assert len(installed) == 2, switch.ovs.dump_flows()
    table0, table1 = installed
    assert (table0.table, table0.priority, table0.match) == (0, 1000, {"in_port": "1"})
    assert table0.actions == "output:2,goto_table:1"
    assert (table1.table, table1.priority, table1.match) == (1, 10, {"ip": None})
    assert table1.actions.startswith("CONTROLLER")

    # Delete by cookie (all tables): ours go, the bystander with another cookie stays.
    status, body = controller.delete(flows_path, DELETE_BY_COOKIE)
    assert status in (200, 202), body
    wait_for(lambda: not ours(switch.ovs.dump_flows()), timeout=10)
    remaining = switch.ovs.dump_flows()
    assert ours(remaining) == [], "DELETE left our flows installed"
    # The dispatcher's own pipeline flows (cookies.is_ours) stay; they are not the test's.
    others = [(flow.cookie, flow.table) for flow in remaining if not cookies.is_ours(flow.cookie)]
    assert others == [(OTHER_COOKIE, 1)]

    assert switch.ovs.is_connected()
    log = controller.log_text()
    assert "Traceback" not in log, log[-6000:]
