"""Reassembly of multipart replies split across REPLY_MORE parts.

A switch answers one MULTIPART_REQUEST with one or more MULTIPART_REPLY
messages that share the request's xid; every part but the last has the
OFPMPF_REPLY_MORE flag.  We assemble per xid whoever sent the request (of_core's
own polls, flow_manager, the rate limiter's cookie-filtered polls), and keep
memory bounded: a limited number of replies in flight per connection, a limited
number of entries per reply.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

OFPMPF_REPLY_MORE = 1

LOG = logging.getLogger(__name__)


@dataclass(slots=True)
class CompletedReply:
    """A whole multipart reply: every part's body entries, in arrival order."""

    xid: int
    multipart_type: int
    body: list[Any]
    parts: int


@dataclass(slots=True)
class _Partial:
    multipart_type: int
    body: list[Any] = field(default_factory=list)
    parts: int = 0
    overflowed: bool = False


class MultipartAssembler:
    """Collect the parts of each multipart reply of one connection by xid.

    ``add`` returns the :class:`CompletedReply` when the last part arrives and
    ``None`` before.  A reply that grows beyond ``max_entries`` is discarded
    (its remaining parts are swallowed until its last one); when more than
    ``max_in_flight`` replies are open the oldest is discarded.  Discards are
    logged and counted in ``discarded``.
    """

    def __init__(self, max_in_flight: int = 64, max_entries: int = 1_000_000) -> None:
        self.max_in_flight = max_in_flight
        self.max_entries = max_entries
        self.discarded = 0
        self._open: OrderedDict[int, _Partial] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    def add(
        self, xid: int, multipart_type: int, flags: int, body: list[Any]
    ) -> CompletedReply | None:
        """Add one part; return the whole reply if this part was its last."""
        partial = self._open.get(xid)
        if partial is None or partial.multipart_type != multipart_type:
            if partial is not None:
                self._discard(xid, "a part of another multipart type reused its xid")
            partial = self._start(xid, multipart_type)
        partial.parts += 1
        if not partial.overflowed:
            if len(partial.body) + len(body) > self.max_entries:
                partial.overflowed = True
                partial.body = []
                self.discarded += 1
                LOG.warning(
                    "multipart reply xid %d (type %d) exceeds %d entries: discarded",
                    xid,
                    multipart_type,
                    self.max_entries,
                )
            else:
                partial.body.extend(body)
        if flags & OFPMPF_REPLY_MORE:
            return None
        del self._open[xid]
        if partial.overflowed:
            return None
        return CompletedReply(xid, multipart_type, partial.body, partial.parts)

    def clear(self) -> int:
        """Forget every open reply (the connection is gone); return how many."""
        count = len(self._open)
        self._open.clear()
        return count

    def _start(self, xid: int, multipart_type: int) -> _Partial:
        while len(self._open) >= self.max_in_flight:
            oldest = next(iter(self._open))
            self._discard(oldest, f"more than {self.max_in_flight} replies in flight")
        partial = _Partial(multipart_type)
        self._open[xid] = partial
        return partial

    def _discard(self, xid: int, reason: str) -> None:
        self._open.pop(xid, None)
        self.discarded += 1
        LOG.warning("multipart reply xid %d discarded: %s", xid, reason)
