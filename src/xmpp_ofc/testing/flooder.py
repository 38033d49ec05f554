"""A peer that completes the OpenFlow 1.3 handshake, then floods and never reads.

Issue 13: such a switch pushed the controller's RSS from 65 to 186 MB and made
SIGTERM take more than 10 s.  Used by tests/controller/test_of_core_robustness.py
and benchmarks/never_reading_flood.py.  Its receive buffer is made small so the
controller's output backs up at once.
"""

from __future__ import annotations

import socket
import threading

from pyof.v0x04.common.header import Type
from pyof.v0x04.controller2switch.features_reply import FeaturesReply

from xmpp_ofc.openflow.dpid import dpid_to_str
from xmpp_ofc.testing.fake_switch import hello_bytes


class NeverReadingFlooder:
    """Handshakes by hand, then only sends ``packet_in`` (packed), 16 at a time, and never reads."""

    def __init__(self, port: int, dpid: int, packet_in: bytes, host: str = "127.0.0.1") -> None:
        self.dpid = dpid
        self.packet_in = packet_in
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, port))
        self.sock.settimeout(5)
        self.sock.sendall(hello_bytes(bitmap=[4]))
        self._await_features_request()
        features = FeaturesReply(
            xid=self._features_xid,
            datapath_id=dpid_to_str(dpid),
            n_buffers=0,
            n_tables=254,
            auxiliary_id=0,
            capabilities=0,
            reserved=0,
        )
        self.sock.sendall(features.pack())
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._flood, daemon=True)

    def _await_features_request(self) -> None:
        buffer = b""
        while True:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the controller closed before its FEATURES_REQUEST")
            buffer += chunk
            while len(buffer) >= 8:
                length = int.from_bytes(buffer[2:4], "big")
                if len(buffer) < length:
                    break
                message, buffer = buffer[:length], buffer[length:]
                if message[1] == Type.OFPT_FEATURES_REQUEST:
                    self._features_xid = int.from_bytes(message[4:8], "big")
                    return

    def _flood(self) -> None:
        frame = self.packet_in * 16
        self.sock.settimeout(0.5)
        while not self.stop.is_set():
            try:
                self.sock.sendall(frame)
                self.sent += 16
            except TimeoutError:
                continue
            except OSError:
                return

    def start(self) -> NeverReadingFlooder:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()
