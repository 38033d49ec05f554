"""Plain values the rate limiter's collaborators pass each other: clocks, one
monitored connection, meter support, backoff.

No collaborator's state lives here: each owns its own per-switch tables
(:mod:`.monitors`, :mod:`.blocks`, :mod:`.enforcement`, :mod:`.polling`). What is
here is what crosses their interfaces. :class:`Monitored` is the record of one
connection; its slots are written by one owner each (see the class doc) and it
uses slots because a switch may carry tens of thousands of clients.

The timing constants live here because several collaborators share them (the
stale FLOW_REMOVED slack is used by monitors and blocks alike).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.policy import Buckets
from napps.xmpp_ofc.rate_limiter.rates import RateTracker

#: A FLOW_REMOVED whose flow is older than our last install by more than this is stale.
STALE_SLACK_S = 2.0
#: A block still present this long after its expiry was missed (switch away,
#: FLOW_REMOVED lost) is ended by the timer instead.
EXPIRY_GRACE_S = 5.0
#: Minimum gap between two self-healing re-installs of one client's flow.
REINSTALL_GAP_S = 1.0
#: After a switch refused a client's drop or monitor flow (table full), the first
#: retry waits this long; each further refusal doubles it, up to RETRY_MAX_S.
RETRY_FIRST_S = 10.0
RETRY_MAX_S = 300.0


P = ParamSpec("P")
R = TypeVar("R")


def locked(method: Callable[P, R]) -> Callable[P, R]:
    """Run ``method`` under its instance's one re-entrant lock (``self._lock``).

    One lock for the whole limiter: REST snapshots and event handlers run on
    different Kytos threads, and a public method may call another one.
    """

    @wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with args[0]._lock:  # type: ignore[attr-defined]
            return method(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class Instant:
    """Now, on both clocks (tests pass made-up values; the shell :meth:`now`)."""

    mono: float
    wall: float

    @classmethod
    def now(cls) -> Instant:
        """The current time."""
        return cls(time.monotonic(), time.time())


@dataclass(frozen=True)
class MeterSupport:
    """What a switch's OFPMP_METER_FEATURES reply says, as far as we care."""

    max_meter: int
    band_drop: bool
    pps: bool

    @property
    def usable(self) -> bool:
        """True when per-client packets/s drop meters can be installed."""
        return self.max_meter > 0 and self.band_drop and self.pps

    def why_not(self) -> str:
        """Why meters cannot be used here (empty when they can)."""
        missing = []
        if self.max_meter <= 0:
            missing.append("max_meter is 0")
        if not self.band_drop:
            missing.append("no DROP band")
        if not self.pps:
            missing.append("no packets/s meters")
        return ", ".join(missing)


class MeterIds:
    """Meter ids 1..max_meter of one switch; freed ids are reused first."""

    __slots__ = ("free", "max_meter", "next_id")

    def __init__(self, max_meter: int) -> None:
        self.max_meter = max_meter
        self.next_id = 1
        self.free: list[int] = []

    def take(self) -> int | None:
        if self.free:
            return self.free.pop()
        if self.next_id > self.max_meter:
            return None
        self.next_id += 1
        return self.next_id - 1

    def give_back(self, meter_id: int) -> None:
        self.free.append(meter_id)


class Monitored:
    """One monitored client connection (slots: there may be 50k per switch).

    Who writes what: :mod:`.monitors` the bookkeeping (``since``, ``last_seen``,
    ``installed_at``, ``last_heal``, ``whitelisted``); :mod:`.estimation` the
    ``tracker``; :mod:`.policy` the ``buckets``, ``suspect`` and ``flagged``;
    :mod:`.enforcement` the ``meter_id``.
    """

    __slots__ = (
        "buckets",
        "cookie_id",
        "flagged",
        "installed_at",
        "last_heal",
        "last_seen",
        "match_ip",
        "meter_id",
        "server_port",
        "since",
        "suspect",
        "tracker",
        "whitelisted",
    )

    def __init__(self, client: Client, server_port: int, now: Instant, whitelisted: bool) -> None:
        self.server_port = server_port
        self.tracker = RateTracker()
        self.installed_at = now.mono
        self.last_seen = now.mono
        self.last_heal = now.mono
        self.since = now.wall
        self.whitelisted = whitelisted
        self.meter_id: int | None = None
        self.flagged = False
        #: Its token buckets (:mod:`.policy`), made at its first judgement.
        self.buckets: Buckets | None = None
        #: Connected while its address was blocked or had offended lately: its
        #: buckets start empty, so a reconnect buys no fresh burst.
        self.suspect = False
        # The address as a switch echoes it in a match (IPv6 fully expanded).
        address = ipaddress.ip_address(client.ip)
        self.match_ip = address.exploded if address.version == 6 else client.ip
        self.cookie_id = client.cookie_id


@dataclass(slots=True)
class Backoff:
    """When a refused flow of one client may be tried again, and the current delay."""

    retry_at: float
    delay: float


def back_off(table: dict[Client, Backoff], client: Client, now: Instant) -> Backoff:
    """Start (or double) the wait before ``client``'s refused flow is tried again."""
    previous = table.get(client)
    delay = RETRY_FIRST_S if previous is None else min(previous.delay * 2, RETRY_MAX_S)
    table[client] = backoff = Backoff(now.mono + delay, delay)
    return backoff


def backing_off(table: dict[Client, Backoff], client: Client, now: Instant) -> bool:
    """True while ``client``'s refused flow must not be asked for again."""
    backoff = table.get(client) if table else None
    return backoff is not None and now.mono < backoff.retry_at


class ClientTable(dict):
    """A switch's monitored clients that also counts them per address (O(1) bound checks).

    Only the mutators the rate limiter uses keep the count (``[]=``, ``del``, ``pop``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.per_address: dict[str, int] = {}

    def __setitem__(self, client: Client, monitored: Monitored) -> None:
        if client not in self:
            self.per_address[client.ip] = self.per_address.get(client.ip, 0) + 1
        super().__setitem__(client, monitored)

    def _uncount(self, client: Client) -> None:
        left = self.per_address.get(client.ip, 0) - 1
        if left > 0:
            self.per_address[client.ip] = left
        else:
            self.per_address.pop(client.ip, None)

    def __delitem__(self, client: Client) -> None:
        super().__delitem__(client)
        self._uncount(client)

    def pop(self, client: Client, *default: Any) -> Any:
        if client in self:
            self._uncount(client)
        return super().pop(client, *default)

    def of_address(self, ip: str) -> int:
        """Monitored connections of ``ip``."""
        return self.per_address.get(ip, 0)


def ppm_of(monitored: Monitored | None) -> float | None:
    """The client's last packets/min, for a block record (None before two polls)."""
    if monitored is None or monitored.tracker.rate is None:
        return None
    return monitored.tracker.rate.packets_per_min


def last_packets(monitored: Monitored | None) -> int | None:
    """The client's last polled packet count, for history (None when never polled)."""
    last = None if monitored is None else monitored.tracker.last
    return None if last is None else last.packet_count


def last_bytes(monitored: Monitored | None) -> int | None:
    """The client's last polled byte count, for history (None when never polled)."""
    last = None if monitored is None else monitored.tracker.last
    return None if last is None else last.byte_count
