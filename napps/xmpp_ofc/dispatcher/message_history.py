"""OpenFlow messages per interval, in and out, for the dashboard's chart.

The counters only ever hold totals; a chart of "messages per 10 s" needs the
difference between totals taken an interval apart.  The dispatcher's timer calls
:meth:`MessageHistory.sample` every interval with the current totals, and the
ring keeps the last ``size`` differences (bounded memory, no matter how long the
controller runs).  Time is passed in, so tests never sleep.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    """Messages seen during the interval that ended at ``at`` (Unix seconds)."""

    at: float
    seconds: float
    received: int
    sent: int

    def to_json(self) -> dict[str, float | int]:
        return {"at": self.at, "seconds": self.seconds, "in": self.received, "out": self.sent}


class MessageHistory:
    """A ring of per-interval message counts; safe to use from any thread."""

    def __init__(self, interval: float = 10.0, size: int = 90) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0, got {interval!r}")
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size!r}")
        self.interval = interval
        self.size = size
        self._points: deque[Point] = deque(maxlen=size)
        self._last: tuple[float, int, int] | None = None
        self._lock = threading.Lock()

    def sample(self, at: float, total_in: int, total_out: int) -> Point | None:
        """Record the totals at ``at``; returns the new point (None for the first sample).

        A total that went down (a switch's counters were forgotten) counts as 0
        for that interval rather than as a negative rate.
        """
        with self._lock:
            last, self._last = self._last, (at, total_in, total_out)
            if last is None:
                return None
            point = Point(
                at=at,
                seconds=round(at - last[0], 3),
                received=max(0, total_in - last[1]),
                sent=max(0, total_out - last[2]),
            )
            self._points.append(point)
            return point

    def points(self) -> list[Point]:
        """Oldest first."""
        with self._lock:
            return list(self._points)

    def to_json(self) -> dict[str, object]:
        """The REST view: the interval and the points, oldest first."""
        return {
            "interval": self.interval,
            "size": self.size,
            "points": [point.to_json() for point in self.points()],
        }
