"""Bookkeeping of repeat offenders: how many offences each address has within the window.

What an offence gets is the policy's (:func:`.policy.sentence`, fail2ban's
``bantime.increment``: each block of one address within ``offence_window_s``
lasts longer, and from the ``address_block_after``-th on the whole address is
blocked). This module only counts: an automatic block records an offence, a block
the switch refused is pardoned, an operator's unblock forgets the address. That is
NAT-safe in the sense that matters: connections are never summed, so many
well-behaved users behind one address are never blocked for their total; only an
address whose connections were each caught flooding again and again is.

The log is bounded (least recently offending addresses are forgotten first), so a
flood of spoofed sources cannot grow it without bound.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

#: Addresses remembered at most; the least recently offending go first.
MAX_OFFENDERS = 10_000


@dataclass(slots=True)
class Offences:
    """One address's offences within the current window."""

    count: int
    last: float  # wall-clock time of the latest


class OffenceLog:
    """Recent offences by address (wall clock: blocks outlive a restart, so do offences)."""

    def __init__(self, max_offenders: int = MAX_OFFENDERS) -> None:
        self.max_offenders = max_offenders
        self._by_address: OrderedDict[str, Offences] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_address)

    def recent(self, ip: str, now: float, window_s: float) -> int:
        """Offences of ``ip`` still inside the window (0 when none or forgiven)."""
        offences = self._by_address.get(ip)
        if offences is None or now - offences.last > window_s:
            return 0
        return offences.count

    def record(self, ip: str, now: float, window_s: float) -> int:
        """Count one more offence of ``ip``; return how many there are in the window."""
        count = self.recent(ip, now, window_s) + 1
        self._by_address[ip] = Offences(count, now)
        self._by_address.move_to_end(ip)
        while len(self._by_address) > self.max_offenders:
            self._by_address.popitem(last=False)
        return count

    def pardon(self, ip: str) -> None:
        """Take back the latest offence of ``ip`` (its block was refused by the switch)."""
        offences = self._by_address.get(ip)
        if offences is None:
            return
        if offences.count <= 1:
            del self._by_address[ip]
        else:
            offences.count -= 1

    def forget(self, ip: str) -> None:
        """An operator lifted the address's block or whitelisted it: start over."""
        self._by_address.pop(ip, None)
