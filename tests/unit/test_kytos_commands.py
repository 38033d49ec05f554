"""xmpp_ofc.kytos_commands: commands -> flow_manager events and pyof packet-outs, order kept."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pyof.v0x04.common.utils import unpack_message

from xmpp_ofc import pipeline
from xmpp_ofc.commands import DeleteFlows, InstallFlow, ModifyMeter, PacketOut, RequestFlowStats
from xmpp_ofc.kytos_commands import (
    FIRST_XID,
    FLOWS_DELETE_EVENT,
    FLOWS_INSTALL_EVENT,
    CommandSender,
    flow_event,
    group_flow_commands,
    packet_out_message,
)
from xmpp_ofc.messages import NO_BUFFER

DPID = "00:00:00:00:00:00:00:01"
OTHER = "00:00:00:00:00:00:00:02"
FRAME = bytes(range(60))
MISS = pipeline.l2_table_miss()
DELETE = pipeline.l2_delete_towards("02:00:00:00:00:0a")


class Buffer:
    def __init__(self) -> None:
        self.events = []

    def put(self, event) -> None:
        self.events.append(event)


def controller(connected: bool = True):
    switch = SimpleNamespace(connection=object(), is_connected=lambda: connected)
    return SimpleNamespace(
        switches={DPID: switch}, buffers=SimpleNamespace(app=Buffer(), msg_out=Buffer())
    )


def test_flow_event_carries_flow_manager_content():
    event = flow_event([InstallFlow(DPID, MISS), InstallFlow(DPID, MISS)])
    assert event.name == FLOWS_INSTALL_EVENT
    assert event.content == {"dpid": DPID, "flow_dict": {"flows": [MISS, MISS]}}
    assert flow_event([DeleteFlows(DPID, DELETE)]).name == FLOWS_DELETE_EVENT


def test_flow_event_refuses_mixed_kinds_or_switches():
    with pytest.raises(ValueError):
        flow_event([InstallFlow(DPID, MISS), DeleteFlows(DPID, DELETE)])
    with pytest.raises(ValueError):
        flow_event([InstallFlow(DPID, MISS), InstallFlow(OTHER, MISS)])


def test_runs_keep_order_and_never_merge_across_a_change():
    out = PacketOut(DPID, 1, 2, data=FRAME)
    commands = [
        DeleteFlows(DPID, DELETE),
        DeleteFlows(DPID, DELETE),
        InstallFlow(DPID, MISS),
        out,
        out,
        InstallFlow(OTHER, MISS),
        InstallFlow(DPID, MISS),
    ]
    runs = group_flow_commands(commands)
    assert [len(run) for run in runs] == [2, 1, 1, 1, 1, 1]
    assert [command for run in runs for command in run] == commands


@pytest.mark.parametrize(
    ("command", "buffer_id", "data"),
    [
        (PacketOut(DPID, 3, pipeline.OFPP_FLOOD, data=FRAME), NO_BUFFER, FRAME),
        (PacketOut(DPID, 3, 7, buffer_id=99), 99, b""),
    ],
)
def test_packet_out_message_round_trips(command, buffer_id, data):
    parsed = unpack_message(packet_out_message(command).pack())
    assert (parsed.buffer_id.value, parsed.in_port.value) == (buffer_id, 3)
    assert [action.port.value for action in parsed.actions] == [command.out_port]
    assert parsed.data.value == data


def test_sender_puts_flows_on_app_and_packet_outs_on_msg_out():
    ctl = controller()
    sender = CommandSender(ctl, "xmpp_ofc/l2_switch")
    sender.send([InstallFlow(DPID, MISS), PacketOut(DPID, 1, 2, data=FRAME)])
    (flows,) = ctl.buffers.app.events
    assert flows.name == FLOWS_INSTALL_EVENT
    (out,) = ctl.buffers.msg_out.events
    assert out.name == "xmpp_ofc/l2_switch.messages.out.ofpt_packet_out"
    assert out.content["destination"] is ctl.switches[DPID].connection


@pytest.mark.parametrize("dpid", [DPID, OTHER])
def test_packet_out_to_a_missing_or_disconnected_switch_is_counted_not_sent(dpid):
    ctl = controller(connected=False)
    sender = CommandSender(ctl, "xmpp_ofc/l2_switch")
    sender.send([PacketOut(dpid, 1, 2, data=FRAME)])
    assert ctl.buffers.msg_out.events == []
    assert sender.messages_not_sent == 1


def test_meter_mods_travel_on_the_app_buffer_between_the_flow_events():
    """A MeterMod keeps its place among flow commands (kytos_commands module doc)."""
    ctl = controller()
    sender = CommandSender(ctl, "xmpp_ofc/rate_limiter")
    sender.send(
        [
            InstallFlow(DPID, MISS),
            ModifyMeter(DPID, "delete", 0xFFFFFFFF),
            ModifyMeter(DPID, "add", 5, rate_pps=2, burst=50),
            InstallFlow(DPID, MISS),
        ]
    )
    names = [event.name for event in ctl.buffers.app.events]
    ordered = "xmpp_ofc/rate_limiter.internal.ordered_msg_out"
    assert names == [FLOWS_INSTALL_EVENT, ordered, ordered, FLOWS_INSTALL_EVENT]
    assert ctl.buffers.msg_out.events == []
    for event in ctl.buffers.app.events[1:3]:
        sender.forward_ordered(event)
    deleted, added = ctl.buffers.msg_out.events
    assert deleted.name == "xmpp_ofc/rate_limiter.messages.out.ofpt_meter_mod"
    assert deleted.content["destination"] is ctl.switches[DPID].connection
    parsed = unpack_message(added.content["message"].pack())
    assert (int(parsed.command), parsed.meter_id.value) == (0, 5)
    assert [(band.rate.value, band.burst_size.value) for band in parsed.bands] == [(2, 50)]
    assert unpack_message(deleted.content["message"].pack()).meter_id.value == 0xFFFFFFFF


def test_flow_stats_request_goes_to_msg_out_with_cookie_mask_and_a_high_xid():
    ctl = controller()
    sender = CommandSender(ctl, "xmpp_ofc/rate_limiter")
    xids = sender.send([RequestFlowStats(DPID, 0xA302000000000000, 0xFFFF000000000000, 0)])
    (event,) = ctl.buffers.msg_out.events
    assert event.name == "xmpp_ofc/rate_limiter.messages.out.ofpt_multipart_request"
    parsed = unpack_message(event.content["message"].pack())
    assert xids == [parsed.header.xid.value]
    assert xids[0] >= FIRST_XID
    body = parsed.body
    assert (body.cookie.value, body.cookie_mask.value, body.table_id.value) == (
        0xA302000000000000,
        0xFFFF000000000000,
        0,
    )
    assert sender.send([RequestFlowStats(DPID, 1, 1)]) == [xids[0] + 1]


def test_requests_to_a_disconnected_switch_have_no_xid():
    ctl = controller(connected=False)
    sender = CommandSender(ctl, "xmpp_ofc/rate_limiter")
    assert sender.send([RequestFlowStats(DPID, 1, 1)]) == []
    assert sender.request_meter_features(DPID) is None
    assert ctl.buffers.msg_out.events == []
    assert sender.messages_not_sent == 2


def test_meter_features_request():
    ctl = controller()
    sender = CommandSender(ctl, "xmpp_ofc/rate_limiter")
    xid = sender.request_meter_features(DPID)
    (event,) = ctl.buffers.msg_out.events
    parsed = unpack_message(event.content["message"].pack())
    assert (parsed.header.xid.value, int(parsed.multipart_type)) == (xid, 11)


def test_a_packet_out_with_an_impossible_in_port_is_left_to_pyof_which_refuses_it():
    """The struct encoder would pack anything; pyof's refusal is what msg_out drops and counts."""
    from pyof.foundation.exceptions import PackException, ValidationError

    from xmpp_ofc.commands import PacketOut
    from xmpp_ofc.kytos_commands import packet_out_message

    good = packet_out_message(PacketOut("00:00:00:00:00:00:00:01", 3, 0xFFFFFFFB, data=b"x" * 60))
    assert good.pack()[:2] == b"\x04\x0d"
    bad = packet_out_message(
        PacketOut("00:00:00:00:00:00:00:01", 0xFFFFFFF0, 0xFFFFFFFB, data=b"x")
    )
    with pytest.raises((PackException, ValidationError)):
        bad.pack()
