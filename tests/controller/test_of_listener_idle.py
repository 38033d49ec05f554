"""500 idle TCP connections to the OpenFlow port that never send HELLO do not keep a switch out.

Each idle connection is closed by of_core's handshake timeout (3 s here) and
logged, and past ``MAX_PENDING_HANDSHAKES`` the oldest are closed at once;
meanwhile a switch that does speak OpenFlow completes its handshake and stays
connected.
"""

from __future__ import annotations

import contextlib
import socket

from tests.kytos_helpers import running_controller
from tests.waiting import wait_until
from xmpp_ofc.testing.fake_switch import FakeSwitch

IDLE = 500
ENV = {"KYTOS_OF_CORE_TICK_INTERVAL": "0.2", "KYTOS_OF_CORE_HANDSHAKE_TIMEOUT": "3"}
DPID = 0x5A


def open_idle(port: int, count: int, into: list[socket.socket]) -> None:
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), 5)
        sock.setblocking(False)  # closed_by_controller peeks without waiting
        into.append(sock)


def closed_by_controller(sock: socket.socket) -> bool:
    try:
        return sock.recv(64, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_idle_connections_time_out_and_a_switch_still_connects(tmp_path):
    idle: list[socket.socket] = []
    with running_controller(tmp_path / "controller", env=ENV) as controller:
        try:
            open_idle(controller.of_port, IDLE, idle)
            with FakeSwitch("127.0.0.1", controller.of_port, dpid=DPID) as switch:
                switch.connect().handshake(timeout=15)
                dpid = switch.dpid_str

                def connected() -> bool:
                    status, body = controller.get(f"xmpp_ofc/dispatcher/v1/switches/{dpid}")
                    return status == 200 and body.get("connected", False)

                assert wait_until(connected, timeout=15)
                # Each idle one is closed by the handshake timeout (bounded wait, no speed assert).
                all_closed = wait_until(
                    lambda: all(closed_by_controller(s) for s in idle), timeout=30, interval=0.5
                )
                assert all_closed, sum(not closed_by_controller(s) for s in idle)
                log = controller.log_text()
                assert log.count("handshake not completed within 3 s") >= IDLE
                # ... and the real switch was not among them.
                assert not switch.closed_by_peer
                assert connected()
        finally:
            for sock in idle:
                with contextlib.suppress(OSError):
                    sock.close()


def test_past_the_pending_bound_the_oldest_idle_connections_are_closed_at_once(tmp_path):
    """Handshake timeout far away (60 s): only the bound (100) can close them."""
    env = {"KYTOS_OF_CORE_HANDSHAKE_TIMEOUT": "60", "KYTOS_OF_CORE_MAX_PENDING_HANDSHAKES": "100"}
    idle: list[socket.socket] = []
    with running_controller(tmp_path / "controller", env=env) as controller:
        try:
            open_idle(controller.of_port, 300, idle)

            def at_most_the_bound_open() -> bool:
                return sum(not closed_by_controller(s) for s in idle) <= 100

            assert wait_until(at_most_the_bound_open, timeout=30, interval=0.5)
            assert not any(closed_by_controller(s) for s in idle[-90:])  # the newest stay
            assert controller.wait_for_log("more than 100 connections in their handshake")
            with FakeSwitch("127.0.0.1", controller.of_port, dpid=DPID + 1) as switch:
                switch.connect().handshake(timeout=15)
                path = f"xmpp_ofc/dispatcher/v1/switches/{switch.dpid_str}"
                assert wait_until(lambda: controller.get(path)[1].get("connected"), timeout=15)
                assert not switch.closed_by_peer
        finally:
            for sock in idle:
                with contextlib.suppress(OSError):
                    sock.close()
