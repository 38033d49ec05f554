"""Who owns a dpid when a second connection claims it: an echo round-trip decides.

A FEATURES_REPLY names the switch, and nothing authenticates that name.  Upstream
Kytos hands the dpid to whichever connection said it last, so any peer that can
reach the OpenFlow port could take a live switch's pipeline.  Refusing every
second claim would instead lock a rebooted switch out until its dead connection
timed out.  So, when a connection claims a dpid that another connection holds:

* the holder (the *incumbent*) is sent an ECHO_REQUEST;
* if it answers within ``timeout`` seconds it is alive: the newcomer is
  refused (closed, logged) and the incumbent keeps its connection;
* if it does not, it is dead (a switch that rebooted or lost its TCP session
  without a FIN): it is closed and the newcomer takes over at that moment;
* if the incumbent's connection ends during the probe, the newcomer takes over
  at once; an incumbent that is already closed is no obstacle at all.

While the probe runs, what the newcomer's session produced is held here
(bounded) and replayed in order if it takes over.  One claim per dpid at a
time: a third connection claiming the same dpid meanwhile is refused at once.

Plain module: the shell (``main.py``) sends the echo, closes connections and
completes handshakes; this only keeps the claims and the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Claim:
    """A newcomer waiting for the incumbent of ``dpid`` to answer ``probe_xid``."""

    dpid: str
    newcomer: Any
    incumbent: Any
    probe_xid: int
    deadline: float
    held: list[Any] = field(default_factory=list)
    dropped: int = 0


class IdentityArbiter:
    """Open claims, keyed by dpid, by newcomer and by incumbent."""

    def __init__(self, timeout: float, max_held: int = 256) -> None:
        self.timeout = timeout
        self.max_held = max_held
        self._by_dpid: dict[str, Claim] = {}
        self._by_newcomer: dict[Any, Claim] = {}

    def __len__(self) -> int:
        return len(self._by_dpid)

    def pending_for(self, dpid: str) -> bool:
        return dpid in self._by_dpid

    def waiting(self, newcomer: Any) -> bool:
        """Whether ``newcomer`` is waiting for a verdict (its outputs must be held)."""
        return newcomer in self._by_newcomer

    def open(
        self, dpid: str, newcomer: Any, incumbent: Any, *, probe_xid: int, now: float, first: Any
    ) -> Claim | None:
        """Start a claim; ``first`` is the output that carried the features reply.

        Returns None when a claim for ``dpid`` is already open (refuse this one).
        """
        if dpid in self._by_dpid:
            return None
        claim = Claim(dpid, newcomer, incumbent, probe_xid, now + self.timeout, [first])
        self._by_dpid[dpid] = claim
        self._by_newcomer[newcomer] = claim
        return claim

    def hold(self, newcomer: Any, output: Any) -> bool:
        """Keep one more output of a waiting newcomer; False when over ``max_held`` (dropped)."""
        claim = self._by_newcomer[newcomer]
        if len(claim.held) >= self.max_held:
            claim.dropped += 1
            return False
        claim.held.append(output)
        return True

    def answered(self, incumbent: Any, xids: list[int]) -> Claim | None:
        """The incumbent answered echoes ``xids``: if one is a probe, its claim ends (refused)."""
        for claim in self._by_dpid.values():
            if claim.incumbent is incumbent and claim.probe_xid in xids:
                return self._remove(claim)
        return None

    def expired(self, now: float) -> list[Claim]:
        """Claims whose incumbent did not answer in time (the newcomer takes over)."""
        return [self._remove(c) for c in list(self._by_dpid.values()) if now >= c.deadline]

    def connection_gone(self, connection: Any) -> Claim | None:
        """A connection ended.  Returns the claim it was the incumbent of (take over now);
        a claim it made as a newcomer is just dropped."""
        mine = self._by_newcomer.get(connection)
        if mine is not None:
            self._remove(mine)
        for claim in list(self._by_dpid.values()):
            if claim.incumbent is connection:
                return self._remove(claim)
        return None

    def _remove(self, claim: Claim) -> Claim:
        self._by_dpid.pop(claim.dpid, None)
        self._by_newcomer.pop(claim.newcomer, None)
        return claim
