"""OFPT_FLOW_REMOVED decoded with ``struct``, without pyof (issue 9).

Why: every reactive flow ends with a FLOW_REMOVED (idle or hard timeout, with
``send_flow_rem``), so they arrive at the rate flows are installed; pyof
unpacks each through its generic attribute walk.  This reads the same bytes
with one ``struct`` call plus the shared OXM decoder (the flow-stats codec's),
giving pyof ``FlowRemoved``'s fields as plain values.

Malformed input raises :class:`FlowRemovedDecodeError` (a ``ValueError``); callers
log it and drop that message, never the connection.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from xmpp_ofc.openflow.flow_stats_codec import FlowStatsDecodeError, _decode_match

OFPT_FLOW_REMOVED = 11

#: ofp_header + ofp_flow_removed up to the match, plus ofp_match's type and length.
_FLOW_REMOVED = struct.Struct("!BBHIQHBBIIHHQQHH")
_MATCH_START = 48
_MATCH_HEADER = 4


class FlowRemovedDecodeError(ValueError):
    """A FLOW_REMOVED that does not follow the OpenFlow 1.3 layout."""


class FlowRemovedRecord(NamedTuple):
    """One ``ofp_flow_removed``; field names are pyof ``FlowRemoved``'s.

    ``match`` is the canonical match dict (read-only: it may be shared).
    """

    xid: int
    cookie: int
    priority: int
    reason: int
    table_id: int
    duration_sec: int
    duration_nsec: int
    idle_timeout: int
    hard_timeout: int
    packet_count: int
    byte_count: int
    match: dict[str, Any]


def is_flow_removed(frame: bytes) -> bool:
    """True for a whole OpenFlow 1.3 message of type OFPT_FLOW_REMOVED."""
    return len(frame) >= 8 and frame[0] == 4 and frame[1] == OFPT_FLOW_REMOVED


def decode_flow_removed(frame: bytes) -> FlowRemovedRecord:
    """Decode one framed FLOW_REMOVED (header included)."""
    if not is_flow_removed(frame):
        raise FlowRemovedDecodeError("not an OpenFlow 1.3 FLOW_REMOVED")
    if len(frame) < _FLOW_REMOVED.size:
        raise FlowRemovedDecodeError(
            f"{len(frame)} bytes, a FLOW_REMOVED needs at least {_FLOW_REMOVED.size}"
        )
    (
        _version,
        _type,
        length,
        xid,
        cookie,
        priority,
        reason,
        table_id,
        duration_sec,
        duration_nsec,
        idle_timeout,
        hard_timeout,
        packet_count,
        byte_count,
        _match_type,
        match_length,
    ) = _FLOW_REMOVED.unpack_from(frame)
    if length != len(frame):
        raise FlowRemovedDecodeError(
            f"header length {length} differs from the {len(frame)} bytes given"
        )
    match_end = _MATCH_START + match_length
    if match_length < _MATCH_HEADER or match_end > length:
        raise FlowRemovedDecodeError(
            f"match at byte {_MATCH_START}: length {match_length} does not fit "
            f"the message of {length} bytes"
        )
    try:
        match = _decode_match(frame, _MATCH_START + _MATCH_HEADER, match_end)
    except FlowStatsDecodeError as error:
        raise FlowRemovedDecodeError(str(error)) from None
    return FlowRemovedRecord(
        xid,
        cookie,
        priority,
        reason,
        table_id,
        duration_sec,
        duration_nsec,
        idle_timeout,
        hard_timeout,
        packet_count,
        byte_count,
        match,
    )
