"""Cut a switch's TCP byte stream into OpenFlow messages.

TCP delivers chunks that may hold several messages, end in the middle of one,
or (from a broken or hostile peer) hold garbage.  :class:`MessageFramer`
keeps the unfinished tail of each connection and hands out whole messages
one at a time, so the caller can tell it the negotiated version after the
hello and have every later header checked against it.

Anything that cannot be an OpenFlow message of this connection raises
:class:`StreamError`; the caller closes that connection only.  Once the
header is wrong there is no way to find the next message boundary, so
resynchronising would only turn garbage into bogus messages.
"""

from __future__ import annotations

OFP_HEADER_LEN = 8
OFPT_HELLO = 0


class StreamError(Exception):
    """The stream is not (or no longer) a valid OpenFlow stream."""


class MessageFramer:
    """Per-connection OpenFlow framing with validation of every header.

    Before the hello is accepted only a HELLO of any plausible version is
    valid (``version`` is ``None``); afterwards every message must carry the
    negotiated ``version``.  At most one incomplete message is buffered, and a
    header may announce at most ``max_message_bytes``, so memory per
    connection is bounded whatever the peer sends.
    """

    __slots__ = ("_buffer", "_offset", "max_message_bytes", "version")

    def __init__(self, max_message_bytes: int = 0xFFFF) -> None:
        self._buffer = bytearray()
        self._offset = 0
        self.max_message_bytes = max_message_bytes
        self.version: int | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a message."""
        return len(self._buffer) - self._offset

    def feed(self, data: bytes) -> None:
        """Append a chunk received from the connection."""
        if self._offset:
            del self._buffer[: self._offset]
            self._offset = 0
        self._buffer += data

    def next_message(self) -> bytes | None:
        """Return the next whole message, or ``None`` until more bytes arrive.

        Raises :class:`StreamError` when the next header is invalid.
        """
        start = self._offset
        available = len(self._buffer) - start
        if available < OFP_HEADER_LEN:
            return None
        buffer = self._buffer
        version = buffer[start]
        message_type = buffer[start + 1]
        length = (buffer[start + 2] << 8) | buffer[start + 3]
        self._check_header(version, message_type, length)
        if available < length:
            return None
        self._offset = start + length
        return bytes(buffer[start : start + length])

    def _check_header(self, version: int, message_type: int, length: int) -> None:
        if length < OFP_HEADER_LEN:
            raise StreamError(f"header announces {length} bytes, less than the 8-byte header")
        if length > self.max_message_bytes:
            raise StreamError(
                f"header announces {length} bytes, more than the limit of {self.max_message_bytes}"
            )
        if self.version is None:
            if message_type != OFPT_HELLO or not 0 < version < 0x80:
                raise StreamError(
                    f"expected a HELLO first, got version 0x{version:02x} type {message_type}"
                )
        elif version != self.version:
            raise StreamError(
                f"message of version 0x{version:02x} on a connection that negotiated "
                f"0x{self.version:02x} (type {message_type}, length {length})"
            )
