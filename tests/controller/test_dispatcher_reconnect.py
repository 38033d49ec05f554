"""A switch that reconnects converges to what the modules believe.

Two listeners react to ``kytos/of_core.handshake.completed`` on different
threads: the dispatcher (delete our cookies, base pipeline, restore modules) and
flow_manager's replay of the flows it stored.  Whatever the interleaving, the
switch must end up with the base pipeline and the l2 miss flow and without the
forwarding flows learned before the reconnect.  The fake switch applies the
FlowMods it receives to a small flow-table model, in order, as a switch would.
"""

from __future__ import annotations

import itertools
import time

import pytest
from pyof.v0x04.asynchronous.packet_in import PacketIn
from pyof.v0x04.common.header import Type
from pyof.v0x04.controller2switch.flow_mod import FlowModCommand

from tests.kytos_helpers import pyof_packet_in, running_controller
from tests.waiting import wait_until
from xmpp_ofc import cookies, pipeline
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.messages import NO_BUFFER
from xmpp_ofc.openflow.flow_json import flow_mod_to_dict
from xmpp_ofc.openflow.match import match_covers
from xmpp_ofc.testing import frames
from xmpp_ofc.testing.fake_switch import FakeSwitch

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"
L2_MISS = cookies.encode(Owner.L2_SWITCH, Kind.TABLE_MISS)
DISPATCHER = "xmpp_ofc/dispatcher/v1"
#: The rate limiter's capture flows would add FlowMods to every connect; these tests
#: count the dispatcher's and l2_switch's, so it stays disabled here.
ONLY_L2 = {"XMPP_OFC_DISPATCHER_DISABLED_MODULES": "rate_limiter"}
_dpids = itertools.count(0x300)


@pytest.fixture(scope="module")
def controller(tmp_path_factory):
    with running_controller(
        tmp_path_factory.mktemp("reconnect_controller"), env=ONLY_L2
    ) as process:
        yield process


def flow_table(received) -> dict[tuple, dict]:
    """The flows a switch holds after applying ``received`` FlowMods in order."""
    table: dict[tuple, dict] = {}
    for item in received:
        if item.message_type != Type.OFPT_FLOW_MOD:
            continue
        command = int(item.message.command)
        flow = flow_mod_to_dict(item.message)
        if command == FlowModCommand.OFPFC_ADD:
            key = (flow["table_id"], flow["priority"], tuple(sorted(flow["match"].items())))
            table[key] = flow
        elif command == FlowModCommand.OFPFC_DELETE:
            for key, held in list(table.items()):
                if (
                    flow["table_id"] in (pipeline.TABLE_ALL, held["table_id"])
                    and cookies.selects((flow["cookie"], flow["cookie_mask"]), held["cookie"])
                    and match_covers(flow["match"], held["match"])
                ):
                    del table[key]
    return table


def packet_in(src: str, dst: str, in_port: int) -> PacketIn:
    frame = frames.ethernet(dst, src, 0x0800, b"\x45" + bytes(40))
    return pyof_packet_in(frame, in_port, cookie=L2_MISS, buffer_id=NO_BUFFER)


def connected(controller, dpid: str) -> bool:
    status, body = controller.get(f"{DISPATCHER}/switches/{dpid}")
    return status == 200 and body["connected"]


def test_reconnect_converges_to_base_pipeline_and_miss_flow_only(controller):
    dpid = next(_dpids)
    with FakeSwitch("127.0.0.1", controller.of_port, dpid=dpid) as first:
        first.handshake()
        assert wait_until(lambda: len(first.of_type(Type.OFPT_FLOW_MOD)) >= 3)
        first.send(packet_in(MAC_A, "ff:ff:ff:ff:ff:ff", 1))
        first.send(packet_in(MAC_B, MAC_A, 2))
        assert wait_until(lambda: len(first.of_type(Type.OFPT_FLOW_MOD)) >= 4)
        learned = flow_table(first.received)
        assert any(flow["priority"] == pipeline.PRIORITY_FORWARD for flow in learned.values())
    assert wait_until(lambda: not connected(controller, first.dpid_str))

    with FakeSwitch("127.0.0.1", controller.of_port, dpid=dpid) as second:
        second.handshake()
        expected = {
            (0, 0, ()): {**pipeline.base_table_miss(), "cookie_mask": 0},
            (1, 0, ()): {**pipeline.l2_table_miss(), "cookie_mask": 0},
        }
        assert wait_until(lambda: flow_table(second.received) == expected), flow_table(
            second.received
        )
        # Any replay has had ample time to arrive; the table must still be the same.
        time.sleep(1.0)
        assert flow_table(second.received) == expected
        assert connected(controller, second.dpid_str)
