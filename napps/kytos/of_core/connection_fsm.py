"""The controller side of one OpenFlow 1.3 connection, without Kytos.

:class:`SwitchSession` is a state machine fed with what the switch sent (the
raw hello, then parsed messages: pyof ones, or ``inbound.FlowStatsReplyMessage``
for flow-stats replies) and the current time; every call
returns an :class:`Output` saying what to send, which messages to publish,
and whether the handshake finished or the connection must be closed.  The
NApp shell (``main.py``) turns that into Kytos events; tests drive it directly.

Phases: AWAITING_HELLO -> (hello negotiates 1.3: send HELLO + FEATURES_REQUEST)
AWAITING_FEATURES -> (FEATURES_REPLY: send PORT_DESC, DESC, SET_CONFIG requests)
ESTABLISHED; a failed hello goes to HELLO_FAILED (send OFPT_ERROR, then close).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Any

from pyof.v0x04.asynchronous.error_msg import ErrorMsg, ErrorType, HelloFailedCode
from pyof.v0x04.common.header import Type
from pyof.v0x04.controller2switch.common import MultipartType
from pyof.v0x04.controller2switch.features_request import FeaturesRequest
from pyof.v0x04.controller2switch.multipart_request import (
    FlowStatsRequest,
    MultipartRequest,
    PortStatsRequest,
)
from pyof.v0x04.controller2switch.set_config import SetConfig
from pyof.v0x04.symmetric.echo_reply import EchoReply
from pyof.v0x04.symmetric.echo_request import EchoRequest
from pyof.v0x04.symmetric.hello import Hello

from napps.kytos.of_core.hello import negotiate_version
from napps.kytos.of_core.inbound import FlowStatsReplyMessage
from napps.kytos.of_core.multipart import CompletedReply, MultipartAssembler

LOG = logging.getLogger(__name__)

OFP_VERSION_13 = 0x04
OFPCML_NO_BUFFER = 0xFFFF
ECHO_DATA = b"kytosd_13"  # what upstream of_core puts in its echo requests


class Phase(enum.Enum):
    AWAITING_HELLO = "awaiting_hello"
    AWAITING_FEATURES = "awaiting_features"
    ESTABLISHED = "established"
    HELLO_FAILED = "hello_failed"
    CLOSED = "closed"


class Poll(enum.Enum):
    """Which of our own periodic requests a completed multipart reply answers."""

    FLOWS = "flows"
    PORTS = "ports"


@dataclass(frozen=True, slots=True)
class Timing:
    """Keepalive and polling periods, in seconds (see settings.py)."""

    echo_interval: float = 5.0
    dead_after: float = 15.0
    stats_interval: float = 60.0
    handshake_timeout: float = 15.0
    send_set_config: bool = True
    max_pending: int = 256
    echo_timeout: float = 10.0


@dataclass(slots=True)
class Output:
    """What the shell must do after one input, in this order.

    1. ``features``: the handshake just completed with this FEATURES_REPLY
       (create the Switch before anything else);
    2. ``send``: messages to the switch;
    3. ``deliver``: messages to publish as ``...messages.in.ofpt_*`` events;
    4. ``completed``: whole multipart replies, with the poll they answer;
    5. ``close``: close the connection with this reason.
    ``hello_failed`` means the last ``send`` is an OFPT_ERROR after which the
    connection must be closed (only once it has been written).
    ``echo_answered`` holds the xids of our echo requests this input answered
    (the shell's identity check waits for one of them).
    """

    send: list[Any] = field(default_factory=list)
    deliver: list[Any] = field(default_factory=list)
    completed: list[tuple[CompletedReply, Poll | None]] = field(default_factory=list)
    features: Any = None
    close: str | None = None
    hello_failed: bool = False
    echo_answered: list[int] = field(default_factory=list)


def body_entries(body: Any) -> list[Any]:
    """A multipart body as a list: array bodies as they are, single ones wrapped."""
    return list(body) if isinstance(body, list) else [body]


class SwitchSession:
    """Handshake, keepalive, liveness, polling and multipart state of one connection."""

    def __init__(self, now: float, timing: Timing | None = None, **assembler_limits: int):
        self.timing = timing or Timing()
        self.phase = Phase.AWAITING_HELLO
        self.started_at = now
        self.last_received = now  # the last *complete* message (bytes alone do not count)
        self.last_echo_sent = now
        self.echoes_unanswered: dict[int, float] = {}  # xid -> when we sent it
        self.next_poll_at = now
        self.flow_poll_xid: int | None = None
        self.port_poll_xid: int | None = None
        self.multipart = MultipartAssembler(**assembler_limits)
        self.pending: list[Any] = []
        self.dropped_pending = 0
        self._next_xid = 1

    @property
    def established(self) -> bool:
        return self.phase is Phase.ESTABLISHED

    def new_xid(self) -> int:
        """An xid for a request of ours (per connection, counting up)."""
        xid = self._next_xid
        self._next_xid = xid + 1 if xid < 0xFFFFFFFF else 1
        return xid

    # --- inputs -------------------------------------------------------------

    def on_data(self, now: float) -> None:
        """Bytes arrived.  Not a sign of life on its own: a peer trickling one byte a
        second completes no message, so only :meth:`on_message` resets the silence timer."""

    def on_hello(self, hello: bytes, now: float) -> Output:
        """The switch's first message (raw bytes: it may be of any version)."""
        out = Output()
        if self.phase is not Phase.AWAITING_HELLO:
            return out
        self.last_received = now
        version = negotiate_version(hello, {OFP_VERSION_13})
        if version is None:
            self.phase = Phase.HELLO_FAILED
            out.hello_failed = True
            out.send.append(
                ErrorMsg(
                    xid=int.from_bytes(hello[4:8], "big"),
                    error_type=ErrorType.OFPET_HELLO_FAILED,
                    code=HelloFailedCode.OFPHFC_INCOMPATIBLE,
                    data=b"this controller speaks OpenFlow 1.3 (0x04) only",
                )
            )
            return out
        self.phase = Phase.AWAITING_FEATURES
        self.started_at = now
        out.send += [Hello(xid=self.new_xid()), FeaturesRequest(xid=self.new_xid())]
        return out

    def on_message(self, message: Any, message_type: int, now: float) -> Output:
        """A parsed message after the hello; ``message_type`` is its header's type."""
        out = Output()
        self.last_received = now
        if message_type == Type.OFPT_ECHO_REQUEST:
            out.send.append(EchoReply(xid=message.header.xid.value, data=message.data.value))
        elif message_type == Type.OFPT_ECHO_REPLY:
            xid = message.header.xid.value
            if self.echoes_unanswered.pop(xid, None) is not None:
                out.echo_answered.append(xid)
        if self.phase is Phase.AWAITING_FEATURES:
            if message_type == Type.OFPT_FEATURES_REPLY:
                self._establish(message, now, out)
            elif len(self.pending) < self.timing.max_pending:
                self.pending.append(message)
            else:
                self.dropped_pending += 1
            return out
        if self.phase is not Phase.ESTABLISHED:
            return out
        out.deliver.append(message)
        if message_type == Type.OFPT_MULTIPART_REPLY:
            self._collect_part(message, out)
        return out

    def on_tick(self, now: float, poll_allowed: bool = True) -> Output:
        """Timer: handshake timeout, liveness, echo requests, periodic polls."""
        out = Output()
        if self.phase in (Phase.AWAITING_HELLO, Phase.AWAITING_FEATURES, Phase.HELLO_FAILED):
            if now - self.started_at >= self.timing.handshake_timeout:
                out.close = f"handshake not completed within {self.timing.handshake_timeout:g} s"
                self.phase = Phase.CLOSED
            return out
        if self.phase is not Phase.ESTABLISHED:
            return out
        silent_for = now - self.last_received
        if silent_for >= self.timing.dead_after:
            out.close = (
                f"switch silent for {silent_for:.1f} s: no complete message "
                f"(dead after {self.timing.dead_after:g} s)"
            )
            self.phase = Phase.CLOSED
            return out
        oldest_echo = min(self.echoes_unanswered.values(), default=None)
        if oldest_echo is not None and now - oldest_echo >= self.timing.echo_timeout:
            out.close = f"no echo reply within {self.timing.echo_timeout:g} s"
            self.phase = Phase.CLOSED
            return out
        if now - self.last_echo_sent >= self.timing.echo_interval:
            self.last_echo_sent = now
            out.send.append(self.echo_request(now))
        if now >= self.next_poll_at:
            self.next_poll_at = now + self.timing.stats_interval
            if poll_allowed:
                out.send += self._poll_requests()
        return out

    def echo_request(self, now: float) -> EchoRequest:
        """An ECHO_REQUEST whose reply we wait for (unanswered past ``echo_timeout``: closed)."""
        xid = self.new_xid()
        self.echoes_unanswered[xid] = now
        return EchoRequest(xid=xid, data=ECHO_DATA)

    def on_closed(self) -> None:
        """The connection is gone: drop partial state."""
        self.phase = Phase.CLOSED
        self.multipart.clear()
        self.pending.clear()
        self.echoes_unanswered.clear()

    # --- internals ------------------------------------------------------------

    def _establish(self, features: Any, now: float, out: Output) -> None:
        self.phase = Phase.ESTABLISHED
        self.last_echo_sent = now
        self.next_poll_at = now  # first poll at the next tick, as upstream does at once
        out.features = features
        out.send.append(
            MultipartRequest(xid=self.new_xid(), multipart_type=MultipartType.OFPMP_PORT_DESC)
        )
        out.send.append(
            MultipartRequest(xid=self.new_xid(), multipart_type=MultipartType.OFPMP_DESC)
        )
        if self.timing.send_set_config:
            out.send.append(SetConfig(xid=self.new_xid(), miss_send_len=OFPCML_NO_BUFFER))
        out.deliver.append(features)
        pending, self.pending = self.pending, []
        for message in pending:
            out.deliver.append(message)
            if message.header.message_type == Type.OFPT_MULTIPART_REPLY:
                self._collect_part(message, out)
        if self.dropped_pending:
            LOG.warning(
                "%d messages received before the features reply were dropped",
                self.dropped_pending,
            )

    def _poll_requests(self) -> list[MultipartRequest]:
        self.flow_poll_xid = self.new_xid()
        self.port_poll_xid = self.new_xid()
        return [
            MultipartRequest(
                xid=self.flow_poll_xid,
                multipart_type=MultipartType.OFPMP_FLOW,
                body=FlowStatsRequest(),
            ),
            MultipartRequest(
                xid=self.port_poll_xid,
                multipart_type=MultipartType.OFPMP_PORT_STATS,
                body=PortStatsRequest(),
            ),
        ]

    def _collect_part(self, reply: Any, out: Output) -> None:
        xid = reply.header.xid.value
        multipart_type = int(reply.multipart_type)
        entries = (
            reply.records if isinstance(reply, FlowStatsReplyMessage) else body_entries(reply.body)
        )
        completed = self.multipart.add(xid, multipart_type, reply.flags.value, entries)
        if completed is None:
            return
        poll = None
        if xid == self.flow_poll_xid and multipart_type == MultipartType.OFPMP_FLOW:
            poll, self.flow_poll_xid = Poll.FLOWS, None
        elif xid == self.port_poll_xid and multipart_type == MultipartType.OFPMP_PORT_STATS:
            poll, self.port_poll_xid = Poll.PORTS, None
        out.completed.append((completed, poll))
