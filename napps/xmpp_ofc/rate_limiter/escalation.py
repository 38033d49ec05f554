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
flood of spoofed sources cannot grow it without bound. With a store, every change
is written through and :meth:`OffenceLog.load` takes them back at start, so a
restart (or another controller sharing the store) does not reset a repeat
offender to a first offence.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from napps.xmpp_ofc.rate_limiter.records import LimiterStore

#: Addresses remembered at most; the least recently offending go first.
MAX_OFFENDERS = 10_000


@dataclass(slots=True)
class Offences:
    """One address's offences within the current window."""

    count: int
    last: float  # wall-clock time of the latest


class OffenceLog:
    """Recent offences by address (wall clock: blocks outlive a restart, so do offences)."""

    def __init__(
        self, max_offenders: int = MAX_OFFENDERS, store: LimiterStore | None = None
    ) -> None:
        self.max_offenders = max_offenders
        self.store = store
        self._by_address: OrderedDict[str, Offences] = OrderedDict()

    def load(self, now: float, window_s: float) -> None:
        """Take the stored offences back (start); those outside the window are dropped."""
        if self.store is None:
            return
        entries: Iterable[tuple[str, int, float]] = self.store.load_offences()
        for ip, count, last in sorted(entries, key=lambda entry: entry[2]):
            if now - last > window_s or count < 1:
                self.store.forget_offences(ip)
                continue
            self._by_address[ip] = Offences(count, last)
        while len(self._by_address) > self.max_offenders:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        ip, _ = self._by_address.popitem(last=False)
        if self.store is not None:
            self.store.forget_offences(ip)

    def _saved(self, ip: str, offences: Offences | None) -> None:
        if self.store is None:
            return
        if offences is None:
            self.store.forget_offences(ip)
        else:
            self.store.save_offences(ip, offences.count, offences.last)

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
        self._by_address[ip] = offences = Offences(count, now)
        self._by_address.move_to_end(ip)
        self._saved(ip, offences)
        while len(self._by_address) > self.max_offenders:
            self._drop_oldest()
        return count

    def pardon(self, ip: str) -> None:
        """Take back the latest offence of ``ip`` (its block was refused by the switch)."""
        offences = self._by_address.get(ip)
        if offences is None:
            return
        if offences.count <= 1:
            del self._by_address[ip]
            self._saved(ip, None)
        else:
            offences.count -= 1
            self._saved(ip, offences)

    def forget(self, ip: str) -> None:
        """An operator lifted the address's block or whitelisted it: start over."""
        if self._by_address.pop(ip, None) is not None:
            self._saved(ip, None)
