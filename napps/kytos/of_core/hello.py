"""OpenFlow version negotiation from a switch's HELLO (OpenFlow 1.3.5, 6.3.1).

Parsed from raw bytes, not with pyof, because the hello may come from any
OpenFlow version and a version-specific parser would reject exactly the
hellos we need to answer with HELLO_FAILED.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

OFPHET_VERSIONBITMAP = 1
_ELEMENT_HEADER = struct.Struct("!HH")


class MalformedHello(ValueError):
    """A HELLO whose elements do not fit in the message."""


def bitmap_versions(hello: bytes) -> set[int] | None:
    """Return the versions in the hello's VERSIONBITMAP element, if it has one.

    Unknown element types are skipped (the spec requires it); elements are
    padded to 8 bytes.
    """
    offset = 8
    end = len(hello)
    versions: set[int] | None = None
    while offset + _ELEMENT_HEADER.size <= end:
        element_type, length = _ELEMENT_HEADER.unpack_from(hello, offset)
        if length < _ELEMENT_HEADER.size or offset + length > end:
            raise MalformedHello(f"hello element of length {length} at offset {offset}")
        if element_type == OFPHET_VERSIONBITMAP:
            versions = set() if versions is None else versions
            words = hello[offset + 4 : offset + length]
            for index in range(len(words) // 4):
                (word,) = struct.unpack_from("!I", words, index * 4)
                versions.update(index * 32 + bit for bit in range(32) if word >> bit & 1)
        offset += (length + 7) // 8 * 8
    return versions


def negotiate_version(hello: bytes, supported: Iterable[int]) -> int | None:
    """Return the version to speak with the sender of ``hello``, or ``None``.

    With a version bitmap: the highest version both sides support.  Without
    one: the lower of the header version and our highest, which must be one
    we support (so a 1.4 switch without a bitmap gets 1.3, a 1.0 switch none).
    """
    ours = set(supported)
    try:
        theirs = bitmap_versions(hello)
    except MalformedHello:
        return None
    if theirs is not None:
        common = ours & theirs
        return max(common) if common else None
    candidate = min(hello[0], max(ours))
    return candidate if candidate in ours else None
