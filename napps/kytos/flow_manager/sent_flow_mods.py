"""Recently sent FlowMods by xid, so an OFPT_ERROR can name the flow it refused."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SentFlowMod:
    """What we sent with one xid."""

    dpid: str
    command: str
    flow: dict[str, Any]


class RecentFlowMods:
    """A bounded xid -> SentFlowMod map; the oldest entries are forgotten first.

    Errors arrive within a round trip, so a few thousand entries are plenty;
    the bound keeps a controller that installs flows for days from growing.
    """

    def __init__(self, max_size: int):
        self._max_size = max_size
        self._items: OrderedDict[int, SentFlowMod] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, xid: int, sent: SentFlowMod) -> None:
        with self._lock:
            self._items[xid] = sent
            self._items.move_to_end(xid)
            while len(self._items) > self._max_size:
                self._items.popitem(last=False)

    def pop(self, xid: int) -> SentFlowMod | None:
        """Return and forget the FlowMod sent with ``xid`` (None if unknown)."""
        with self._lock:
            return self._items.pop(xid, None)

    def __len__(self) -> int:
        return len(self._items)
