"""kytos/of_core in the real controller process, against scripted fake switches.

One controller serves the whole module (short echo, liveness and poll periods
set through the environment); each test connects its own switches with
distinct dpids.
"""

import itertools
import time

import pytest
from pyof.v0x04.common.header import Type
from pyof.v0x04.controller2switch.common import MultipartType
from pyof.v0x04.symmetric.echo_request import EchoRequest

from tests.kytos_helpers import running_controller
from tests.waiting import wait_until
from xmpp_ofc.testing.fake_switch import FakeSwitch, flow_stats, hello_bytes, multipart_parts

ENV = {
    "KYTOS_OF_CORE_TICK_INTERVAL": "0.1",
    "KYTOS_OF_CORE_ECHO_INTERVAL": "0.3",
    "KYTOS_OF_CORE_DEAD_AFTER": "1.5",
    "KYTOS_OF_CORE_STATS_INTERVAL": "1",
    "KYTOS_OF_CORE_HANDSHAKE_TIMEOUT": "3",
    "KYTOS_OF_CORE_MAX_MESSAGE_BYTES": "8192",
}
_dpids = itertools.count(0x100)


@pytest.fixture(scope="module")
def controller(tmp_path_factory):
    with running_controller(tmp_path_factory.mktemp("of_core_controller"), env=ENV) as process:
        yield process


def switch(controller, **kwargs):
    return FakeSwitch("127.0.0.1", controller.of_port, dpid=next(_dpids), **kwargs)


def test_handshake_completes_with_set_config_and_the_switch_is_known(controller):
    with switch(controller).handshake() as sw:
        set_config = sw.wait_for(Type.OFPT_SET_CONFIG).message
        assert set_config.miss_send_len.value == 0xFFFF
        assert controller.wait_for_log(f"Handshake with switch {sw.dpid_str}")
        status, body = controller.get(f"kytos/flow_manager/v2/flows/{sw.dpid_str}")
        assert status == 200
        assert sw.dpid_str in body


def test_echo_in_both_directions(controller):
    with switch(controller).handshake() as sw:
        request = sw.wait_for(Type.OFPT_ECHO_REQUEST, timeout=5)
        assert request.message.data.value == b"kytosd_13"
        assert wait_until(lambda: sw.of_type(Type.OFPT_ECHO_REQUEST)[1:], timeout=5)
        since = sw.mark()
        sw.send_echo_request(0x1234, b"are you there")
        reply = sw.wait_for(Type.OFPT_ECHO_REPLY, since=since, timeout=5)
        assert reply.xid == 0x1234
        assert reply.message.data.value == b"are you there"


def test_flow_poll_reply_split_with_reply_more_is_assembled(controller):
    flows = [
        flow_stats({"priority": 1000 + i, "cookie": i, "match": {"in_port": i + 1}})
        for i in range(7)
    ]
    with switch(controller, flows=flows, parts_per_reply=2).handshake() as sw:
        request = sw.wait_for(
            Type.OFPT_MULTIPART_REQUEST,
            predicate=lambda r: r.message.multipart_type == MultipartType.OFPMP_FLOW,
        )
        assert request is not None  # the periodic poll reached the switch

        def listed():
            status, body = controller.get(f"kytos/flow_manager/v2/flows/{sw.dpid_str}")
            flows = body.get(sw.dpid_str, {}).get("flows", []) if status == 200 else []
            return flows if len(flows) == 7 else None

        listed_flows = wait_until(listed, timeout=10)
        assert listed_flows, "the 7 flows sent in 4 REPLY_MORE parts never showed up"
        assert sorted(f["priority"] for f in listed_flows) == list(range(1000, 1007))
        assert {f["match"]["in_port"] for f in listed_flows} == set(range(1, 8))


def test_garbage_closes_only_that_connection(controller):
    with switch(controller).handshake() as good, switch(controller).handshake() as bad:
        bad.send(b"\x00garbage, not OpenFlow\xff" * 8)
        assert bad.wait_closed(5), "the controller kept a connection that sent garbage"
        assert controller.wait_for_log("invalid OpenFlow stream")
        assert controller.wait_for_log(f"Switch {bad.dpid_str} disconnected")
        since = good.mark()
        good.send_echo_request(77)
        assert good.wait_for(Type.OFPT_ECHO_REPLY, since=since).xid == 77
        assert not good.closed_by_peer


def test_truncated_message_is_completed_by_the_next_chunk(controller):
    with switch(controller).handshake() as sw:
        message = EchoRequest(xid=4242, data=b"x" * 300).pack()
        since = sw.mark()
        sw.send_in_pieces(message, cut_at=[5, 100], pause=0.3)  # even the header is cut
        assert sw.wait_for(Type.OFPT_ECHO_REPLY, since=since).xid == 4242


def test_oversized_header_closes_the_connection(controller):
    with switch(controller).handshake() as good, switch(controller).handshake() as big:
        big.send(b"\x04\x02\xff\xff\x00\x00\x00\x01")  # 65535 bytes announced, limit 8192
        assert big.wait_closed(5)
        assert controller.wait_for_log("more than the limit of 8192")
        since = good.mark()
        good.send_echo_request(78)
        assert good.wait_for(Type.OFPT_ECHO_REPLY, since=since).xid == 78


def test_silent_switch_is_disconnected_within_dead_after(controller):
    with switch(controller).handshake() as sw:
        sw.go_silent()
        started = time.monotonic()
        assert sw.wait_closed(10), "a switch that stopped answering was never disconnected"
        assert time.monotonic() - started < 1.5 + 2.0  # DEAD_AFTER plus tick slack
        assert controller.wait_for_log(f"Switch {sw.dpid_str} disconnected: switch silent")


