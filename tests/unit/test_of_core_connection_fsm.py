"""The per-connection state machine: handshake, echo, liveness, polls, multipart."""

from pyof.v0x04.asynchronous.error_msg import ErrorType, HelloFailedCode
from pyof.v0x04.asynchronous.packet_in import PacketIn
from pyof.v0x04.common.header import Type
from pyof.v0x04.common.utils import unpack_message
from pyof.v0x04.controller2switch.common import MultipartType
from pyof.v0x04.controller2switch.features_reply import FeaturesReply
from pyof.v0x04.symmetric.echo_reply import EchoReply
from pyof.v0x04.symmetric.echo_request import EchoRequest

from napps.kytos.of_core.connection_fsm import Phase, Poll, SwitchSession, Timing
from xmpp_ofc.testing.fake_switch import flow_stats, hello_bytes, multipart_parts

TIMING = Timing(echo_interval=5, dead_after=15, stats_interval=60, handshake_timeout=10)


def wire(message):
    """A message as of_core gets it: packed by the switch, unpacked by pyof."""
    return unpack_message(message.pack())


def features(dpid="00:00:00:00:00:00:00:01"):
    return wire(
        FeaturesReply(
            xid=2,
            datapath_id=dpid,
            n_buffers=0,
            n_tables=2,
            auxiliary_id=0,
            capabilities=0,
            reserved=0,
        )
    )


def feed(session, message, now=0.0):
    message = wire(message) if not hasattr(message.header.xid, "value") else message
    return session.on_message(message, int(message.header.message_type), now)


def established(now=0.0):
    session = SwitchSession(now, TIMING)
    session.on_hello(hello_bytes(4), now)
    out = session.on_message(features(), Type.OFPT_FEATURES_REPLY, now)
    assert session.phase is Phase.ESTABLISHED
    return session, out


def types(messages):
    return [m.header.message_type for m in messages]


def test_hello_13_gets_hello_and_features_request():
    session = SwitchSession(0.0, TIMING)
    out = session.on_hello(hello_bytes(4, bitmap=[1, 4]), 0.0)
    assert types(out.send) == [Type.OFPT_HELLO, Type.OFPT_FEATURES_REQUEST]
    assert not out.hello_failed
    assert session.phase is Phase.AWAITING_FEATURES


def test_incompatible_hello_gets_hello_failed_error():
    session = SwitchSession(0.0, TIMING)
    out = session.on_hello(hello_bytes(1), 0.0)
    assert out.hello_failed
    assert session.phase is Phase.HELLO_FAILED
    [error] = out.send
    assert error.header.message_type == Type.OFPT_ERROR
    assert error.error_type == ErrorType.OFPET_HELLO_FAILED
    assert error.code == HelloFailedCode.OFPHFC_INCOMPATIBLE


def test_features_reply_completes_the_handshake_with_the_upstream_requests():
    _session, out = established()
    assert out.features is not None
    assert types(out.send) == [
        Type.OFPT_MULTIPART_REQUEST,
        Type.OFPT_MULTIPART_REQUEST,
        Type.OFPT_SET_CONFIG,
    ]
    port_desc, desc, set_config = out.send
    assert port_desc.multipart_type == MultipartType.OFPMP_PORT_DESC
    assert desc.multipart_type == MultipartType.OFPMP_DESC
    assert set_config.miss_send_len == 0xFFFF  # OFPCML_NO_BUFFER
    assert types(out.deliver) == [Type.OFPT_FEATURES_REPLY]


def test_set_config_can_be_turned_off():
    session = SwitchSession(0.0, Timing(send_set_config=False))
    session.on_hello(hello_bytes(4), 0.0)
    out = session.on_message(features(), Type.OFPT_FEATURES_REPLY, 0.0)
    assert Type.OFPT_SET_CONFIG not in types(out.send)


def test_messages_before_features_are_held_then_delivered_in_order():
    session = SwitchSession(0.0, TIMING)
    session.on_hello(hello_bytes(4), 0.0)
    packet_in = PacketIn(xid=5, buffer_id=0xFFFFFFFF, total_len=0, reason=0, table_id=0, cookie=0)
    assert feed(session, packet_in).deliver == []
    out = session.on_message(features(), Type.OFPT_FEATURES_REPLY, 0.0)
    assert types(out.deliver) == [Type.OFPT_FEATURES_REPLY, Type.OFPT_PACKET_IN]


def test_pending_messages_are_bounded():
    session = SwitchSession(0.0, Timing(max_pending=2))
    session.on_hello(hello_bytes(4), 0.0)
    for xid in range(5):
        feed(session, EchoReply(xid=xid))
    assert len(session.pending) == 2
    assert session.dropped_pending == 3


def test_echo_request_is_answered_with_same_xid_and_data_even_during_setup():
    session = SwitchSession(0.0, TIMING)
    session.on_hello(hello_bytes(4), 0.0)
    [reply] = feed(session, EchoRequest(xid=0xABCD, data=b"ping")).send
    assert reply.header.message_type == Type.OFPT_ECHO_REPLY
    assert reply.header.xid == 0xABCD
    assert reply.data == b"ping"


def alive(session, now):
    """The switch completed a message (its echo request) at ``now``."""
    feed(session, EchoRequest(xid=0x7777, data=b""), now)


