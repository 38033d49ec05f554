"""A scripted OpenFlow 1.3 switch for tests and benchmarks.

:class:`FakeSwitch` connects to a controller over TCP and plays the switch's
side of the protocol on a reader thread: it sends its HELLO, answers the
FEATURES_REQUEST with its dpid, PORT_DESC / DESC / FLOW / PORT_STATS
multipart requests with its configured ports and flows (split across
REPLY_MORE parts when asked), and ECHO_REQUESTs unless it has gone silent.
Tests send anything they like (pyof messages or raw bytes, garbage included)
and wait, always with a timeout, for what the controller sent.

Synchronous on purpose: a socket and one thread are enough, and it works the
same from pytest and from a benchmark script.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pyof.v0x04.common.header import Type
from pyof.v0x04.common.port import Port, PortFeatures, PortState
from pyof.v0x04.common.utils import unpack_message
from pyof.v0x04.controller2switch.common import MultipartType
from pyof.v0x04.controller2switch.features_reply import FeaturesReply
from pyof.v0x04.controller2switch.multipart_reply import Desc, FlowStats, MultipartReply
from pyof.v0x04.symmetric.echo_reply import EchoReply
from pyof.v0x04.symmetric.echo_request import EchoRequest

from xmpp_ofc.openflow.dpid import dpid_to_str
from xmpp_ofc.openflow.flow_json import flow_mod_from_dict

OFP_VERSION_13 = 0x04
OFPMPF_REPLY_MORE = 1
OFPHET_VERSIONBITMAP = 1


def hello_bytes(version: int = OFP_VERSION_13, bitmap: Iterable[int] | None = None) -> bytes:
    """A HELLO of ``version``, with a VERSIONBITMAP element when ``bitmap`` is given."""
    element = b""
    if bitmap is not None:
        versions = list(bitmap)
        words = [0] * (max(versions) // 32 + 1)
        for item in versions:
            words[item // 32] |= 1 << (item % 32)
        element = struct.pack("!HH", OFPHET_VERSIONBITMAP, 4 + 4 * len(words))
        element += b"".join(struct.pack("!I", word) for word in words)
        element += b"\0" * (-len(element) % 8)
    return struct.pack("!BBHI", version, 0, 8 + len(element), 0) + element


def make_port(number: int, name: str | None = None, link_down: bool = False) -> Port:
    """A 1 Gb/s copper port description."""
    return Port(
        port_no=number,
        hw_addr=f"02:00:00:00:{number >> 8 & 0xFF:02x}:{number & 0xFF:02x}",
        name=name or f"eth{number}",
        config=0,
        state=int(PortState.OFPPS_LINK_DOWN if link_down else PortState.OFPPS_LIVE),
        curr=int(PortFeatures.OFPPF_1GB_FD | PortFeatures.OFPPF_COPPER),
        advertised=0,
        supported=0,
        peer=0,
        curr_speed=1_000_000,
        max_speed=1_000_000,
    )


def flow_stats(
    flow: dict[str, Any],
    *,
    packet_count: int = 0,
    byte_count: int = 0,
    duration_sec: int = 0,
) -> FlowStats:
    """The FlowStats a switch reports for ``flow`` (flow_manager's JSON shape)."""
    flow_mod = flow_mod_from_dict(flow, "add")
    stats = FlowStats(
        table_id=flow_mod.table_id,
        duration_sec=duration_sec,
        duration_nsec=0,
        priority=flow_mod.priority,
        idle_timeout=flow_mod.idle_timeout,
        hard_timeout=flow_mod.hard_timeout,
        flags=0,
        cookie=flow_mod.cookie,
        packet_count=packet_count,
        byte_count=byte_count,
        match=flow_mod.match,
        instructions=flow_mod.instructions,
    )
    stats.length = stats.get_size()
    return stats


def multipart_parts(
    xid: int, multipart_type: int, entries: list[Any], per_part: int
) -> list[MultipartReply]:
    """``entries`` as MULTIPART_REPLYs of ``per_part`` entries; REPLY_MORE on all but the last."""
    chunks = [entries[i : i + per_part] for i in range(0, len(entries), max(per_part, 1))] or [[]]
    return [
        MultipartReply(
            xid=xid,
            multipart_type=multipart_type,
            flags=OFPMPF_REPLY_MORE if index < len(chunks) - 1 else 0,
            body=chunk or b"",  # pyof cannot pack an empty list body
        )
        for index, chunk in enumerate(chunks)
    ]


@dataclass
class Received:
    """One message from the controller: its header fields, the parsed message and raw bytes."""

    version: int
    message_type: int
    xid: int
    raw: bytes
    message: Any  # pyof message, None if it could not be parsed


class FakeSwitch:
    """One scripted switch connection; use as a context manager or call ``close()``."""

    def __init__(
        self,
        host: str,
        port: int,
        dpid: int = 1,
        *,
        ports: Iterable[int] = (1, 2),
        hello: bytes | None = None,
        flows: list[Any] | None = None,
        parts_per_reply: int = 100,
        answer_echo: bool = True,
        auto_reply: bool = True,
        on_message: Callable[[Received], None] | None = None,
    ) -> None:
        self.address = (host, port)
        self.dpid = dpid
        self.ports = [make_port(number) for number in ports]
        self.hello = hello if hello is not None else hello_bytes(bitmap=[OFP_VERSION_13])
        self.flows: list[Any] = list(flows or [])
        self.port_stats: list[Any] = []
        self.parts_per_reply = parts_per_reply
        self.answer_echo = answer_echo
        self.auto_reply = auto_reply
        self.on_message = on_message
        self.received: list[Received] = []
        self.errors: list[Exception] = []  # failures of our automatic replies
        self._condition = threading.Condition()
        self._socket: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._send_lock = threading.Lock()
        self._closed = threading.Event()
        self.handshake_done = threading.Event()

    # --- lifecycle -----------------------------------------------------------

    def connect(self, timeout: float = 5.0, send_hello: bool = True) -> FakeSwitch:
        """Open the TCP connection, start the reader and (by default) send our HELLO."""
        self._socket = socket.create_connection(self.address, timeout=timeout)
        self._socket.settimeout(None)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = threading.Thread(
            target=self._read_loop, name=f"fake-switch-{self.dpid:x}", daemon=True
        )
        self._reader.start()
        if send_hello:
            self.send(self.hello)
        return self

    def handshake(self, timeout: float = 10.0) -> FakeSwitch:
        """Connect and wait until the controller asked for our ports and description."""
        if self._socket is None:
            self.connect(timeout)
        if not self.handshake_done.wait(timeout):
            raise TimeoutError(f"switch {self.dpid:#x}: handshake not completed in {timeout} s")
        return self

    def close(self) -> None:
        """Close our side of the connection (the controller sees a disconnect)."""
        sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._reader is not None:
            self._reader.join(5)

    def __enter__(self) -> FakeSwitch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def dpid_str(self) -> str:
        return dpid_to_str(self.dpid)

    @property
    def closed_by_peer(self) -> bool:
        return self._closed.is_set()

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """Wait until the connection is closed (by the controller or by us)."""
        return self._closed.wait(timeout)

    def go_silent(self) -> None:
        """Stop answering anything, echo requests included (a hung switch)."""
        self.answer_echo = False
        self.auto_reply = False

    # --- sending -------------------------------------------------------------

    def send(self, message: Any) -> None:
        """Send a pyof message or raw bytes."""
        data = message if isinstance(message, bytes | bytearray) else message.pack()
        sock = self._socket
        if sock is None:
            raise ConnectionError("fake switch is not connected")
        with self._send_lock:
            sock.sendall(data)

    def send_in_pieces(self, message: Any, cut_at: Iterable[int], pause: float = 0.2) -> None:
        """Send one message in pieces cut at the given offsets, pausing between them.

        Holds the send lock throughout, so no automatic reply (echo, multipart)
        lands between the pieces: the controller sees one truncated message
        completed by later chunks, as from a slow switch.
        """
        data = message if isinstance(message, bytes | bytearray) else message.pack()
        offsets = [0, *sorted(cut_at), len(data)]
        sock = self._socket
        if sock is None:
            raise ConnectionError("fake switch is not connected")
        with self._send_lock:
            for index, (start, end) in enumerate(itertools.pairwise(offsets)):
                if index:
                    time.sleep(pause)
                sock.sendall(data[start:end])

    def send_multipart(
        self, xid: int, multipart_type: int, entries: list[Any], per_part: int | None = None
    ) -> int:
        """Send a multipart reply split across REPLY_MORE parts; return how many parts."""
        parts = multipart_parts(xid, multipart_type, entries, per_part or self.parts_per_reply)
        self.send(b"".join(part.pack() for part in parts))
        return len(parts)

    def send_echo_request(self, xid: int, data: bytes = b"fake") -> None:
        self.send(EchoRequest(xid=xid, data=data))

    # --- waiting -------------------------------------------------------------

    def mark(self) -> int:
        """Index to pass as ``since`` so only later messages are considered."""
        with self._condition:
            return len(self.received)

    def wait_for(
        self,
        message_type: int,
        *,
        timeout: float = 5.0,
        since: int = 0,
        predicate: Callable[[Received], bool] | None = None,
    ) -> Received:
        """Return the first message of ``message_type`` (received at index >= ``since``)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                for item in self.received[since:]:
                    if item.message_type == message_type and (predicate is None or predicate(item)):
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [Type(r.message_type).name for r in self.received[since:][-10:]]
                    raise TimeoutError(
                        f"no {Type(message_type).name} within {timeout} s; last seen: {seen}"
                    )
                self._condition.wait(remaining)

    def of_type(self, message_type: int) -> list[Received]:
        with self._condition:
            return [item for item in self.received if item.message_type == message_type]

    # --- reader thread ---------------------------------------------------------

    def _read_loop(self) -> None:
        buffer = b""
        sock = self._socket
        try:
            while sock is not None:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                while len(buffer) >= 8:
                    length = int.from_bytes(buffer[2:4], "big")
                    if length < 8 or len(buffer) < length:
                        break
                    raw, buffer = buffer[:length], buffer[length:]
                    self._handle(raw)
        except OSError:
            pass
        finally:
            self._closed.set()
            with self._condition:
                self._condition.notify_all()

    def _handle(self, raw: bytes) -> None:
        try:
            message = unpack_message(raw) if raw[0] == OFP_VERSION_13 else None
        except Exception:  # the test decides whether an unparsable message matters
            message = None
        item = Received(raw[0], raw[1], int.from_bytes(raw[4:8], "big"), raw, message)
        with self._condition:
            self.received.append(item)
            self._condition.notify_all()
        if self.on_message is not None:
            self.on_message(item)
        try:
            self._auto_reply(item)
        except OSError:
            pass  # the controller closed the connection meanwhile
        except Exception as error:  # keep reading: the test inspects ``errors``
            self.errors.append(error)

    def _auto_reply(self, item: Received) -> None:
        message = item.message
        if message is None:
            return
        if item.message_type == Type.OFPT_ECHO_REQUEST:
            if self.answer_echo:
                self.send(EchoReply(xid=item.xid, data=message.data.value))
            return
        if not self.auto_reply:
            return
        if item.message_type == Type.OFPT_FEATURES_REQUEST:
            self.send(
                FeaturesReply(
                    xid=item.xid,
                    datapath_id=self.dpid_str,
                    n_buffers=0,
                    n_tables=254,
                    auxiliary_id=0,
                    capabilities=0x4F,
                    reserved=0,
                )
            )
        elif item.message_type == Type.OFPT_MULTIPART_REQUEST:
            self._answer_multipart(item.xid, int(message.multipart_type))

    def _answer_multipart(self, xid: int, multipart_type: int) -> None:
        if multipart_type == MultipartType.OFPMP_PORT_DESC:
            self.send_multipart(xid, multipart_type, self.ports)
        elif multipart_type == MultipartType.OFPMP_DESC:
            desc = Desc(
                mfr_desc="xmpp_ofc",
                hw_desc="fake switch",
                sw_desc="fake_switch.py",
                serial_num=f"{self.dpid:x}",
                dp_desc=f"fake switch {self.dpid_str}",
            )
            self.send(MultipartReply(xid=xid, multipart_type=multipart_type, flags=0, body=desc))
            self.handshake_done.set()
        elif multipart_type == MultipartType.OFPMP_FLOW:
            self.send_multipart(xid, multipart_type, self.flows)
        elif multipart_type == MultipartType.OFPMP_PORT_STATS:
            self.send_multipart(xid, multipart_type, self.port_stats)
