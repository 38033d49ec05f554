"""Framed bytes from a switch -> the message object of_core handles and publishes.

Every message is unpacked by pyof (upstream's contract: ``messages.in.*``
events carry pyof messages) except PACKET_IN and FLOW_REMOVED (struct, issue 9:
:class:`PacketInMessage`, :class:`FlowRemovedMessage`, pyof's object built
lazily for listeners that read its fields) and OFPMP_FLOW multipart replies: pyof costs
~0.6 ms per flow entry, so a 50k-flow table would block the event loop for
half a minute per poll.  Those are decoded by the shared struct codec
(:mod:`xmpp_ofc.openflow.flow_stats_codec`, ~3.5 µs per entry) and published as a
:class:`FlowStatsReplyMessage`, which behaves like pyof's MultipartReply for
whoever reads it but only runs pyof if someone touches its body.
"""

from __future__ import annotations

from typing import Any

from pyof.foundation.basic_types import UBInt16, UBInt32
from pyof.v0x04.common.header import Header, Type
from pyof.v0x04.common.utils import unpack_message
from pyof.v0x04.controller2switch.common import MultipartType

from xmpp_ofc.openflow.flow_removed_codec import (
    FlowRemovedRecord,
    decode_flow_removed,
    is_flow_removed,
)
from xmpp_ofc.openflow.flow_stats_codec import (
    FlowStatsRecord,
    decode_flow_stats_reply,
    is_flow_stats_reply,
)
from xmpp_ofc.openflow.packet_in_codec import PacketInRecord, decode_packet_in, is_packet_in

#: Types whose body may be empty.  pyof unpacks a bare header of any other
#: type without complaint and leaves every body field None, which then failed
#: in each listener (a PORT_STATUS cut to its header, found by the OpenFlow fuzz test).
HEADER_ONLY_TYPES = frozenset(
    {
        Type.OFPT_HELLO,
        Type.OFPT_ECHO_REQUEST,
        Type.OFPT_ECHO_REPLY,
        Type.OFPT_FEATURES_REQUEST,
        Type.OFPT_GET_CONFIG_REQUEST,
        Type.OFPT_BARRIER_REQUEST,
        Type.OFPT_BARRIER_REPLY,
        Type.OFPT_GET_ASYNC_REQUEST,
    }
)
HEADER_BYTES = 8


class EmptyBodyError(ValueError):
    """A message of a type that needs a body came as a bare header."""


def parse_message(frame: bytes) -> Any:
    """The message for one whole OpenFlow 1.3 frame (after the hello).

    Raises whatever pyof raises on a bad body, ``FlowStatsDecodeError``
    for a malformed flow-stats reply, or :class:`EmptyBodyError`; the caller
    logs and skips the message.
    """
    if len(frame) <= HEADER_BYTES and frame[1] not in HEADER_ONLY_TYPES:
        raise EmptyBodyError(f"message type {frame[1]} needs a body, got a bare header")
    if is_packet_in(frame):
        return PacketInMessage(frame)
    if is_flow_removed(frame):
        return FlowRemovedMessage(frame)
    if is_flow_stats_reply(frame):
        return FlowStatsReplyMessage(frame)
    return unpack_message(frame)


