"""Stale packet-ins are shed, not worked through: a flood's backlog ends when the flood does.

Issue 13 item 4. Under a flood (a MAC flood: thousands of new source MACs a second)
packet-ins queue in Kytos' buffers faster than they are answered, and the controller
then spends minutes answering packets that are long gone: flooding copies of them,
learning MACs that moved meanwhile, while new hosts' first packets wait behind them.
Answering a packet-in late is worse than not answering: the host has retransmitted
by then, and that retransmission is a fresh packet-in behind the same queue.

So the dispatcher looks at each packet-in's age (the time since of_core parsed it
off the wire, ``KytosEvent.timestamp``) before anything else. One older than
``max_age_s`` is dropped undecoded, which costs microseconds, so the backlog drains
at once and the controller is back to answering fresh packets within about
``max_age_s`` of the flood's end. Shedding is visible: counted per switch for the
``xmpp_ofc_packet_ins_shed_total{napp="stale"}`` metric, and at most one log line per
switch every ``log_interval_s`` carrying the count since the previous one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Switch:
    shed: int = 0
    unlogged: int = 0
    logged_at: float | None = None


@dataclass
class StalePacketIns:
    """Decides, per packet-in, whether it is too old to answer."""

    max_age_s: float
    log_interval_s: float = 10.0
    _switches: dict[str, _Switch] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.max_age_s < 0:
            raise ValueError(f"max_age_s must be >= 0 (0: never shed), got {self.max_age_s}")

    def is_stale(self, age_s: float) -> bool:
        return self.max_age_s > 0 and age_s > self.max_age_s

    def shed(self, dpid: str, now: float) -> int:
        """Count one shed packet-in of ``dpid``; the count to log now, or 0 (not due)."""
        with self._lock:
            switch = self._switches.setdefault(dpid, _Switch())
            switch.shed += 1
            switch.unlogged += 1
            if switch.logged_at is not None and now - switch.logged_at < self.log_interval_s:
                return 0
            due, switch.unlogged, switch.logged_at = switch.unlogged, 0, now
            return due

    def shed_total(self, dpid: str) -> int:
        with self._lock:
            switch = self._switches.get(dpid)
            return 0 if switch is None else switch.shed

    def forget(self, dpid: str) -> None:
        """The switch went away (bounded by connected switches)."""
        with self._lock:
            self._switches.pop(dpid, None)
