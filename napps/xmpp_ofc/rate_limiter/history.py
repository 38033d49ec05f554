"""The rate limiter's history: every block, extend, unblock, flag and refused block.

One bounded list in memory (GET ``v1/events``), mirrored to the store so it
survives a restart. Every collaborator that decides something an operator must be
able to read back later records it here, with its reason; flags are also counted
(``flags_total``), blocks and unblocks are counted by their owners
(:mod:`.blocks`, :mod:`.flood_blocks`).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from napps.xmpp_ofc.rate_limiter.records import EventKind, HistoryEvent, LimiterStore

DEFAULT_HISTORY_LIMIT = 1000


class History:
    """Newest-last events, at most ``limit`` (memory and store alike)."""

    def __init__(self, limit: int = DEFAULT_HISTORY_LIMIT, store: LimiterStore | None = None):
        self.limit = limit
        self.store = store
        self._events: deque[HistoryEvent] = deque(maxlen=limit)
        self.flags_total = 0

    def record(self, event: HistoryEvent) -> None:
        """Keep ``event`` (a flag is also counted)."""
        if event.kind is EventKind.FLAG:
            self.flags_total += 1
        self._events.append(event)
        if self.store is not None:
            self.store.append_history(event)

    def load(self) -> None:
        """Take the stored events back (controller start); they are not counted again."""
        if self.store is not None:
            self._events.extend(self.store.load_history(self.limit))

    def events(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` events (all when None), oldest first, as JSON."""
        events = list(self._events)
        if limit is not None:
            events = events[-limit:] if limit > 0 else []
        return [event.to_json() for event in events]
