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
from xmpp_ofc.testing.fake_switch import FakeSwitch, flow_stats, hello_bytes

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
