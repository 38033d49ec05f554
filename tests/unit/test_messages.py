"""Decoded messages and commands: immutability, reasons, JSON round trips."""

import dataclasses
import json

import pytest

from xmpp_ofc import messages as m
from xmpp_ofc.commands import DeleteFlows, InstallFlow, PacketOut
from xmpp_ofc.testing import frames as f

FRAME = f.tcp4_frame(
    eth_src="00:00:00:00:00:0a",
    eth_dst="00:00:00:00:00:0b",
    ip_src="10.0.0.1",
    ip_dst="10.0.0.2",
    tp_src=40000,
    tp_dst=5222,
)


def test_packet_in_from_frame_parses_and_maps_the_reason():
    packet_in = m.DecodedPacketIn.from_frame(
        dpid="00:00:00:00:00:00:00:01", in_port=3, data=FRAME, reason=1, cookie=7
    )
    assert packet_in.reason is m.PacketInReason.ACTION
    assert packet_in.packet.tp_dst == 5222
    assert packet_in.total_len == len(FRAME)
    assert not packet_in.is_buffered


def test_packet_in_json_round_trip_survives_json_dumps():
    packet_in = m.DecodedPacketIn.from_frame(
        dpid="00:00:00:00:00:00:00:01", in_port=3, data=FRAME, buffer_id=9, total_len=1500
    )
    text = json.dumps(packet_in.to_json())
    again = m.DecodedPacketIn.from_json(json.loads(text))
    assert again == packet_in
    assert json.loads(text)["packet"]["tp_dst"] == 5222


@pytest.mark.parametrize(
    "enum, code, expected",
    [
        (m.PacketInReason, 0, m.PacketInReason.NO_MATCH),
        (m.PacketInReason, 9, m.PacketInReason.UNKNOWN),
        (m.FlowRemovedReason, 1, m.FlowRemovedReason.HARD_TIMEOUT),
        (m.FlowRemovedReason, 2, m.FlowRemovedReason.DELETE),
        (m.FlowRemovedReason, 200, m.FlowRemovedReason.UNKNOWN),
        (m.PortStatusReason, 2, m.PortStatusReason.MODIFY),
    ],
)
def test_reason_codes(enum, code, expected):
    assert enum.from_code(code) is expected


def test_flow_stats_entry_is_frozen_including_its_match():
    entry = m.FlowStatsEntry(
        dpid="d",
        table_id=0,
        cookie=1,
        priority=200,
        match={"nw_src": "10.0.0.1"},
        packet_count=5,
        byte_count=500,
        duration_sec=2,
        duration_nsec=500_000_000,
    )
    with pytest.raises(TypeError):
        entry.match["nw_src"] = "10.0.0.9"
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.packet_count = 0
    assert entry.duration == 2.5
    assert json.loads(json.dumps(entry.to_json()))["match"] == {"nw_src": "10.0.0.1"}
    reply = m.FlowStatsReply(dpid="d", entries=(entry,))
    assert json.loads(json.dumps(reply.to_json()))["entries"][0]["packet_count"] == 5


def test_flow_removed_and_port_status_serialise_reasons_as_strings():
    removed = m.FlowRemoved(
        dpid="d",
        cookie=1,
        reason=m.FlowRemovedReason.HARD_TIMEOUT,
        table_id=0,
        priority=300,
        match={},
        packet_count=1,
        byte_count=2,
        duration_sec=3,
    )
    assert json.loads(json.dumps(removed.to_json()))["reason"] == "hard_timeout"
    port = m.PortStatus(dpid="d", port_no=2, reason=m.PortStatusReason.DELETE)
    assert port.to_json()["reason"] == "delete"
    assert m.SwitchChange(dpid="d", up=True).to_json() == {"dpid": "d", "up": True}


def test_module_event_names():
    assert (
        m.module_event_name("l2_switch", m.MessageType.PACKET_IN)
        == "xmpp_ofc/dispatcher.l2_switch.packet_in"
    )
    assert (
        m.module_event_name("rate_limiter", m.Control.RESTORE)
        == "xmpp_ofc/dispatcher.rate_limiter.restore"
    )


def test_packet_out_refuses_data_with_a_buffer_and_no_data_without_one():
    with pytest.raises(ValueError):
        PacketOut(dpid="d", in_port=1, out_port=2, buffer_id=5, data=b"x")
    with pytest.raises(ValueError):
        PacketOut(dpid="d", in_port=1, out_port=2)
    assert PacketOut(dpid="d", in_port=1, out_port=2, buffer_id=5).data == b""


def test_flow_commands_freeze_their_dict_and_compare_by_value():
    source = {"table_id": 1, "cookie": 5}
    install = InstallFlow("d", source)
    source["cookie"] = 6
    assert install.flow["cookie"] == 5
    assert install == InstallFlow("d", {"table_id": 1, "cookie": 5})
    with pytest.raises(TypeError):
        install.flow["cookie"] = 7
    assert DeleteFlows("d", {"cookie": 1}) != InstallFlow("d", {"cookie": 1})
