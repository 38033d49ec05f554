"""dispatcher + l2_switch in the real controller process, against scripted fake switches.

One controller serves the module; each test connects its own switch (distinct
dpids).  What the switch receives is what the whole stack sent: of_core's
events -> dispatcher routing -> l2_switch -> flow_manager / packet-out.
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
from xmpp_ofc.packet import ETH_TYPE_ARP, ETH_TYPE_LLDP
from xmpp_ofc.testing import frames
from xmpp_ofc.testing.fake_switch import FakeSwitch

L2_MISS = cookies.encode(Owner.L2_SWITCH, Kind.TABLE_MISS)
FOREIGN = 0x1234
MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"
BROADCAST = "ff:ff:ff:ff:ff:ff"
DISPATCHER = "xmpp_ofc/dispatcher/v1"
L2 = "xmpp_ofc/l2_switch/v1"
#: The rate limiter's capture flows would add FlowMods to every connect; these tests
#: count the dispatcher's and l2_switch's, so it stays disabled here.
ONLY_L2 = {"XMPP_OFC_DISPATCHER_DISABLED_MODULES": "rate_limiter"}
_dpids = itertools.count(0x200)


@pytest.fixture(scope="module")
def controller(tmp_path_factory):
    with running_controller(tmp_path_factory.mktemp("l2_controller"), env=ONLY_L2) as process:
        yield process


@pytest.fixture
def switch(controller):
    """A connected fake switch whose base pipeline and l2 miss flow have arrived."""
    with FakeSwitch("127.0.0.1", controller.of_port, dpid=next(_dpids), ports=(1, 2, 3)) as sw:
        sw.handshake()
        wait_for_flow_mods(sw, 3)
        yield sw


def wait_for_flow_mods(sw: FakeSwitch, count: int, since: int = 0, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in sw.received[since:] if r.message_type == Type.OFPT_FLOW_MOD]
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) >= count, f"{len(found)} flow-mods, wanted {count}"
            return found
        time.sleep(0.02)


def flow_mod(received) -> tuple[int, dict]:
    message = received.message
    return int(message.command), flow_mod_to_dict(message)


def arp_request(src: str) -> bytes:
    body = frames.arp(1, src, "10.0.0.1", "00:00:00:00:00:00", "10.0.0.2")
    return frames.ethernet(BROADCAST, src, ETH_TYPE_ARP, body)


def unicast(src: str, dst: str) -> bytes:
    return frames.ethernet(dst, src, 0x0800, b"\x45" + bytes(40))


def packet_in(
    frame: bytes, in_port: int, *, cookie: int = L2_MISS, buffer_id: int = NO_BUFFER
) -> PacketIn:
    return pyof_packet_in(
        frame,
        in_port,
        cookie=cookie,
        table_id=pipeline.TABLE_FORWARDING,
        buffer_id=buffer_id,
        data=frame if buffer_id == NO_BUFFER else frame[:64],
    )


def switch_view(controller, dpid: str) -> dict:
    """The dispatcher's REST view of ``dpid`` (modules, message counters, unrouted)."""
    status, body = controller.get(f"{DISPATCHER}/switches/{dpid}")
    assert status == 200, body
    return body


def unrouted(controller, dpid: str) -> dict[str, int]:
    """Packet-ins of ``dpid`` the dispatcher routed to no module, by reason."""
    return switch_view(controller, dpid)["unrouted"].get("packet_in", {})


def output_ports(received) -> list[int]:
    return [int(action.port) for action in received.message.actions]


def test_connect_deletes_ours_then_installs_table0_miss_then_table1_miss(controller, switch):
    first_three = [flow_mod(r) for r in wait_for_flow_mods(switch, 3)[:3]]
    (delete_cmd, delete), (add0_cmd, add0), (add1_cmd, add1) = first_three
    assert delete_cmd == FlowModCommand.OFPFC_DELETE
    assert (delete["table_id"], delete["cookie"], delete["cookie_mask"]) == (
        pipeline.TABLE_ALL,
        *cookies.select_ours(),
    )
    assert add0_cmd == add1_cmd == FlowModCommand.OFPFC_ADD
    assert add0 == {**pipeline.base_table_miss(), "cookie_mask": 0}
    assert add1 == {**pipeline.l2_table_miss(), "cookie_mask": 0}


def test_unknown_destination_floods_then_the_reply_installs_a_flow(controller, switch):
    since = switch.mark()
    request = arp_request(MAC_A)
    switch.send(packet_in(request, 1))
    flood = switch.wait_for(Type.OFPT_PACKET_OUT, since=since)
    assert output_ports(flood) == [pipeline.OFPP_FLOOD]
    assert int(flood.message.in_port) == 1
    assert int(flood.message.buffer_id) == NO_BUFFER
    assert flood.message.data.value == request

    since = switch.mark()
    reply = unicast(MAC_B, MAC_A)
    switch.send(packet_in(reply, 2))
    (command, flow), *_ = [flow_mod(r) for r in wait_for_flow_mods(switch, 1, since)]
    assert command == FlowModCommand.OFPFC_ADD
    assert flow["table_id"] == pipeline.TABLE_FORWARDING
    assert flow["priority"] == 100
    assert flow["match"] == {"in_port": 2, "dl_dst": MAC_A}
    assert (flow["idle_timeout"], flow["hard_timeout"]) == (10, 30)
    assert flow["cookie"] == pipeline.l2_forwarding_cookie(MAC_A)
    out = switch.wait_for(Type.OFPT_PACKET_OUT, since=since)
    assert output_ports(out) == [1]
    assert out.message.data.value == reply

    status, body = controller.get(f"{L2}/mac_table/{switch.dpid_str}")
    assert status == 200
    assert {(e["mac"], e["port"]) for e in body["entries"]} == {(MAC_A, 1), (MAC_B, 2)}


