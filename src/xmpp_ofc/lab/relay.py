"""A TCP relay from a namespace's loopback to the root namespace's loopback.

Open vSwitch runs in its own network namespace, whose 127.0.0.1 is not the
127.0.0.1 where the controller listens.  Rather than give the root namespace a
veth address (the lab only ever uses loopback and addresses inside its own
namespaces), the relay listens on 127.0.0.1:<port> *inside* the OVS namespace
and, for every connection it accepts, connects to the controller on
127.0.0.1:<port> of the root namespace and copies bytes both ways.

The listening socket is created while the main thread is inside the target
namespace (a socket keeps the namespace it was born in); the thread then
returns to the root namespace, where the outgoing connections are made.

It runs as its own process (``python -m xmpp_ofc.lab.relay ...``) with a
pidfile, so the lab's cleanup finds and stops it even after the process that
started it crashed.
"""

from __future__ import annotations

import argparse
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from xmpp_ofc.lab import netns

log = logging.getLogger("xmpp_ofc.lab.relay")

LOOPBACK = "127.0.0.1"
# A slow reader must not make the relay buffer without bound: stop reading
# the other side until this much has been written out.
BUFFER_LIMIT = 256 * 1024
CHUNK = 64 * 1024
CONNECT_TIMEOUT = 2.0


class _Side:
    """One socket of a relayed connection and the bytes waiting to be written to it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = bytearray()
        self.eof = False  # the peer of this socket said it is done sending
        self.shut = False  # ... and that EOF was passed on to this socket
        self.events = 0  # what the selector watches this socket for (0: not registered)
        self.peer: _Side


class Relay:
    """Accept on ``listener``; pair each connection with one to ``target``."""

    def __init__(self, listener: socket.socket, target: tuple[str, int]) -> None:
        self.listener = listener
        self.target = target
        self.selector = selectors.DefaultSelector()
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ, None)
        self.connections = 0

    def serve_forever(self, stop: threading.Event | None = None) -> None:
        """Relay until killed, or until ``stop`` is set (checked twice a second)."""
        while stop is None or not stop.is_set():
            for key, events in self.selector.select(timeout=0.5):
                if key.data is None:
                    self._accept()
                else:
                    self._service(key.data, events)

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        self.selector.close()

    def _accept(self) -> None:
        try:
            inside, address = self.listener.accept()
        except BlockingIOError:
            return
        try:
            outside = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT)
        except OSError as error:
            log.warning(
                "connection from %s: target %s unreachable: %s", address, self.target, error
            )
            inside.close()
            return
        self.connections += 1
        log.info("relaying %s <-> %s", address, self.target)
        first, second = _Side(inside), _Side(outside)
        first.peer, second.peer = second, first
        for side in (first, second):
            side.sock.setblocking(False)
            side.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._watch(side, selectors.EVENT_READ)

    def _service(self, side: _Side, events: int) -> None:
        try:
            if events & selectors.EVENT_READ:
                self._read(side)
            if events & selectors.EVENT_WRITE and side.sock.fileno() != -1:
                self._flush(side)
        except OSError as error:
            log.info("connection closed: %s", error)
            self._close(side)
            return
        if side.sock.fileno() != -1:
            self._update(side)
            self._update(side.peer)

    def _read(self, side: _Side) -> None:
        data = side.sock.recv(CHUNK)
        if data:
            side.peer.pending += data
        else:
            side.peer.eof = True  # nothing more will come for the peer
        self._flush(side.peer)

    def _flush(self, side: _Side) -> None:
        """Write what is pending; pass a finished direction's EOF on as a half-close."""
        if side.pending:
            sent = side.sock.send(side.pending)
            del side.pending[:sent]
        if side.eof and not side.pending and not side.shut:
            side.sock.shutdown(socket.SHUT_WR)
            side.shut = True
            if side.peer.shut:  # both directions finished
                self._close(side)

    def _update(self, side: _Side) -> None:
        """Read only while the peer's buffer has room; write only with data pending."""
        if side.sock.fileno() == -1:
            return
        events = 0
        if len(side.peer.pending) < BUFFER_LIMIT and not side.peer.eof:
            events |= selectors.EVENT_READ
        if side.pending:
            events |= selectors.EVENT_WRITE
        self._watch(side, events)

    def _watch(self, side: _Side, events: int) -> None:
        if events == side.events:
            return
        if not events:
            self.selector.unregister(side.sock)
        elif not side.events:
            self.selector.register(side.sock, events, side)
        else:
            self.selector.modify(side.sock, events, side)
        side.events = events

    def _close(self, side: _Side) -> None:
        """Close both sockets (both directions done, or one of them failed)."""
        for each in (side, side.peer):
            if each.sock.fileno() != -1:
                self._watch(each, 0)
                each.sock.close()


def listen_in(namespace: str | None, host: str, port: int) -> socket.socket:
    """A listening TCP socket that lives in ``namespace`` (None: the current one)."""
    if namespace is None:
        return _listen(host, port)
    with netns.entered(namespace):
        return _listen(host, port)


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    return sock


# --- as a process ------------------------------------------------------------------


def command(namespace: str, listen_port: int, target_port: int, pidfile: Path) -> list[str]:
    return [
        sys.executable, "-m", "xmpp_ofc.lab.relay",
        "--netns", namespace,
        "--listen-port", str(listen_port),
        "--target-port", str(target_port),
        "--pidfile", str(pidfile),
    ]  # fmt: skip


def spawn(
    namespace: str,
    listen_port: int,
    target_port: int,
    pidfile: Path,
    log_path: Path,
    *,
    timeout: float = 10.0,
) -> subprocess.Popen:
    """Start a relay process and wait until it listens (its pidfile appears)."""
    pidfile.unlink(missing_ok=True)
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            command(namespace, listen_port, target_port, pidfile),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives a crash of its parent; cleanup stops it
        )
    deadline = time.monotonic() + timeout
    while not pidfile.exists():
        if process.poll() is not None:
            raise RuntimeError(
                f"relay exited with {process.returncode}: {log_path.read_text()[-2000:]}"
            )
        if time.monotonic() > deadline:
            process.kill()
            process.wait(5)
            raise TimeoutError(f"relay did not start within {timeout} s")
        time.sleep(0.02)
    return process


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--netns", required=True, help="namespace to listen in")
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--target-port", type=int, required=True, help="port on root 127.0.0.1")
    parser.add_argument("--pidfile", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s relay %(message)s")

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    listener = listen_in(args.netns, LOOPBACK, args.listen_port)
    relay = Relay(listener, (LOOPBACK, args.target_port))
    temporary = args.pidfile.with_suffix(".tmp")
    temporary.write_text(f"{os.getpid()}\n")
    temporary.replace(args.pidfile)  # appears only once we listen: the readiness signal
    log.info("listening on %s:%d in %s", LOOPBACK, args.listen_port, args.netns)
    try:
        relay.serve_forever()
    finally:
        relay.close()
        args.pidfile.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
