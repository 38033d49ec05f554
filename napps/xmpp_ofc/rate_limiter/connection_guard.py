"""Connection-flood detection from capture packet-ins (issue 14, item 5).

Pure: no Kytos, no switch. The limiter feeds it the source address of every *new*
connection it sees on the capture flow (a TCP SYN towards an XMPP port from a
client it neither monitors nor blocks) and gets back, at most once per block
period, a :class:`FloodDecision` "block this address (or prefix) for N s".

Counting is a sliding window approximated by two fixed buckets (the current and
the previous window, the previous one weighted by how much of it still overlaps),
as in Cloudflare's rate limiter: O(1) memory per key, no per-connection state.

Keys are (switch, address) and (switch, /24 for IPv4 or /64 for IPv6). Both tables
are bounded LRUs (``max_entries`` each): a SYN flood from thousands of spoofed
sources evicts the oldest, quietest keys instead of growing memory; evictions are
counted (``evicted``) so an operator can see the table under pressure.

Defaults are NAT-aware: one address may be a carrier-grade NAT with many users, so
the per-address threshold (50 new connections in 10 s, 5/s sustained) is well above
what a login storm of one household or office produces; an XMPP client opens one
long-lived connection and reconnects with back-off. A prefix needs 200 in 10 s, so
a login storm of 50 different clients in one /24 (50 connections) never trips it;
connections of an address that is already decided (blocked on its own) do not count
towards its prefix, so one flooder never gets its neighbours' prefix blocked.
A flood of 200/s from one address trips the address threshold in about 0.25 s.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum

#: Defaults (seconds and counts); see the module docstring for why.
WINDOW_S = 10.0
ADDRESS_THRESHOLD = 50
PREFIX_THRESHOLD = 200
BLOCK_S = 60
MAX_ENTRIES = 16384
IPV4_PREFIX = 24
IPV6_PREFIX = 64


class Scope(StrEnum):
    """What a decision blocks."""

    ADDRESS = "address"
    PREFIX = "prefix"


@dataclass(frozen=True, slots=True)
class FloodDecision:
    """Block ``target`` (an address, or a CIDR prefix) on ``dpid`` for ``duration_s``."""

    dpid: str
    scope: Scope
    target: str
    connections: float
    window_s: float
    duration_s: int

    @property
    def reason(self) -> str:
        """History/log text."""
        return (
            f"connection flood: {self.connections:.0f} new connections in "
            f"{self.window_s:g} s from {self.scope} {self.target}"
        )


@dataclass(slots=True)
class _Counter:
    window_start: float
    current: int = 0
    previous: int = 0
    blocked_until: float = float("-inf")

    def add(self, now: float, window: float) -> float:
        """Count one connection at ``now``; the sliding-window estimate after it."""
        elapsed = now - self.window_start
        if elapsed >= 2 * window:
            self.window_start, self.current, self.previous = now, 0, 0
        elif elapsed >= window:
            self.window_start += window
            self.previous, self.current = self.current, 0
        self.current += 1
        overlap = 1.0 - (now - self.window_start) / window
        return self.current + self.previous * max(0.0, overlap)


def prefix_of(ip: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) of ``ip`` in CIDR form; ValueError if not an address."""
    address = ipaddress.ip_address(ip)
    bits = IPV6_PREFIX if address.version == 6 else IPV4_PREFIX
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


class _BoundedTable:
    """An LRU of counters that never holds more than ``max_entries`` keys."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[tuple[str, str], _Counter] = OrderedDict()
        self.evicted = 0

    def counter(self, key: tuple[str, str], now: float) -> _Counter:
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
            return found
        while len(self.entries) >= self.max_entries:
            self.entries.popitem(last=False)
            self.evicted += 1
        created = _Counter(window_start=now)
        self.entries[key] = created
        return created

    def forget_switch(self, dpid: str) -> None:
        for key in [k for k in self.entries if k[0] == dpid]:
            del self.entries[key]


class ConnectionGuard:
    """Counts new connections per address and prefix; says when to block one."""

    def __init__(
        self,
        *,
        window_s: float = WINDOW_S,
        address_threshold: int = ADDRESS_THRESHOLD,
        prefix_threshold: int = PREFIX_THRESHOLD,
        block_s: int = BLOCK_S,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        if window_s <= 0 or address_threshold < 1 or prefix_threshold < 1 or block_s < 1:
            raise ValueError("window_s, thresholds and block_s must be positive")
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self.window_s = window_s
        self.address_threshold = address_threshold
        self.prefix_threshold = prefix_threshold
        self.block_s = block_s
        self.addresses = _BoundedTable(max_entries)
        self.prefixes = _BoundedTable(max_entries)
        self.decisions_total: dict[Scope, int] = {Scope.ADDRESS: 0, Scope.PREFIX: 0}

    @property
    def evicted(self) -> int:
        """Keys dropped to keep the tables bounded (a spoofed-source flood, likely)."""
        return self.addresses.evicted + self.prefixes.evicted

    def observe(self, dpid: str, ip: str, now: float) -> list[FloodDecision]:
        """Count one new connection from ``ip`` on ``dpid`` at monotonic ``now``.

        Returns the blocks to start now (none, the address, the prefix or both);
        a key already decided is not decided again until its block period ends.
        """
        try:
            prefix = prefix_of(ip)
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            return []
        address = self.addresses.counter((dpid, ip), now)
        # An address already decided is blocked on its own: its leftover connections
        # (until its drop flow is in) must not push its neighbours' prefix over.
        address_decided = now < address.blocked_until
        decisions = self._judge(
            address, dpid, Scope.ADDRESS, ip, threshold=self.address_threshold, now=now
        )
        if not address_decided:
            counter = self.prefixes.counter((dpid, prefix), now)
            decisions += self._judge(
                counter, dpid, Scope.PREFIX, prefix, threshold=self.prefix_threshold, now=now
            )
        return decisions

    def _judge(
        self, counter: _Counter, dpid: str, scope: Scope, key: str, *, threshold: int, now: float
    ) -> list[FloodDecision]:
        estimate = counter.add(now, self.window_s)
        if estimate <= threshold or now < counter.blocked_until:
            return []
        counter.blocked_until = now + self.block_s
        self.decisions_total[scope] += 1
        return [FloodDecision(dpid, scope, key, estimate, self.window_s, self.block_s)]

    def forget_switch(self, dpid: str) -> None:
        """Drop a switch's counters (it left)."""
        self.addresses.forget_switch(dpid)
        self.prefixes.forget_switch(dpid)
