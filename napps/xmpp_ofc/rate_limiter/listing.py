"""Paging, sorting and filtering of the rate limiter's REST lists (monitored, blocked, events).

At 50k monitored clients a whole list is megabytes; a dashboard refreshing every
2 s wants the fastest 50, or the few matching a search. This module turns a
query string into a :class:`Query` (or a :class:`ListingError`, a 400) and cuts
one page out of the records the limiter's snapshots return. It knows nothing of
Kytos or Flask: ``main.py`` passes ``request.args`` in and the page out.

Rules every list follows:

* ``limit`` (1..the list's maximum; a bounded default) and ``offset`` (0..);
  ``total`` is the number of records that pass the filters, ``next_offset`` the
  offset of the next page (null on the last one);
* ``sort`` is a field name, ``-`` in front for descending; records without the
  value (a client not yet rated) come last either way; ties are broken by
  (dpid, ip, port, position), so pages do not overlap while nothing changes;
* filters: ``dpid`` (exact), ``ip`` (exact address), ``prefix`` (a CIDR, the
  address is in it), ``q`` (a substring of ``ip:port`` or of the dpid, what a
  search box types), and per list exact ``kind``-like fields (events);
* any other parameter, a repeated one or a bad value is refused: a typo such as
  ``sorted=`` must not quietly return the default page.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from heapq import nsmallest
from typing import Any

from napps.xmpp_ofc.rate_limiter.records import EventKind
from xmpp_ofc.ascii_int import parse_decimal

#: A search-box text longer than this is not an address or dpid anybody types.
MAX_SEARCH_CHARS = 64
COMMON_PARAMETERS = ("limit", "offset", "sort", "dpid", "ip", "prefix", "q")

Record = dict[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ListingError(ValueError):
    """A query parameter that is refused (answered 400 with this message)."""


@dataclass(frozen=True)
class ListSpec:
    """What one REST list accepts."""

    #: The key of the list in the answer ("monitored", ...).
    name: str
    #: Fields ``sort`` accepts; all numeric, or ip / dpid (sorted as numbers).
    sort_fields: tuple[str, ...]
    default_sort: str
    default_limit: int
    max_limit: int
    #: Fields filtered by exact string equality besides the common ones, with the values
    #: each may take (events' ``kind``); any other value is refused.
    exact_filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Without an offset and in the default order, the last page instead of the first
    #: (events: the newest, oldest first, as ``?limit=N`` always answered).
    tail_by_default: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.default_limit <= self.max_limit:
            raise ValueError(f"{self.name}: default_limit must be in 1..max_limit")
        if self.default_sort.lstrip("-") not in self.sort_fields:
            raise ValueError(f"{self.name}: default_sort {self.default_sort!r} is not sortable")


@dataclass(frozen=True)
class Query:
    """One parsed request."""

    limit: int
    offset: int | None  # None: the spec's default (first page, or the tail)
    sort_field: str
    descending: bool
    dpid: str | None = None
    ip: str | None = None
    prefix: Network | None = None
    search: str | None = None
    exact: tuple[tuple[str, str], ...] = field(default=())

    @property
    def sort(self) -> str:
        """The sort as written in a query string."""
        return ("-" if self.descending else "") + self.sort_field


@dataclass(frozen=True)
class Page:
    """One page of a list, and where it lies in the whole."""

    items: list[Record]
    total: int
    offset: int
    limit: int
    sort: str

    @property
    def next_offset(self) -> int | None:
        """Offset of the following page (None: this page is the last)."""
        following = self.offset + self.limit
        return following if following < self.total else None

    def to_json(self, name: str) -> dict[str, Any]:
        """The REST answer: the items under the list's own key, then the paging facts."""
        return {
            name: self.items,
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
            "next_offset": self.next_offset,
            "sort": self.sort,
        }


