"""xmpp_ofc.pyof_decode: pyof messages as a switch sends them -> xmpp_ofc.messages values."""

from __future__ import annotations

from pyof.v0x04.asynchronous.flow_removed import FlowRemoved
from pyof.v0x04.asynchronous.packet_in import PacketIn
from pyof.v0x04.asynchronous.port_status import PortReason, PortStatus
from pyof.v0x04.common.utils import unpack_message

from xmpp_ofc import pyof_decode
from xmpp_ofc.messages import FlowRemovedReason, PacketInReason, PortStatusReason
from xmpp_ofc.openflow.match import match_from_dict
from xmpp_ofc.testing import frames
from xmpp_ofc.testing.fake_switch import flow_stats, make_port

DPID = "00:00:00:00:00:00:00:01"
FRAME = frames.tcp4_frame(
    eth_src="02:00:00:00:00:0a",
    eth_dst="02:00:00:00:00:0b",
    ip_src="10.0.0.1",
    ip_dst="10.0.0.2",
    tp_src=40000,
    tp_dst=5222,
)


def wire(message):
    """The message as of_core hands it over: unpacked from the switch's bytes."""
    return unpack_message(message.pack())


def test_packet_in_is_decoded_with_its_parsed_frame():
    message = PacketIn(
        buffer_id=5,
        total_len=len(FRAME),
        reason=1,
        table_id=1,
        cookie=0xA201000000000000,
        match=match_from_dict({"in_port": 4}),
        data=FRAME,
    )
    decoded = pyof_decode.packet_in(DPID, wire(message))
    assert (decoded.dpid, decoded.in_port, decoded.reason, decoded.table_id) == (
        DPID,
        4,
        PacketInReason.ACTION,
        1,
    )
    assert (decoded.cookie, decoded.buffer_id, decoded.total_len) == (0xA201000000000000, 5, 60)
    assert (decoded.packet.ip_src, decoded.packet.tp_dst) == ("10.0.0.1", 5222)
    assert decoded.packet.raw == FRAME


def test_packet_in_without_in_port_is_none():
    message = PacketIn(
        buffer_id=0xFFFFFFFF, total_len=60, reason=0, table_id=0, cookie=0,
        match=match_from_dict({}), data=FRAME,
    )  # fmt: skip
    assert pyof_decode.packet_in(DPID, wire(message)) is None


def test_packet_in_with_a_masked_in_port_is_none(caplog):
    """A bit flip in the OXM's has-mask bit made a ValueError in the dispatcher (OF fuzz)."""
    message = PacketIn(
        buffer_id=0xFFFFFFFF, total_len=60, reason=0, table_id=0, cookie=0,
        match=match_from_dict({"in_port": 4}), data=FRAME,
    )  # fmt: skip
    packed = message.pack()
    in_port_oxm = bytes.fromhex("80000004")
    assert packed.count(in_port_oxm) == 1
    flipped = unpack_message(packed.replace(in_port_oxm, bytes.fromhex("80000104")))
    assert pyof_decode.packet_in(DPID, flipped) is None
    assert "masked in_port" in caplog.text


def test_flow_removed_and_flow_stats_use_flow_manager_match_names():
    match = match_from_dict({"dl_type": 2048, "nw_src": "10.0.0.1", "nw_proto": 6, "tp_src": 9})
    removed = FlowRemoved(
        cookie=7, priority=200, reason=1, table_id=0, duration_sec=3, duration_nsec=5,
        idle_timeout=30, hard_timeout=60, packet_count=10, byte_count=1000, match=match,
    )  # fmt: skip
    decoded = pyof_decode.flow_removed(DPID, wire(removed))
    assert decoded.reason is FlowRemovedReason.HARD_TIMEOUT
    assert dict(decoded.match) == {
        "dl_type": 2048,
        "nw_src": "10.0.0.1",
        "nw_proto": 6,
        "tp_src": 9,
    }
    assert (decoded.packet_count, decoded.idle_timeout, decoded.hard_timeout) == (10, 30, 60)

    entry = pyof_decode.flow_stats_entry(
        DPID, flow_stats({"cookie": 9, "priority": 5, "match": {"in_port": 2}}, packet_count=4)
    )
    assert (entry.cookie, entry.priority, dict(entry.match), entry.packet_count) == (
        9,
        5,
        {"in_port": 2},
        4,
    )


def test_port_status_reports_link_down():
    status = PortStatus(reason=PortReason.OFPPR_MODIFY, desc=make_port(3, link_down=True))
    decoded = pyof_decode.port_status(DPID, wire(status))
    assert (decoded.port_no, decoded.reason, decoded.link_down, decoded.admin_down) == (
        3,
        PortStatusReason.MODIFY,
        True,
        False,
    )
    assert (decoded.name, decoded.hw_addr) == ("eth3", "02:00:00:00:00:03")
