"""Bound the connections still in their OpenFlow handshake.

Anyone who reaches the OpenFlow port can open TCP connections that never send
HELLO; each one is held until ``HANDSHAKE_TIMEOUT``.  Past
``MAX_PENDING_HANDSHAKES`` of them the oldest are closed first: a real switch
finishes its handshake in milliseconds, so it is never the oldest for long,
while idle connections age.  Plain function, no Kytos: the shell asks it which
connections to close when a new one arrives.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from napps.kytos.of_core.connection_fsm import Phase

#: Phases before the features reply (HELLO_FAILED and CLOSED are already closing).
PENDING = frozenset({Phase.AWAITING_HELLO, Phase.AWAITING_FEATURES})


def oldest_over_limit(
    connections: Iterable[tuple[Hashable, Phase, float]], limit: int
) -> list[Hashable]:
    """Of ``(key, phase, started_at)``, the oldest pending ones beyond ``limit``."""
    pending = sorted(
        ((started, key) for key, phase, started in connections if phase in PENDING),
        key=lambda item: item[0],
    )
    excess = len(pending) - max(limit, 1)
    return [key for _, key in pending[:excess]] if excess > 0 else []