def _single(args: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = args.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise ListingError(f"{name}: given {len(values)} times, give it once")
    return values[0]


def _integer(text: str, name: str, low: int, high: int | None) -> int:
    number = parse_decimal(text)
    if number is None or number < low or (high is not None and number > high):
        bound = f"{low}..{high}" if high is not None else f"{low} or more"
        raise ListingError(f"{name}: must be an integer in {bound}, got {text!r}")
    return number


def parse_query(args: Mapping[str, Sequence[str]], spec: ListSpec) -> Query:
    """The query of a request (``request.args.to_dict(flat=False)``); ListingError if refused."""
    allowed = (*COMMON_PARAMETERS, *spec.exact_filters)
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise ListingError(f"unknown parameter {unknown[0]!r}; accepted: {', '.join(allowed)}")
    # An empty value is refused rather than read as "absent" (``?sort=`` is not a field;
    # leave the parameter out for the default). ``q=`` is an empty search box: no filter.
    for name, values in args.items():
        if name != "q" and "" in values:
            raise ListingError(f"{name}: empty; leave the parameter out for its default")
    raw_limit = _single(args, "limit")
    limit = (
        spec.default_limit if raw_limit is None else _integer(raw_limit, "limit", 1, spec.max_limit)
    )
    raw_offset = _single(args, "offset")
    offset = None if raw_offset is None else _integer(raw_offset, "offset", 0, None)
    sort = _single(args, "sort") or spec.default_sort
    descending = sort.startswith("-")
    sort_field = sort[1:] if descending else sort
    if sort_field not in spec.sort_fields:
        raise ListingError(
            f"sort: {sort!r} is not one of {', '.join(spec.sort_fields)} (- in front: descending)"
        )
    ip = _single(args, "ip") or None
    if ip is not None:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            raise ListingError(f"ip: not an IPv4 or IPv6 address: {ip!r}") from None
    raw_prefix = _single(args, "prefix") or None
    prefix = None
    if raw_prefix is not None:
        try:
            prefix = ipaddress.ip_network(raw_prefix, strict=False)
        except ValueError:
            raise ListingError(f"prefix: not a CIDR prefix: {raw_prefix!r}") from None
    search = (_single(args, "q") or "").strip().lower() or None
    if search is not None and len(search) > MAX_SEARCH_CHARS:
        raise ListingError(f"q: at most {MAX_SEARCH_CHARS} characters")
    exact = tuple(
        (name, value) for name in spec.exact_filters if (value := _single(args, name)) is not None
    )
    for name, value in exact:
        if value not in spec.exact_filters[name]:
            raise ListingError(
                f"{name}: {value!r} is not one of {', '.join(spec.exact_filters[name])}"
            )
    return Query(
        limit=limit,
        offset=offset,
        sort_field=sort_field,
        descending=descending,
        dpid=_single(args, "dpid") or None,
        ip=ip,
        prefix=prefix,
        search=search,
        exact=exact,
    )


# --- keys -----------------------------------------------------------------------------


def ip_key(text: Any) -> tuple[int, int]:
    """(version, value) of an address, for numeric order; (9, 0) if it is not one.

    ``inet_pton`` costs a fraction of ``ipaddress.ip_address``: at 50k records per
    2 s refresh that matters.
    """
    if isinstance(text, str):
        for family, version in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
            try:
                return version, int.from_bytes(socket.inet_pton(family, text), "big")
            except OSError:
                continue
    return 9, 0


def dpid_key(text: Any) -> int:
    """A dpid ("00:00:...:01") as its number; -1 if it is not one."""
    try:
        return int(str(text).replace(":", ""), 16)
    except ValueError:
        return -1


def _value_key(field_name: str) -> Callable[[Record], Any]:
    if field_name == "ip":
        return lambda record: ip_key(record.get("ip"))
    if field_name == "dpid":
        return lambda record: dpid_key(record.get("dpid"))
    return lambda record: record.get(field_name)


def _negated(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(-part for part in value)
    return -value


# --- filters --------------------------------------------------------------------------


def _in_prefix(prefix: Network) -> Callable[[Record], bool]:
    family = socket.AF_INET if prefix.version == 4 else socket.AF_INET6
    first, last = int(prefix.network_address), int(prefix.broadcast_address)

    def inside(record: Record) -> bool:
        try:
            value = int.from_bytes(socket.inet_pton(family, str(record.get("ip"))), "big")
        except OSError:
            return False  # the other family, or a prefix record's "ip" ("10.0.0.0/24")
        return first <= value <= last

    return inside


def _matches_search(text: str) -> Callable[[Record], bool]:
    def matches(record: Record) -> bool:
        port = record.get("port")
        client = f"{record.get('ip')}:{port}" if port is not None else str(record.get("ip"))
        return text in client.lower() or text in str(record.get("dpid", "")).lower()

    return matches


def _filters(query: Query) -> list[Callable[[Record], bool]]:
    tests: list[Callable[[Record], bool]] = []
    if query.dpid is not None:
        tests.append(lambda record: record.get("dpid") == query.dpid)
    if query.ip is not None:
        tests.append(lambda record: record.get("ip") == query.ip)
    if query.prefix is not None:
        tests.append(_in_prefix(query.prefix))
    if query.search is not None:
        tests.append(_matches_search(query.search))
    for name, value in query.exact:
        tests.append(lambda record, name=name, value=value: str(record.get(name)) == value)
    return tests


# --- the page -------------------------------------------------------------------------


def page(records: Iterable[Record], query: Query, spec: ListSpec) -> Page:
    """The records that pass ``query``'s filters, sorted, and the page of them it asks for."""
    tests = _filters(query)
    kept = [r for r in records if all(test(r) for test in tests)] if tests else list(records)
    total = len(kept)
    if query.offset is not None:
        offset = query.offset
    elif spec.tail_by_default and query.sort == spec.default_sort:
        offset = max(0, total - query.limit)
    else:
        offset = 0
    wanted = offset + query.limit
    value_of = _value_key(query.sort_field)

    def key(pair: tuple[int, Record]) -> tuple[Any, ...]:
        position, record = pair
        value = value_of(record)
        missing = value is None
        if missing:
            value = 0
        elif query.descending:
            value = _negated(value)
        port = record.get("port")
        return (
            missing,
            value,
            dpid_key(record.get("dpid")),
            record.get("ip") or "",
            -1 if port is None else port,
            position,
        )

    numbered = enumerate(kept)
    if wanted < total // 4:
        chosen = nsmallest(wanted, numbered, key=key)  # a top-N: no full sort of 50k
    else:
        chosen = sorted(numbered, key=key)
    return Page(
        items=[record for _, record in chosen[offset:wanted]],
        total=total,
        offset=offset,
        limit=query.limit,
        sort=query.sort,
    )


def listing(records: Iterable[Record], args: Mapping[str, Sequence[str]], spec: ListSpec) -> Page:
    """:func:`parse_query` then :func:`page` (ListingError for a refused query)."""
    return page(records, parse_query(args, spec), spec)


# --- the rate limiter's lists ---------------------------------------------------------

RATES = ("packets_per_min", "payload_bytes_per_min")
#: Monitored clients: the fastest first, as an operator looking for a flood wants.
MONITORED = ListSpec(
    name="monitored",
    sort_fields=(
        *RATES,
        *("packets_per_s", "bytes_per_s", "packet_count", "byte_count"),
        *("since", "dpid", "ip", "port", "server_port"),
    ),
    default_sort="-packets_per_min",
    default_limit=100,
    max_limit=1000,
)
#: Active blocks: oldest first, as before paging existed.
BLOCKED = ListSpec(
    name="blocked",
    sort_fields=("since", "expires", "remaining", *RATES, "dpid", "ip", "port"),
    default_sort="since",
    default_limit=100,
    max_limit=1000,
)


#: The ``kind`` values of history events (``records.EventKind``), for the ``kind`` filter.
EVENT_KINDS = tuple(kind.value for kind in EventKind)


def events_spec(history_limit: int) -> ListSpec:
    """History events: oldest first, and without an offset the newest page (as ``?limit=`` was)."""
    return ListSpec(
        name="events",
        sort_fields=("at", *RATES, "packet_count", "byte_count", "dpid", "ip", "port"),
        default_sort="at",
        default_limit=min(100, history_limit),
        max_limit=history_limit,
        exact_filters={"kind": EVENT_KINDS},
        tail_by_default=True,
    )