class FlowStatsReplyMessage:
    """A MULTIPART_REPLY of type OFPMP_FLOW, decoded without pyof.

    ``header`` (a pyof Header), ``multipart_type`` and ``flags`` are ready, as
    on pyof's MultipartReply; ``records`` are the entries as
    :class:`FlowStatsRecord`.  Any other attribute (``body``, ``pack()``...)
    unpacks the frame with pyof once, on first use, and is read from that:
    listeners of ``messages.in.ofpt_multipart_reply`` written for upstream keep
    working, and pay pyof's price only if they read the body.
    """

    __slots__ = ("_frame", "_pyof", "flags", "header", "multipart_type", "records")

    def __init__(self, frame: bytes) -> None:
        part = decode_flow_stats_reply(frame)
        self._frame = frame
        self._pyof: Any = None
        # field types as unpack_message leaves them: the type an enum, the rest pyof ints
        self.header = Header(
            message_type=Type.OFPT_MULTIPART_REPLY,
            length=UBInt16(len(frame)),
            xid=UBInt32(part.xid),
        )
        self.multipart_type = MultipartType.OFPMP_FLOW
        self.flags = UBInt16(part.flags)
        self.records: list[FlowStatsRecord] = part.entries

    def pyof(self) -> Any:
        """pyof's MultipartReply for this frame (unpacked on first call)."""
        if self._pyof is None:
            self._pyof = unpack_message(self._frame)
        return self._pyof

    def __getattr__(self, name: str) -> Any:
        """Only called for attributes not set above: delegate to pyof's message."""
        if name.startswith("_"):  # our own slots before __init__ (copy, pickle)
            raise AttributeError(name)
        return getattr(self.pyof(), name)

    def __repr__(self) -> str:
        return (
            f"FlowStatsReplyMessage(xid={self.header.xid.value}, "
            f"flags={self.flags.value}, entries={len(self.records)})"
        )


class _LazyPyofMessage:
    """A message decoded with ``struct``: ``header`` is a pyof Header, ``record`` the plain
    fields, and any other attribute unpacks the frame with pyof once, on first use."""

    __slots__ = ("_frame", "_pyof", "header", "record")

    def __init__(self, frame: bytes, message_type: Type, record: Any) -> None:
        self._frame = frame
        self._pyof: Any = None
        self.header = Header(
            message_type=message_type, length=UBInt16(len(frame)), xid=UBInt32(record.xid)
        )
        self.record = record

    def pyof(self) -> Any:
        """pyof's message for this frame (unpacked on first call)."""
        if self._pyof is None:
            self._pyof = unpack_message(self._frame)
        return self._pyof

    def __getattr__(self, name: str) -> Any:
        """Only called for attributes not set above: delegate to pyof's message."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.pyof(), name)


class PacketInMessage(_LazyPyofMessage):
    """A PACKET_IN decoded without pyof (issue 9: the reactive hot path).

    ``header`` is a pyof Header as on pyof's PacketIn; ``record`` holds every
    field as plain values (:class:`PacketInRecord`), which the dispatcher and
    of_core read.  Any other attribute (``data``, ``match``, ``in_port``,
    ``pack()``...) unpacks the frame with pyof once, on first use: upstream
    listeners of ``messages.in.ofpt_packet_in`` get pyof objects, lazily.
    """

    __slots__ = ()
    record: PacketInRecord

    def __init__(self, frame: bytes) -> None:
        super().__init__(frame, Type.OFPT_PACKET_IN, decode_packet_in(frame))

    def __repr__(self) -> str:
        record = self.record
        return (
            f"PacketInMessage(xid={record.xid}, in_port={record.in_port}, "
            f"cookie={record.cookie:#x}, bytes={len(record.data)})"
        )


class FlowRemovedMessage(_LazyPyofMessage):
    """A FLOW_REMOVED decoded without pyof (issue 9: one per expiring reactive flow).

    Like :class:`PacketInMessage`: ``header`` is a pyof Header, ``record`` the
    plain fields (:class:`FlowRemovedRecord`) the dispatcher and flow_manager
    read; any other attribute unpacks the frame with pyof once, on first use.
    """

    __slots__ = ()
    record: FlowRemovedRecord

    def __init__(self, frame: bytes) -> None:
        super().__init__(frame, Type.OFPT_FLOW_REMOVED, decode_flow_removed(frame))

    def __repr__(self) -> str:
        record = self.record
        return (
            f"FlowRemovedMessage(xid={record.xid}, cookie={record.cookie:#x}, "
            f"reason={record.reason}, table_id={record.table_id})"
        )
