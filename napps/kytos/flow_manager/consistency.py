"""The consistency check: the switch holds the bundle's flows that flow_manager installed.

flow_manager's store (``flow_store``) is what the controller believes each switch
holds. Something else can delete those flows behind our back: an operator's
``ovs-ofctl del-flows``, another controller, a switch that reset its tables
without dropping the connection. Then the base pipeline, the modules' flows and
the blocks are gone until the switch reconnects. kytos-ng's flow_manager has a
consistency check for this; ours differs in two ways, on purpose:

* It checks only flows in the bundle's cookie namespace (``cookies.is_ours``) and
  only re-adds: flows of other owners are never touched, and nothing is deleted.
  (kytos-ng also deletes flows it does not know, which wipes other NApps' flows.)
* It asks the switch for exactly the cookie kinds it has to check, one
  cookie-filtered OFPMP_FLOW request per (owner, kind), instead of reading of_core's
  full flow dump: a switch with 50k monitored clients answers a check in a few
  entries, not 50k.

A round is: snapshot the stored flows, send the requests (both under flow_manager's
send lock, so every FlowMod recorded before the snapshot is on the wire before the
requests, and every later one after them), collect the replies, and re-add each
snapshot flow that the switch lacks and the store still holds. A flow whose hard
timeout is about to run out is not checked (the switch may rightly have expired it).
A key held by a flow with another cookie is reported as a conflict and left alone.

This module is pure: it takes flows and reply entries and returns what to re-add.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from napps.kytos.flow_manager.flow_store import entry_key
from xmpp_ofc import cookies
from xmpp_ofc.openflow.match import match_to_dict
from xmpp_ofc.openflow.validation import as_int

Flow = dict[str, Any]

#: A stored flow with less hard timeout left than this is not checked.
MIN_TIME_LEFT_S = 2


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one round on one switch."""

    dpid: str
    missing: list[Flow]
    conflicts: list[Flow]
    checked: int


@dataclass(slots=True)
class _Round:
    expected: list[Flow]
    pending: set[int]
    started_at: float
    seen: dict[str, int] = field(default_factory=dict)  # entry key -> cookie on the switch


def to_check(flows: Iterable[Flow]) -> list[Flow]:
    """The stored flows a round checks: ours, with enough hard timeout left."""
    return [
        flow
        for flow in flows
        if cookies.is_ours(flow.get("cookie", 0))
        and not (0 < flow.get("hard_timeout", 0) < MIN_TIME_LEFT_S)
    ]


def selectors(flows: Iterable[Flow]) -> list[tuple[int, int]]:
    """(cookie, cookie_mask) pairs, one per (owner, kind) among ``flows``, sorted."""
    mask = cookies.OWNER_KIND_MASK
    return [(cookie, mask) for cookie in sorted({flow["cookie"] & mask for flow in flows})]


def reply_entry(stats: Any) -> tuple[str, int]:
    """(entry key, cookie) of one flow-stats entry (a ``FlowStatsRecord`` or alike)."""
    match = stats.match if isinstance(stats.match, Mapping) else match_to_dict(stats.match)
    key = entry_key(
        {"table_id": as_int(stats.table_id), "priority": as_int(stats.priority), "match": match}
    )
    return key, as_int(stats.cookie)


class ConsistencyCheck:
    """Rounds in flight, at most one per switch (a new round replaces a stale one)."""

    def __init__(self, round_timeout_s: float) -> None:
        self._round_timeout_s = round_timeout_s
        self._rounds: dict[str, _Round] = {}

    def begin(self, dpid: str, expected: list[Flow], xids: list[int], now: float) -> None:
        """Remember a round on ``dpid`` whose requests went out with ``xids``."""
        if xids:
            self._rounds[dpid] = _Round(expected, set(xids), now)
        else:
            self._rounds.pop(dpid, None)

    def busy(self, dpid: str, now: float) -> bool:
        """True while a round on ``dpid`` waits for replies (and has not timed out)."""
        round_ = self._rounds.get(dpid)
        return round_ is not None and now - round_.started_at < self._round_timeout_s

    def forget(self, dpid: str) -> None:
        """The switch went away: its round will never complete."""
        self._rounds.pop(dpid, None)

    def reply(
        self,
        dpid: str,
        xid: int,
        entries: Iterable[Any],
        still_stored: Callable[[Flow], bool],
    ) -> Verdict | None:
        """Take one reply; the verdict once the round's last reply is in, else None.

        ``still_stored`` says whether the store still believes in a flow (it may
        have been deleted by its owner while the round was in flight).
        """
        round_ = self._rounds.get(dpid)
        if round_ is None or xid not in round_.pending:
            return None
        round_.pending.discard(xid)
        for stats in entries:
            key, cookie = reply_entry(stats)
            round_.seen[key] = cookie
        if round_.pending:
            return None
        del self._rounds[dpid]
        missing, conflicts = [], []
        for flow in round_.expected:
            cookie = round_.seen.get(entry_key(flow))
            if cookie == flow["cookie"]:
                continue
            if cookie is not None:
                conflicts.append(flow)
            elif still_stored(flow):
                missing.append(flow)
        return Verdict(dpid, missing, conflicts, len(round_.expected))
