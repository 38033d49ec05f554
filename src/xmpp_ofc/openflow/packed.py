"""An outgoing OpenFlow message already in wire form, pyof only on demand.

Why: the msg_out buffer carries "something with ``pack()``" to Kytos' sender,
and listeners of ``*.messages.out.*`` events may read a pyof message's fields.
:class:`PackedMessage` holds the bytes :mod:`xmpp_ofc.openflow.fast_codec`
built; ``pack()`` returns them as they are, ``header`` and ``xid`` are ready,
and any other attribute (``match``, ``instructions``, ``actions``...) unpacks the
bytes with pyof once, on first use, and is read from that message.
"""

from __future__ import annotations

from typing import Any

from pyof.foundation.basic_types import UBInt16, UBInt32
from pyof.v0x04.common.header import Header, Type
from pyof.v0x04.common.utils import unpack_message


class PackedMessage:
    """Wire bytes of one (or, for a batch, several) OpenFlow 1.3 messages.

    ``header`` is the first message's; a batch (:meth:`join`) packs to every
    message's bytes in order, so Kytos writes them in one send.
    """

    __slots__ = ("_header", "_pyof", "count", "raw", "xid")

    def __init__(self, raw: bytes, count: int = 1) -> None:
        self.raw = raw
        self.xid = int.from_bytes(raw[4:8], "big")
        self.count = count
        self._header: Header | None = None
        self._pyof: Any = None

    @classmethod
    def join(cls, messages: list[PackedMessage]) -> PackedMessage:
        """One message object whose ``pack()`` is every message's bytes, in order."""
        if len(messages) == 1:
            return messages[0]
        return cls(b"".join(m.raw for m in messages), sum(m.count for m in messages))

    def pack(self, value: Any = None) -> bytes:  # noqa: ARG002 - pyof's signature
        """The wire bytes (pyof's ``GenericMessage.pack`` contract)."""
        return self.raw

    @property
    def header(self) -> Header:
        """pyof's Header of the (first) message, with the type as the ``Type`` enum."""
        if self._header is None:
            raw = self.raw
            self._header = Header(
                message_type=Type(raw[1]),
                length=UBInt16(int.from_bytes(raw[2:4], "big")),
                xid=UBInt32(self.xid),
            )
        return self._header

    def pyof(self) -> Any:
        """pyof's message for the (first) message's bytes (unpacked on first call)."""
        if self._pyof is None:
            length = int.from_bytes(self.raw[2:4], "big")
            self._pyof = unpack_message(self.raw[:length])
        return self._pyof

    def __getattr__(self, name: str) -> Any:
        """Only called for attributes not set above: delegate to pyof's message."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.pyof(), name)

    def __repr__(self) -> str:
        kind = Type(self.raw[1]).name.lower()
        extra = f", messages={self.count}" if self.count > 1 else ""
        return f"PackedMessage({kind}, xid={self.xid}, bytes={len(self.raw)}{extra})"
