"""xmpp_ofc.graphite: plaintext lines, pushes to a local listener, outage logging."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from xmpp_ofc import graphite
from xmpp_ofc.testing.controller import free_port


@pytest.fixture
def registry():
    registry = CollectorRegistry()
    counter = Counter("of_packet_ins", "packet-ins", ["dp_id"], registry=registry)
    counter.labels("00:00:00:00:00:00:00:01").inc(12)
    Gauge("xmpp_ofc_switches_connected", "switches", registry=registry).set(2)
    return registry


class Listener:
    """A Graphite stand-in on 127.0.0.1: collects whatever each connection sends."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.payloads: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
            self.payloads.append(b"".join(chunks).decode())

    def wait_for(self, count: int, timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.payloads) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.payloads) >= count, f"{len(self.payloads)} pushes, wanted {count}"
        return self.payloads

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def test_plaintext_lines_flatten_labels_into_safe_path_segments(registry):
    lines = graphite.plaintext_lines(registry, "lab.xmpp_ofc", 1700000000.7)
    assert "lab.xmpp_ofc.xmpp_ofc_switches_connected 2.0 1700000000\n" in lines
    assert (
        "lab.xmpp_ofc.of_packet_ins_total.dp_id.00_00_00_00_00_00_00_01 12.0 1700000000\n" in lines
    )
    assert not any("_created" in line for line in lines)
    assert all(len(line.split(" ")) == 3 for line in lines)


def test_path_segment_never_splits_or_is_empty():
    assert graphite.path_segment("10.0.0.1") == "10_0_0_1"
    assert graphite.path_segment("fe80::1 x") == "fe80__1_x"
    assert graphite.path_segment("") == "_"


def test_push_once_reaches_a_local_listener(registry, listener):
    pusher = graphite.GraphitePusher(
        "127.0.0.1", listener.port, prefix="t", registry=registry, clock=lambda: 1234.0
    )
    assert pusher.push_once()
    payload = listener.wait_for(1)[0]
    assert "t.xmpp_ofc_switches_connected 2.0 1234\n" in payload
    assert payload.endswith("\n")


def test_periodic_push_sends_current_values_and_stops(registry, listener):
    pusher = graphite.GraphitePusher(
        "127.0.0.1", listener.port, interval=0.05, registry=registry
    ).start()
    try:
        listener.wait_for(2)
    finally:
        pusher.stop()
    sent = len(listener.payloads)
    time.sleep(0.2)
    assert len(listener.payloads) <= sent + 1  # at most one push was in flight


def test_an_outage_is_logged_once_and_its_end_once(registry, caplog):
    port = free_port()  # nothing listens there
    pusher = graphite.GraphitePusher("127.0.0.1", port, registry=registry, timeout=0.5)
    with caplog.at_level(logging.INFO, logger="xmpp_ofc.graphite"):
        assert not pusher.push_once()
        assert not pusher.push_once()
        assert not pusher.push_once()
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1
    assert pusher.failing

    server = socket.create_server(("127.0.0.1", port))
    try:
        with caplog.at_level(logging.INFO, logger="xmpp_ofc.graphite"):
            assert pusher.push_once()
    finally:
        server.close()
    assert not pusher.failing
    assert any("works again" in r.getMessage() for r in caplog.records)


def test_off_by_default_and_bad_settings_refused():
    assert graphite.pusher_from_settings("", 2003, "xmpp_ofc", 10.0) is None
    with pytest.raises(ValueError, match="port"):
        graphite.GraphitePusher("127.0.0.1", 0)
    with pytest.raises(ValueError, match="interval"):
        graphite.GraphitePusher("127.0.0.1", 2003, interval=0)