def test_buffered_packet_in_gets_a_packet_out_naming_the_buffer(controller, switch):
    since = switch.mark()
    switch.send(packet_in(arp_request(MAC_A), 3, buffer_id=77))
    out = switch.wait_for(Type.OFPT_PACKET_OUT, since=since)
    assert int(out.message.buffer_id) == 77
    assert out.message.data.value == b""


def test_foreign_cookie_and_lldp_are_not_answered(controller, switch):
    since = switch.mark()
    switch.send(packet_in(arp_request(MAC_A), 1, cookie=FOREIGN))
    switch.send(packet_in(arp_request(MAC_A), 1, cookie=cookies.NO_FLOW_COOKIE))
    lldp = frames.ethernet("01:80:c2:00:00:0e", MAC_A, ETH_TYPE_LLDP, bytes(20))
    switch.send(packet_in(lldp, 1))
    probe = arp_request(MAC_B)
    switch.send(packet_in(probe, 2))
    # Handled in order: the first packet-out after the three is the probe's.
    first = switch.wait_for(Type.OFPT_PACKET_OUT, since=since)
    assert first.message.data.value == probe
    time.sleep(0.3)
    assert len(switch.of_type(Type.OFPT_PACKET_OUT)) == 1 + len(
        [r for r in switch.received[:since] if r.message_type == Type.OFPT_PACKET_OUT]
    )


def test_disable_over_rest_deletes_l2_flows_and_stops_answering_enable_restores(controller, switch):
    dpid = switch.dpid_str
    path = f"{DISPATCHER}/switches/{dpid}/modules/l2_switch"
    since = switch.mark()
    status, body = controller.patch(path, {"enabled": False})
    assert status == 200, body
    assert body["enabled"] is False and body["changed"] is True
    command, delete = flow_mod(wait_for_flow_mods(switch, 1, since)[0])
    assert command == FlowModCommand.OFPFC_DELETE
    assert (delete["table_id"], delete["cookie"], delete["cookie_mask"]) == (
        pipeline.TABLE_ALL,
        *cookies.select_owner(Owner.L2_SWITCH),
    )
    status, _ = controller.get(f"{L2}/mac_table/{dpid}")
    assert status == 404

    ignored = arp_request(MAC_A)
    switch.send(packet_in(ignored, 1))
    # REST can overtake the switch's bytes: enable only once the dispatcher dropped it.
    assert wait_until(lambda: unrouted(controller, dpid).get("module_disabled") == 1)
    status, body = controller.patch(path, {"enabled": True})
    assert status == 200 and body["enabled"] is True
    command, miss = flow_mod(wait_for_flow_mods(switch, 2, since)[1])
    assert command == FlowModCommand.OFPFC_ADD
    assert miss == {**pipeline.l2_table_miss(), "cookie_mask": 0}
    answered = arp_request(MAC_B)
    switch.send(packet_in(answered, 2))
    out = switch.wait_for(Type.OFPT_PACKET_OUT, since=since)
    assert out.message.data.value == answered

    # Kytos notifies msg_out listeners after the send: the switch may see the
    # PACKET_OUT before the dispatcher has counted it.
    assert wait_until(
        lambda: switch_view(controller, dpid)["messages"]["out"].get("ofpt_packet_out", 0) >= 1
    )
    body = switch_view(controller, dpid)
    assert body["connected"] is True
    assert body["modules"]["l2_switch"]["enabled"] is True
    assert body["messages"]["in"]["ofpt_packet_in"] >= 2
    assert body["messages"]["out"]["ofpt_flow_mod"] >= 5


def test_rest_refusals_change_nothing(controller, switch):
    dpid = switch.dpid_str
    path = f"{DISPATCHER}/switches/{dpid}/modules/l2_switch"
    assert controller.patch(path, {"enabled": "no"})[0] == 400
    assert controller.patch(path, {"colour": "red"})[0] == 400
    assert controller.patch(path, raw_body=b"{", content_type="application/json")[0] == 400
    assert controller.patch(path, raw_body=b"enabled=0", content_type="text/plain")[0] == 415
    assert controller.patch(f"{DISPATCHER}/switches/{dpid}/modules/nope", {"enabled": 0})[0] == 404
    assert (
        controller.patch(
            f"{DISPATCHER}/switches/00:00:00:00:00:00:ff:ff/modules/l2_switch", {"enabled": False}
        )[0]
        == 404
    )
    assert switch_view(controller, dpid)["modules"]["l2_switch"]["enabled"] is True


def test_flush_forgets_macs_and_deletes_forwarding_flows(controller, switch):
    dpid = switch.dpid_str
    switch.send(packet_in(arp_request(MAC_A), 1))
    switch.send(packet_in(unicast(MAC_B, MAC_A), 2))
    wait_for_flow_mods(switch, 4)
    since = switch.mark()
    status, body = controller.delete(f"{L2}/mac_table/{dpid}")
    assert status == 200 and body["flushed"] == 2
    command, delete = flow_mod(wait_for_flow_mods(switch, 1, since)[0])
    assert command == FlowModCommand.OFPFC_DELETE
    assert (delete["table_id"], delete["cookie"], delete["cookie_mask"]) == (
        pipeline.TABLE_FORWARDING,
        *cookies.select_kind(Owner.L2_SWITCH, Kind.FORWARDING),
    )
    assert controller.get(f"{L2}/mac_table/{dpid}")[1]["entries"] == []
