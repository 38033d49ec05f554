"""The controller relay as plain TCP plumbing (no namespaces, no root needed)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from xmpp_ofc.lab import relay


@pytest.fixture
def echo_target() -> Iterator[int]:
    """A TCP echo server on 127.0.0.1; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)

    def echo_one(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=echo_one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def relay_port(echo_target: int) -> Iterator[int]:
    """A relay from a fresh 127.0.0.1 port to the echo server; yields the relay's port."""
    listener = relay.listen_in(None, "127.0.0.1", 0)
    running = relay.Relay(listener, ("127.0.0.1", echo_target))
    stop = threading.Event()
    thread = threading.Thread(target=running.serve_forever, args=(stop,), daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    running.close()


def echo(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        sender = threading.Thread(target=lambda: (conn.sendall(payload), conn.shutdown(1)))
        sender.start()
        received = bytearray()
        while chunk := conn.recv(65536):
            received += chunk
        sender.join(10)
    return bytes(received)


def test_bytes_cross_both_ways_unchanged(relay_port):
    assert (
        echo(relay_port, b"\x04\x00\x00\x08\x00\x00\x00\x01") == b"\x04\x00\x00\x08\x00\x00\x00\x01"
    )


def test_more_than_the_buffer_limit_arrives_complete_and_in_order(relay_port):
    payload = bytes(range(256)) * (4 * relay.BUFFER_LIMIT // 256)
    assert echo(relay_port, payload) == payload


def test_connections_are_independent(relay_port):
    with (
        socket.create_connection(("127.0.0.1", relay_port), timeout=5) as first,
        socket.create_connection(("127.0.0.1", relay_port), timeout=5) as second,
    ):
        first.sendall(b"one")
        second.sendall(b"two")
        assert second.recv(16) == b"two"
        assert first.recv(16) == b"one"


def test_unreachable_target_closes_the_accepted_connection():
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        dead_port = placeholder.getsockname()[1]  # closed below: nobody listens there
    listener = relay.listen_in(None, "127.0.0.1", 0)
    running = relay.Relay(listener, ("127.0.0.1", dead_port))
    stop = threading.Event()
    thread = threading.Thread(target=running.serve_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=5) as conn:
            assert conn.recv(16) == b""  # closed by the relay, not left hanging
        assert running.connections == 0
    finally:
        stop.set()
        thread.join(5)
        running.close()
