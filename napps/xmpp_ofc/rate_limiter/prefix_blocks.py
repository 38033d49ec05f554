"""Prefix blocks: a connection flood spread over one /24 (or /64) stopped in the switch.

Issue 14 item 5. The connection guard counts new connections per address and per
prefix; an address over its threshold gets the ordinary per-address block
(:mod:`.flood_blocks`), a prefix over its (higher) threshold gets a *prefix block*
here: one drop flow per XMPP port matching ``ip src = prefix`` + tcp dst, with a
hard timeout.

Why its own table and flows rather than a :class:`~.records.BlockRecord`:

* **New connections only.** The drop flows sit at priority
  :data:`~xmpp_ofc.pipeline.PRIORITY_PREFIX_BLOCK` (175), above the capture flow
  (150) and below the monitor flows (200): the flood's new connections are dropped
  before they reach the controller, while users of the prefix who are already
  connected (monitored) keep their sessions. Per-address blocks (300) drop every
  packet of the address, which is right for one proven flooder and wrong for its
  neighbours.
* **Bounded.** At most ``max_per_switch`` prefix blocks per switch (a flood from
  every /24 of the Internet is a spoofed SYN flood, which the capture meter and the
  monitor bounds hold, see :mod:`.capture_bounds`); past it a decision is counted
  (``refused``) and logged, not enforced.
* **Short and in memory.** A prefix block lasts the guard's block period (60 s by
  default); it is reinstalled with its remaining time when its switch reconnects
  and ended by the limiter's timer (history ``unblock``). It is not persisted: a
  controller restart forgets it, and a flood that goes on trips the guard again
  within a second.

A prefix that contains a whitelisted address, or that a whitelisted network
contains, is never blocked as a prefix (the addresses in it can still be blocked
one by one, except the whitelisted ones).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from napps.xmpp_ofc.rate_limiter.connection_guard import prefix_of
from napps.xmpp_ofc.rate_limiter.flows import ETH_TYPE_IPV4, ETH_TYPE_IPV6, IP_PROTO_TCP
from xmpp_ofc import cookies, pipeline
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.pipeline import FlowDict

#: Default bound on active prefix blocks per switch.
MAX_PER_SWITCH = 256


@dataclass(frozen=True, slots=True)
class PrefixBlock:
    """One active prefix block; times are wall-clock seconds."""

    dpid: str
    prefix: str
    server_ports: tuple[int, ...]
    since: float
    expires: float
    reason: str

    def remaining(self, wall_now: float) -> float:
        """Seconds left (negative once expired)."""
        return self.expires - wall_now

    def to_json(self, wall_now: float) -> dict[str, Any]:
        """Plain JSON for REST (``status``)."""
        return {
            "dpid": self.dpid,
            "prefix": self.prefix,
            "server_ports": list(self.server_ports),
            "since": self.since,
            "expires": self.expires,
            "remaining": max(0.0, round(self.remaining(wall_now), 1)),
            "reason": self.reason,
        }


def overlaps_whitelist(prefix: str, whitelist: Iterable[str]) -> bool:
    """Whether a whitelisted network overlaps ``prefix`` (then it is never blocked)."""
    network = ipaddress.ip_network(prefix)
    for entry in whitelist:
        other = ipaddress.ip_network(entry, strict=False)
        if other.version == network.version and network.overlaps(other):
            return True
    return False


class PrefixBlocks:
    """Active prefix blocks per switch, bounded; pure bookkeeping, no flows sent here."""

    def __init__(self, max_per_switch: int = MAX_PER_SWITCH) -> None:
        if max_per_switch < 1:
            raise ValueError("max_per_switch must be positive")
        self.max_per_switch = max_per_switch
        self._blocks: dict[str, dict[str, PrefixBlock]] = {}
        #: Monotonic time each block's flows were last (re)installed: heal gap.
        self.installed: dict[tuple[str, str], float] = {}
        self.refused = 0

    def start(self, block: PrefixBlock) -> bool:
        """Record ``block``; False (and counted in ``refused``) when the switch is full.

        A prefix already blocked gets the new expiry (the guard decides again only
        after its block period, so the flood went on).
        """
        table = self._blocks.setdefault(block.dpid, {})
        if block.prefix not in table and len(table) >= self.max_per_switch:
            self.refused += 1
            return False
        table[block.prefix] = block
        return True

    def covering(self, dpid: str, ip: str) -> PrefixBlock | None:
        """The block of ``ip``'s /24 or /64 on ``dpid``, if any (O(1))."""
        table = self._blocks.get(dpid)
        if not table:
            return None
        try:
            return table.get(prefix_of(ip))
        except ValueError:
            return None

    def active(self, dpid: str) -> list[PrefixBlock]:
        """The switch's prefix blocks, oldest first."""
        return sorted(self._blocks.get(dpid, {}).values(), key=lambda b: b.since)

    def all(self) -> list[PrefixBlock]:
        """Every switch's prefix blocks, by switch then age."""
        return [block for dpid in sorted(self._blocks) for block in self.active(dpid)]

    def pop_expired(self, wall_now: float) -> list[PrefixBlock]:
        """Remove and return the blocks whose time is up."""
        gone = []
        for dpid, table in list(self._blocks.items()):
            for prefix, block in list(table.items()):
                if block.remaining(wall_now) <= 0:
                    gone.append(table.pop(prefix))
                    self.installed.pop((dpid, prefix), None)
            if not table:
                del self._blocks[dpid]
        return gone

    def forget_switch(self, dpid: str) -> list[PrefixBlock]:
        """Drop a switch's blocks (the module was disabled there); the ones dropped."""
        for key in [k for k in self.installed if k[0] == dpid]:
            del self.installed[key]
        return list(self._blocks.pop(dpid, {}).values())


def _match(prefix: str, server_port: int) -> dict[str, Any]:
    network = ipaddress.ip_network(prefix)
    if network.version == 6:
        ip_match = {"dl_type": ETH_TYPE_IPV6, "ipv6_src": str(network)}
    else:
        ip_match = {"dl_type": ETH_TYPE_IPV4, "nw_src": str(network)}
    return {**ip_match, "nw_proto": IP_PROTO_TCP, "tp_dst": server_port}


def prefix_cookie(prefix: str) -> int:
    """A block cookie for ``prefix``: a 48-bit hash (deletes also name the match)."""
    network = ipaddress.ip_network(prefix)
    digest = hashlib.blake2b(
        b"prefix" + network.network_address.packed + bytes([network.prefixlen]), digest_size=6
    )
    return cookies.encode(Owner.RATE_LIMITER, Kind.BLOCK, int.from_bytes(digest.digest(), "big"))


def prefix_block_flows(block: PrefixBlock, wall_now: float) -> list[FlowDict]:
    """The drop flows of ``block`` with its remaining time as hard timeout (>= 1 s)."""
    hard_timeout = min(0xFFFF, max(1, math.ceil(block.remaining(wall_now))))
    return [
        pipeline.flow(
            cookie=prefix_cookie(block.prefix),
            table_id=pipeline.TABLE_POLICY,
            priority=pipeline.PRIORITY_PREFIX_BLOCK,
            match=_match(block.prefix, port),
            instructions=[],
            hard_timeout=hard_timeout,
        )
        for port in sorted(set(block.server_ports))
    ]


def delete_prefix_block(prefix: str) -> FlowDict:
    """Delete a prefix block's drop flows (every XMPP port)."""
    match = _match(prefix, 0)
    del match["tp_dst"]
    return pipeline.delete_selector(
        (prefix_cookie(prefix), cookies.FULL_MASK), table_id=pipeline.TABLE_POLICY, match=match
    )
