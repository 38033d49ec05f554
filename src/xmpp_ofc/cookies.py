"""The cookie plan: who owns a flow, and what the flow is for, packed into its cookie.

A 64-bit OpenFlow cookie is split into three fields::

    bits 63..56   owner byte   which NApp installed the flow
    bits 55..48   kind byte    what the flow is for (table-miss, capture, ...)
    bits 47..0    id           per-flow identity chosen by the owner (a MAC, a client, 0)

| owner (byte)        | kind (byte)       | id (48 bits)     | table/prio | flow              |
|---------------------|-------------------|------------------|------------|-------------------|
| dispatcher (0xa1)   | table_miss (0x01) | 0                | 0 / 0      | goto table 1      |
| l2_switch (0xa2)    | table_miss (0x01) | 0                | 1 / 0      | to CONTROLLER     |
| l2_switch (0xa2)    | forwarding (0x02) | destination MAC  | 1 / 100    | in_port+eth_dst   |
| rate_limiter (0xa3) | capture (0x03)    | 0 IPv4 / 1 IPv6  | 0 / 150    | tcp dst XMPP port |
| rate_limiter (0xa3) | monitor (0x04)    | client number    | 0 / 200    | one client, goto  |
| rate_limiter (0xa3) | block (0x05)      | client number    | 0 / 300    | one client, drop  |

Why this shape:

* The switch echoes a flow's cookie in every PACKET_IN, flow-stats entry and
  FLOW_REMOVED it produces, so the owner byte alone routes each of them to the one
  module that installed the flow (the seed gave every module every packet-in).
* With a cookie mask a module polls or deletes exactly its own flows, or one kind
  of them, in a single request (the seed used mask 0, which selects everything).
* All owner bytes share the high nibble ``0xa``: one (cookie, mask) pair,
  :func:`select_ours`, selects every flow of the bundle and nothing else, which is
  what the dispatcher deletes when a switch (re)connects.
* Owner ``0x00`` is left to flows we did not install (cookie 0 is everybody's
  default) and ``0xff`` can never be ours: a PACKET_IN that no flow produced
  carries cookie ``0xffffffffffffffff``.
* A forwarding flow's id is its destination MAC (48 bits fit exactly), so the
  flows towards one MAC are deleted by exact cookie when that MAC moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

COOKIE_BITS = 64
ID_BITS = 48
MAX_COOKIE = (1 << COOKIE_BITS) - 1
MAX_ID = (1 << ID_BITS) - 1
OWNER_SHIFT = 56
KIND_SHIFT = 48

#: Mask that compares a whole cookie.
FULL_MASK = MAX_COOKIE
#: Mask that compares the owner byte only.
OWNER_MASK = 0xFF << OWNER_SHIFT
#: Mask that compares owner and kind bytes.
OWNER_KIND_MASK = 0xFFFF << KIND_SHIFT
#: High nibble shared by every owner byte of the bundle.
NAMESPACE = 0xA0
NAMESPACE_MASK = 0xF0 << OWNER_SHIFT

#: The cookie of a PACKET_IN that no flow entry produced (OpenFlow 1.3, 7.4.1).
NO_FLOW_COOKIE = MAX_COOKIE


class Owner(IntEnum):
    """The module that installed a flow; the value is the owner byte."""

    DISPATCHER = 0xA1
    L2_SWITCH = 0xA2
    RATE_LIMITER = 0xA3

    @property
    def module_name(self) -> str:
        """The NApp name (``xmpp_ofc/<name>``) of this owner."""
        return self.name.lower()


class Kind(IntEnum):
    """What a flow is for; the value is the kind byte."""

    TABLE_MISS = 0x01
    FORWARDING = 0x02
    CAPTURE = 0x03
    MONITOR = 0x04
    BLOCK = 0x05


#: Which kinds each owner may use; encoding anything else is a programming error.
PLAN: dict[Owner, frozenset[Kind]] = {
    Owner.DISPATCHER: frozenset({Kind.TABLE_MISS}),
    Owner.L2_SWITCH: frozenset({Kind.TABLE_MISS, Kind.FORWARDING}),
    Owner.RATE_LIMITER: frozenset({Kind.CAPTURE, Kind.MONITOR, Kind.BLOCK}),
}

_OWNER_BY_NAME = {owner.module_name: owner for owner in Owner}


class CookieError(ValueError):
    """A cookie, owner, kind or id outside the plan."""


@dataclass(frozen=True)
class Cookie:
    """A decoded cookie of the bundle."""

    owner: Owner
    kind: Kind
    ident: int = 0

    def __post_init__(self) -> None:
        if self.kind not in PLAN[self.owner]:
            raise CookieError(f"owner {self.owner.name} has no flows of kind {self.kind.name}")
        if isinstance(self.ident, bool) or not isinstance(self.ident, int):
            raise CookieError(f"cookie id {self.ident!r} is not an integer")
        if not 0 <= self.ident <= MAX_ID:
            raise CookieError(f"cookie id {self.ident} is outside 0..{MAX_ID:#x}")

    @property
    def value(self) -> int:
        """The 64-bit cookie to put in a flow."""
        return (self.owner << OWNER_SHIFT) | (self.kind << KIND_SHIFT) | self.ident


def encode(owner: Owner, kind: Kind, ident: int = 0) -> int:
    """The cookie of a flow of ``owner`` and ``kind``; raises :class:`CookieError`."""
    return Cookie(owner, kind, ident).value


def decode(cookie: int) -> Cookie | None:
    """The plan entry of ``cookie``, or None when the flow is not one of ours.

    Never raises on any 64-bit value: cookies come from switches.
    """
    if not 0 <= cookie <= MAX_COOKIE:
        return None
    try:
        owner = Owner(cookie >> OWNER_SHIFT)
        kind = Kind((cookie >> KIND_SHIFT) & 0xFF)
        return Cookie(owner, kind, cookie & MAX_ID)
    except (ValueError, CookieError):
        return None


def owner_of(cookie: int) -> Owner | None:
    """The owner byte of ``cookie`` if it names one of our modules.

    Unlike :func:`decode` this ignores the kind, so a flow of a known owner with a
    kind from a newer release is still routed to its owner.
    """
    if not 0 <= cookie <= MAX_COOKIE:
        return None
    try:
        return Owner(cookie >> OWNER_SHIFT)
    except ValueError:
        return None


def owner_by_module(name: str) -> Owner:
    """The owner of the module ``name`` (``"l2_switch"``); raises KeyError."""
    return _OWNER_BY_NAME[name]


def is_ours(cookie: int) -> bool:
    """True when ``cookie`` lies in the bundle's namespace."""
    cookie_value, mask = select_ours()
    return 0 <= cookie <= MAX_COOKIE and cookie & mask == cookie_value


def select_ours() -> tuple[int, int]:
    """(cookie, cookie_mask) selecting every flow of the bundle."""
    return NAMESPACE << OWNER_SHIFT, NAMESPACE_MASK


def select_owner(owner: Owner) -> tuple[int, int]:
    """(cookie, cookie_mask) selecting every flow of ``owner``."""
    return Owner(owner) << OWNER_SHIFT, OWNER_MASK


def select_kind(owner: Owner, kind: Kind) -> tuple[int, int]:
    """(cookie, cookie_mask) selecting the flows of ``owner`` of one ``kind``."""
    return encode(owner, kind), OWNER_KIND_MASK


def select_exact(owner: Owner, kind: Kind, ident: int) -> tuple[int, int]:
    """(cookie, cookie_mask) selecting the flows with exactly this cookie."""
    return encode(owner, kind, ident), FULL_MASK


def selects(selector: tuple[int, int], cookie: int) -> bool:
    """True when a switch would consider ``cookie`` selected by ``selector``."""
    cookie_value, mask = selector
    return cookie & mask == cookie_value & mask