def test_echo_requests_are_sent_every_interval():
    session, _ = established(now=100.0)
    alive(session, 104.0)
    assert session.on_tick(104.0, poll_allowed=False).send == []
    alive(session, 105.0)
    assert types(session.on_tick(105.0, poll_allowed=False).send) == [Type.OFPT_ECHO_REQUEST]
    assert session.on_tick(106.0, poll_allowed=False).send == []


def test_silent_switch_is_closed_after_dead_after():
    session, _ = established(now=0.0)
    alive(session, 1.0)
    assert session.on_tick(15.9, poll_allowed=False).close is None
    out = session.on_tick(16.0, poll_allowed=False)
    assert "silent" in out.close
    assert session.phase is Phase.CLOSED


def test_bytes_that_complete_no_message_do_not_keep_a_peer_alive():
    """Issue 13: a peer trickling a byte a second after the handshake was never closed."""
    session, _ = established(now=0.0)
    for second in range(1, 16):
        session.on_data(float(second))  # one byte, never a whole message
    out = session.on_tick(15.0, poll_allowed=False)
    assert out.close is not None and "no complete message" in out.close


def test_unanswered_echo_closes_a_peer_that_keeps_sending_other_messages():
    timing = Timing(echo_interval=5, dead_after=15, stats_interval=60, echo_timeout=8)
    session = SwitchSession(0.0, timing)
    session.on_hello(hello_bytes(4), 0.0)
    session.on_message(features(), Type.OFPT_FEATURES_REPLY, 0.0)
    [echo] = session.on_tick(5.0, poll_allowed=False).send
    assert echo.header.message_type == Type.OFPT_ECHO_REQUEST
    for now in (6.0, 9.0, 12.0):
        alive(session, now)  # busy, but it never answers our echo
        assert session.on_tick(now, poll_allowed=False).close is None
    alive(session, 13.0)
    out = session.on_tick(13.0, poll_allowed=False)
    assert out.close == "no echo reply within 8 s"


def test_echo_reply_is_reported_and_clears_the_echo_timer():
    session, _ = established(now=0.0)
    [echo] = session.on_tick(5.0, poll_allowed=False).send
    xid = int(echo.header.xid)
    out = feed(session, EchoReply(xid=xid, data=b"kytosd_13"), 6.0)
    assert out.echo_answered == [xid]
    assert feed(session, EchoReply(xid=xid), 6.5).echo_answered == []  # only once
    assert session.on_tick(14.9, poll_allowed=False).close is None


def test_handshake_timeout_closes_a_connection_that_never_says_hello():
    session = SwitchSession(0.0, TIMING)
    assert session.on_tick(9.0).close is None
    assert "handshake" in session.on_tick(10.0).close


def test_poll_sends_flow_and_port_stats_requests_only_when_allowed():
    session, _ = established(now=0.0)
    assert session.on_tick(0.5, poll_allowed=False).send == []
    session2, _ = established(now=0.0)
    out = session2.on_tick(0.5, poll_allowed=True)
    kinds = [
        m.multipart_type for m in out.send if m.header.message_type == Type.OFPT_MULTIPART_REQUEST
    ]
    assert kinds == [MultipartType.OFPMP_FLOW, MultipartType.OFPMP_PORT_STATS]
    alive(session2, 30.0)
    assert types(session2.on_tick(30.0).send) == [Type.OFPT_ECHO_REQUEST]  # no poll yet
    feed(session2, EchoReply(xid=session2._next_xid - 1), 30.1)
    alive(session2, 60.6)
    polls = [m for m in session2.on_tick(60.6).send if hasattr(m, "multipart_type")]
    assert len(polls) == 2


def test_own_flow_poll_is_tagged_and_foreign_xids_are_not():
    session, _ = established()
    out = session.on_tick(0.1, poll_allowed=True)
    flow_xid = session.flow_poll_xid
    flows = [flow_stats({"priority": i, "cookie": i}) for i in range(5)]
    completed = []
    for part in multipart_parts(flow_xid, MultipartType.OFPMP_FLOW, flows, per_part=2):
        completed += feed(session, part).completed
    [(reply, poll)] = completed
    assert poll is Poll.FLOWS
    assert [s.priority.value for s in reply.body] == [0, 1, 2, 3, 4]
    assert reply.parts == 3
    assert out.send  # the requests went out
    # another requester's reply (a cookie-filtered poll) is assembled but untagged
    [part] = multipart_parts(424242, MultipartType.OFPMP_FLOW, flows[:1], per_part=10)
    [(reply, poll)] = feed(session, part).completed
    assert (reply.xid, poll) == (424242, None)


def test_each_part_is_delivered_as_a_message():
    session, _ = established()
    parts = multipart_parts(99, MultipartType.OFPMP_FLOW, [flow_stats({})] * 3, per_part=1)
    delivered = [m for part in parts for m in feed(session, part).deliver]
    assert len(delivered) == 3


def test_close_drops_partial_multipart_state():
    session, _ = established()
    [first, _second] = multipart_parts(
        7, MultipartType.OFPMP_FLOW, [flow_stats({})] * 2, per_part=1
    )
    feed(session, first)
    assert len(session.multipart) == 1
    session.on_closed()
    assert len(session.multipart) == 0