def test_incompatible_hello_gets_hello_failed_and_is_closed(controller):
    sw = switch(controller, hello=hello_bytes(1))
    with sw.connect():
        error = sw.wait_for(Type.OFPT_ERROR, timeout=5)
        assert error.message.error_type.value == 0  # OFPET_HELLO_FAILED
        assert sw.wait_closed(5)
        assert controller.wait_for_log("Hello from 127.0.0.1")


def test_switch_that_never_says_hello_is_closed_after_the_handshake_timeout(controller):
    sw = switch(controller)
    with sw.connect(send_hello=False):
        assert sw.wait_closed(10)
        assert controller.wait_for_log("handshake not completed within 3 s")


def _flows(first_priority: int, count: int) -> list:
    """``count`` flow-stats entries with distinct priority, cookie and in_port."""
    return [
        flow_stats(
            {
                "priority": first_priority + i,
                "cookie": first_priority + i,
                "match": {"in_port": i + 1},
            }
        )
        for i in range(count)
    ]


def _listed(controller, dpid: str) -> set[tuple[int, int, int]] | None:
    """(priority, cookie, in_port) of the flows flow_manager lists for ``dpid``."""
    status, body = controller.get(f"kytos/flow_manager/v2/flows/{dpid}")
    if status != 200:
        return None
    flows = body.get(dpid, {}).get("flows", [])
    return {(f["priority"], f["cookie"], f["match"]["in_port"]) for f in flows}


def _expected(first_priority: int, count: int) -> set[tuple[int, int, int]]:
    return {(first_priority + i, first_priority + i, i + 1) for i in range(count)}


def _is_of_core_flow_poll(item) -> bool:
    """of_core's own poll: OFPMP_FLOW, all tables, no cookie filter (the dispatcher filters)."""
    message = item.message
    return (
        message is not None
        and message.multipart_type == MultipartType.OFPMP_FLOW
        and message.body.table_id.value == 0xFF
        and message.body.cookie_mask.value == 0
    )


def test_switch_vanishing_mid_multipart_leaves_the_others_served(controller):
    """DESIGN 8: a switch that dies between REPLY_MORE parts costs only its own connection.

    Switch A answers of_core's flow poll with 2 of 3 parts (REPLY_MORE set)
    and closes its socket.  Observable effects:

    - A is reported disconnected: of_core's log line
      ``Switch <dpid> disconnected`` (the one written when it emits
      ``kytos/of_core.switch.disconnected``), and flow_manager refuses to send
      to A with 409 "not connected" (Kytos dropped A's connection);
    - the partial reply is dropped, never published: GET v2/flows/<A> still
      lists exactly A's flows from its last complete poll;
    - switch B, connected throughout, keeps being served: its echo requests are
      answered and its next polls (3-part replies) replace its listed flows
      with exactly what it reported after A vanished;
    - no traceback in the controller log while this test ran;
    - A reconnects with the same dpid and its first poll is listed normally.
    """
    log_start = len(controller.log_text())
    a = switch(controller, flows=_flows(2000, 3), parts_per_reply=2)
    b = switch(controller, flows=_flows(3000, 5), parts_per_reply=2)
    with a.handshake(), b.handshake():
        assert wait_until(lambda: _listed(controller, a.dpid_str) == _expected(2000, 3), 10)
        assert wait_until(lambda: _listed(controller, b.dpid_str) == _expected(3000, 5), 10)

        a.auto_reply = False  # from now on A answers only echoes; the test answers the poll
        poll = a.wait_for(
            Type.OFPT_MULTIPART_REQUEST, since=a.mark(), predicate=_is_of_core_flow_poll
        )
        parts = multipart_parts(poll.xid, MultipartType.OFPMP_FLOW, _flows(2100, 6), per_part=2)
        assert [part.flags for part in parts] == [1, 1, 0]  # REPLY_MORE on all but the last
        a.send(b"".join(part.pack() for part in parts[:2]))  # no final part ...
        a.close()  # ... and A is gone

        assert controller.wait_for_log(f"Switch {a.dpid_str} disconnected", timeout=10)
        status, body = controller.post(
            f"kytos/flow_manager/v2/flows/{a.dpid_str}", {"flows": [{"priority": 10}]}
        )
        assert status == 409, body
        assert _listed(controller, a.dpid_str) == _expected(2000, 3)

        since = b.mark()
        b.flows = _flows(3100, 5)
        assert wait_until(lambda: _listed(controller, b.dpid_str) == _expected(3100, 5), 10), (
            "B's polls stopped completing after A vanished"
        )
        b.send_echo_request(0xB0B)
        assert b.wait_for(Type.OFPT_ECHO_REPLY, since=since, predicate=lambda r: r.xid == 0xB0B)
        assert b.wait_for(Type.OFPT_ECHO_REQUEST, since=since)  # our keepalive goes on too
        assert not b.closed_by_peer
        assert _listed(controller, a.dpid_str) == _expected(2000, 3)

        again = FakeSwitch("127.0.0.1", controller.of_port, dpid=a.dpid, flows=_flows(2200, 4))
        with again.handshake():
            assert wait_until(lambda: _listed(controller, a.dpid_str) == _expected(2200, 4), 10)
            assert not again.closed_by_peer
    assert "Traceback" not in controller.log_text()[log_start:]
