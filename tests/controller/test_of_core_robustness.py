"""Issue 13: no message, peer or impostor stops the controller or takes over a switch.

A real controller process (all NApps) against fake switches: a message that
does not pack, a second connection claiming a live switch's dpid, a dead
switch's reconnect, a peer trickling bytes, a peer answering no echo, and a
peer flooding packet-ins without ever reading.
"""

from __future__ import annotations

import itertools
import re
import threading
import time

import pytest
from pyof.v0x04.common.header import Type
from pyof.v0x04.symmetric.echo_request import EchoRequest

from tests.kytos_helpers import pyof_packet_in, running_controller
from tests.waiting import wait_until
from xmpp_ofc import cookies, pipeline
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.openflow.dpid import dpid_to_str
from xmpp_ofc.testing import frames
from xmpp_ofc.testing.fake_switch import FakeSwitch
from xmpp_ofc.testing.flooder import NeverReadingFlooder

L2_MISS = cookies.encode(Owner.L2_SWITCH, Kind.TABLE_MISS)
BROADCAST = "ff:ff:ff:ff:ff:ff"
ENV = {
    "KYTOS_OF_CORE_TICK_INTERVAL": "0.1",
    "KYTOS_OF_CORE_ECHO_INTERVAL": "0.3",
    "KYTOS_OF_CORE_ECHO_TIMEOUT": "1.2",
    "KYTOS_OF_CORE_DEAD_AFTER": "2",
    "KYTOS_OF_CORE_IDENTITY_ECHO_TIMEOUT": "0.5",
    "KYTOS_OF_CORE_HANDSHAKE_TIMEOUT": "5",
    # l2_switch answers each broadcast packet-in with a flood packet-out; the
    # rate limiter's capture flows are not needed here.
    "XMPP_OFC_DISPATCHER_DISABLED_MODULES": "rate_limiter",
}
_dpids = itertools.count(0x1300)


@pytest.fixture(scope="module")
def controller(tmp_path_factory):
    with running_controller(tmp_path_factory.mktemp("of_core_robust"), env=ENV) as process:
        yield process


def switch(controller, dpid: int | None = None, **kwargs) -> FakeSwitch:
    return FakeSwitch("127.0.0.1", controller.of_port, dpid=dpid or next(_dpids), **kwargs)


def metric(controller, name: str, **labels: str) -> float:
    """One sample of the Prometheus text the dispatcher serves (0 when absent)."""
    status, text = controller.get("xmpp_ofc/dispatcher/v1/metrics")
    assert status == 200
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def broadcast_packet_in(src_mac: str, in_port: int, size: int = 60):
    frame = frames.ethernet(BROADCAST, src_mac, 0x0800, b"\x45" + bytes(size - 15))
    return pyof_packet_in(frame, in_port, cookie=L2_MISS, table_id=pipeline.TABLE_FORWARDING)


def echo_works(sw: FakeSwitch, xid: int) -> bool:
    since = sw.mark()
    sw.send_echo_request(xid)
    sw.wait_for(Type.OFPT_ECHO_REPLY, since=since, predicate=lambda r: r.xid == xid)
    return not sw.closed_by_peer


# --- item 1: the output path survives every message -----------------------------


def test_packet_out_that_does_not_pack_is_dropped_and_every_switch_kept_served(controller):
    """A bit-flipped in_port (0xfffffff0, a reserved port pyof refuses in PacketOut)
    used to end Kytos' msg_out task: nothing was sent to any switch again."""
    with (
        switch(controller, ports=(1, 2)).handshake() as bad,
        switch(controller).handshake() as good,
    ):
        assert controller.wait_for_log(f"Handshake with switch {bad.dpid_str}")
        since = bad.mark()
        bad.send(broadcast_packet_in("02:00:00:00:13:01", 0xFFFFFFF0))
        assert controller.wait_for_log(f"dropped ofpt_packet_out to {bad.dpid_str}", timeout=10)
        labels = {"dp_id": bad.dpid_str, "type": "ofpt_packet_out"}
        assert metric(controller, "xmpp_ofc_of_messages_not_packed_total", **labels) >= 1
        # the same switch and another one are still served: echo, and a flood packet-out
        assert echo_works(bad, 0x1301)
        bad.send(broadcast_packet_in("02:00:00:00:13:02", 1))
        flood = bad.wait_for(Type.OFPT_PACKET_OUT, since=since, timeout=10)
        assert int(flood.message.in_port) == 1
        assert echo_works(good, 0x1302)
        since = good.mark()
        good.send(broadcast_packet_in("02:00:00:00:13:03", 2))
        assert good.wait_for(Type.OFPT_PACKET_OUT, since=since, timeout=10)


def test_health_says_every_core_task_runs(controller):
    status, body = controller.get("kytos/of_core/v1/health")
    assert status == 200, body
    assert body["healthy"] is True
    assert set(body["tasks"]) == {
        "raw_event_handler",
        "msg_in_event_handler",
        "msg_out_event_handler",
        "app_event_handler",
    }
    assert all(task["running"] for task in body["tasks"].values())
    assert metric(controller, "xmpp_ofc_core_task_up", task="msg_out_event_handler") == 1


# --- item 2: switch identity ----------------------------------------------------------


