"""When each switch is polled: every ``poll_interval_s``, or less often within a CPU budget.

One cookie-filtered flow-stats request per switch per poll (never one per client).
A switch whose last reply took ``c`` s to judge is polled every
``max(poll_interval_s, c / budget)`` s, so 50k monitored clients cost at most
``budget`` of a core. A 5 % early margin keeps a timer that fires slightly early
from skipping a whole interval.
"""

from __future__ import annotations

DEFAULT_POLL_CPU_BUDGET = 0.25


class _Schedule:
    __slots__ = ("cost", "last")

    def __init__(self) -> None:
        self.last: float | None = None
        self.cost = 0.0


class PollSchedule:
    """Last poll and judging cost per switch."""

    def __init__(self, cpu_budget: float = DEFAULT_POLL_CPU_BUDGET) -> None:
        #: Share of one core a switch's polls may take.
        self.cpu_budget = cpu_budget
        self._switches: dict[str, _Schedule] = {}

    def _of(self, dpid: str) -> _Schedule:
        found = self._switches.get(dpid)
        if found is None:
            found = self._switches[dpid] = _Schedule()
        return found

    def interval(self, dpid: str, poll_interval_s: float) -> float:
        """Seconds between two polls of ``dpid``: the setting, or longer within budget."""
        found = self._switches.get(dpid)
        cost = 0.0 if found is None else found.cost
        return max(poll_interval_s, cost / self.cpu_budget)

    def due(self, dpid: str, now: float, poll_interval_s: float) -> bool:
        """Whether ``dpid`` is due at monotonic ``now``; if so, the poll counts as sent."""
        schedule = self._of(dpid)
        interval = self.interval(dpid, poll_interval_s)
        if schedule.last is not None and now - schedule.last < interval * 0.95:
            return False
        schedule.last = now
        return True

    def record_cost(self, dpid: str, seconds: float) -> None:
        """How long judging the last reply of ``dpid`` took."""
        self._of(dpid).cost = max(0.0, seconds)

    def restart(self, dpid: str) -> None:
        """Poll ``dpid`` at the next chance (it reconnected or went away)."""
        found = self._switches.get(dpid)
        if found is not None:
            found.last = None

    def forget_switch(self, dpid: str) -> None:
        """The module was disabled on ``dpid``."""
        self._switches.pop(dpid, None)
