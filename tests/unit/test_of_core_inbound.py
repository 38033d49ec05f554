"""of_core's frame -> message step: pyof for everything, struct codec for flow-stats replies."""

from __future__ import annotations

import pytest
from pyof.v0x04.common.header import Type
from pyof.v0x04.common.utils import unpack_message
from pyof.v0x04.controller2switch.common import MultipartType
from pyof.v0x04.controller2switch.features_reply import FeaturesReply
from pyof.v0x04.symmetric.echo_request import EchoRequest

from napps.kytos.of_core import inbound
from napps.kytos.of_core.connection_fsm import Poll, SwitchSession, Timing
from napps.kytos.of_core.inbound import FlowStatsReplyMessage, parse_message
from xmpp_ofc.openflow.flow_stats_codec import FlowStatsDecodeError, FlowStatsRecord
from xmpp_ofc.testing.fake_switch import flow_stats, hello_bytes, multipart_parts

FLOWS = [flow_stats({"priority": p, "cookie": p, "match": {"in_port": p + 1}}) for p in range(5)]


def flow_reply_frames(xid=77, per_part=2):
    return [p.pack() for p in multipart_parts(xid, MultipartType.OFPMP_FLOW, FLOWS, per_part)]


def test_other_messages_are_unpacked_by_pyof():
    frame = EchoRequest(xid=3, data=b"x").pack()
    message = parse_message(frame)
    assert type(message) is type(unpack_message(frame))
    port_stats = multipart_parts(4, MultipartType.OFPMP_PORT_STATS, [], 1)[0].pack()
    assert not isinstance(parse_message(port_stats), FlowStatsReplyMessage)


def test_flow_stats_reply_has_pyof_header_fields_without_running_pyof(monkeypatch):
    calls = []
    monkeypatch.setattr(inbound, "unpack_message", calls.append)
    first = flow_reply_frames()[0]
    message = parse_message(first)
    reference = unpack_message(first)
    assert isinstance(message, FlowStatsReplyMessage)
    assert message.header.message_type == reference.header.message_type == Type.OFPT_MULTIPART_REPLY
    assert hash(message.header.message_type) == hash(reference.header.message_type)
    assert (message.header.xid.value, message.header.length.value) == (77, len(first))
    assert message.header.version.value == 4
    assert int(message.multipart_type) == int(reference.multipart_type) == MultipartType.OFPMP_FLOW
    assert message.flags.value == reference.flags.value == 1  # REPLY_MORE
    assert [type(r) for r in message.records] == [FlowStatsRecord, FlowStatsRecord]
    assert [r.priority for r in message.records] == [0, 1]
    assert calls == []  # pyof never ran


def test_the_body_and_pack_come_from_pyof_on_first_use():
    first = flow_reply_frames()[0]
    message = parse_message(first)
    assert [s.priority.value for s in message.body] == [0, 1]
    assert message.pack() == first
    assert message.pyof() is message.pyof()  # unpacked once


def test_a_malformed_flow_stats_reply_raises_the_codec_error():
    first = bytearray(flow_reply_frames()[0])
    first[16:18] = (3).to_bytes(2, "big")  # first entry claims 3 bytes
    with pytest.raises(FlowStatsDecodeError, match="length 3"):
        parse_message(bytes(first))


def test_the_session_assembles_decoded_records_for_its_own_poll():
    timing = Timing(echo_interval=5, dead_after=15, stats_interval=60, handshake_timeout=10)
    session = SwitchSession(0.0, timing)
    session.on_hello(hello_bytes(4), 0.0)
    features = FeaturesReply(
        xid=2, datapath_id="00:00:00:00:00:00:00:01", n_buffers=0, n_tables=2,
        auxiliary_id=0, capabilities=0, reserved=0,
    )  # fmt: skip
    features_frame = features.pack()
    assert session.on_message(parse_message(features_frame), features_frame[1], 0.0).features
    session.on_tick(0.1)
    completed = []
    for frame in flow_reply_frames(xid=session.flow_poll_xid):
        out = session.on_message(parse_message(frame), frame[1], 0.2)
        assert [type(m) for m in out.deliver] == [FlowStatsReplyMessage]
        completed += out.completed
    [(reply, poll)] = completed
    assert poll is Poll.FLOWS
    assert [r.priority for r in reply.body] == [0, 1, 2, 3, 4]
    assert [r.match for r in reply.body] == [{"in_port": n} for n in range(1, 6)]
    assert reply.parts == 3


@pytest.mark.parametrize(
    "message_type",
    [Type.OFPT_PORT_STATUS, Type.OFPT_FLOW_REMOVED, Type.OFPT_ERROR, Type.OFPT_MULTIPART_REPLY],
)
def test_a_bare_header_of_a_type_with_a_body_is_refused(message_type):
    frame = bytes([4, int(message_type), 0, 8, 0, 0, 0, 1])
    with pytest.raises(inbound.EmptyBodyError):
        parse_message(frame)


@pytest.mark.parametrize("message_type", [Type.OFPT_ECHO_REQUEST, Type.OFPT_BARRIER_REPLY])
def test_a_bare_header_of_a_header_only_type_is_fine(message_type):
    message = parse_message(bytes([4, int(message_type), 0, 8, 0, 0, 0, 1]))
    assert message.header.message_type == message_type