def test_impostor_claiming_a_live_switch_dpid_is_refused_and_the_switch_keeps_it(controller):
    refused_before = metric(controller, "xmpp_ofc_dp_claims_refused_total")
    with switch(controller).handshake() as real:
        assert controller.wait_for_log(f"Handshake with switch {real.dpid_str}")
        impostor = switch(controller, dpid=real.dpid)
        with impostor.connect():
            assert impostor.wait_closed(5), "the impostor was kept"
            assert not impostor.handshake_done.is_set()  # no PORT_DESC / DESC: no pipeline
            assert controller.wait_for_log(
                f"Refusing connection 127.0.0.1:{impostor_port(impostor)} that claims dpid "
                f"{real.dpid_str}: it is live"
            )
        assert metric(controller, "xmpp_ofc_dp_claims_refused_total") == refused_before + 1
        assert echo_works(real, 0x1303)
        since = real.mark()
        real.send(broadcast_packet_in("02:00:00:00:13:04", 1))
        assert real.wait_for(Type.OFPT_PACKET_OUT, since=since, timeout=10)
        assert not real.closed_by_peer


def impostor_port(sw: FakeSwitch) -> int:
    return sw._socket.getsockname()[1] if sw._socket else -1


def test_newcomer_takes_over_at_once_when_the_old_connection_answers_no_echo(controller):
    old = switch(controller)
    with old.handshake():
        assert controller.wait_for_log(f"Handshake with switch {old.dpid_str}")
        old.go_silent()  # hung: its TCP session is open but it answers nothing
        new = FakeSwitch("127.0.0.1", controller.of_port, dpid=old.dpid)
        with new.handshake(timeout=5):
            assert old.wait_closed(5), "the dead connection was kept"
            # the identity check's verdict (0.5 s), before ECHO_TIMEOUT or DEAD_AFTER
            assert controller.wait_for_log(f"takes over dpid {old.dpid_str}")
            assert echo_works(new, 0x1304)


def test_reconnect_after_the_old_connection_closed_is_immediate(controller):
    first = switch(controller)
    with first.handshake():
        assert controller.wait_for_log(f"Handshake with switch {first.dpid_str}")
    assert controller.wait_for_log(f"Switch {first.dpid_str} disconnected")
    again = FakeSwitch("127.0.0.1", controller.of_port, dpid=first.dpid)
    with again.handshake(timeout=5):
        assert echo_works(again, 0x1305)


# --- item 3: liveness per connection --------------------------------------------------------


def test_peer_trickling_a_byte_at_a_time_is_closed(controller):
    sw = switch(controller)
    with sw.handshake():
        sw.go_silent()
        trickle = EchoRequest(xid=0x1306, data=b"z" * 200).pack()

        def drip():
            for byte in trickle:
                if sw.closed_by_peer:
                    return
                try:
                    sw.send(bytes([byte]))
                except OSError:
                    return
                time.sleep(0.1)

        threading.Thread(target=drip, daemon=True).start()
        assert sw.wait_closed(8), "a peer that completes no message was kept"
        # whichever comes first: no echo reply (1.2 s) or no complete message (2 s)
        assert controller.wait_for_log(f"Switch {sw.dpid_str} disconnected: ")
        log = controller.log_text()
        assert (
            f"Switch {sw.dpid_str} disconnected: no echo reply" in log
            or f"Switch {sw.dpid_str} disconnected: switch silent" in log
        )


def test_peer_that_answers_no_echo_is_closed_even_when_busy(controller):
    sw = switch(controller)
    with sw.handshake():
        sw.go_silent()
        deadline = time.monotonic() + 8
        while not sw.closed_by_peer and time.monotonic() < deadline:
            try:
                sw.send_echo_request(0x1307)  # a complete message every 0.2 s
            except OSError:
                break
            time.sleep(0.2)
        assert sw.wait_closed(1), "a peer that never answers our echo was kept"
        assert controller.wait_for_log(f"Switch {sw.dpid_str} disconnected: no echo reply")


# --- item 3: a peer that floods and never reads ------------------------------------------------


def flood_packet_in() -> bytes:
    """A 1 KiB broadcast packet-in: l2_switch answers each with a flood packet-out."""
    return broadcast_packet_in("02:00:00:00:13:99", 1, size=1024).pack()


FLOOD_ENV = {
    **ENV,
    # only the output bound may close the flooder here, not the liveness checks
    "KYTOS_OF_CORE_ECHO_TIMEOUT": "60",
    "KYTOS_OF_CORE_DEAD_AFTER": "60",
    "KYTOS_OF_CORE_MAX_OUTPUT_QUEUE_BYTES": "262144",
}


def test_never_reading_flooder_is_closed_when_its_output_queue_is_full(controller_factory):
    process = controller_factory(env=FLOOD_ENV)
    flooder = NeverReadingFlooder(process.of_port, next(_dpids), flood_packet_in()).start()
    try:
        assert process.wait_for_log("does not read", timeout=30), "the output queue grew unbounded"
        assert process.wait_for_log(f"Switch {dpid_to_str(flooder.dpid)} disconnected", 10)
        assert metric(process, "xmpp_ofc_of_output_overflows_total") >= 1
        with switch(process).handshake() as good:
            assert echo_works(good, 0x1308)
    finally:
        flooder.close()


def test_sigterm_ends_the_controller_within_5_s_while_a_peer_floods_and_never_reads(
    controller_factory,
):
    env = {**FLOOD_ENV, "KYTOS_OF_CORE_MAX_OUTPUT_QUEUE_BYTES": str(64 * 1024 * 1024)}
    process = controller_factory(env=env)
    flooder = NeverReadingFlooder(process.of_port, next(_dpids), flood_packet_in()).start()
    try:
        assert wait_until(lambda: flooder.sent > 2000, timeout=20), "the flood did not start"
        time.sleep(2)  # a backlog builds up
        assert process.running
        started = time.monotonic()
        process.process.send_signal(15)
        process.process.wait(timeout=30)
        took = time.monotonic() - started
        assert took <= 5.0, f"SIGTERM took {took:.1f} s with a flooding peer connected"
    finally:
        flooder.close()
