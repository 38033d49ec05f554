"""Connection floods (issue 14, item 5): the guard's decisions and the prefix blocks they start.

The coordinator feeds :meth:`ConnectionFloods.observe` every capture packet-in of
a client it neither monitors nor blocks (only TCP SYNs count: a new connection)
and gets back the guard's decisions (:mod:`.connection_guard`):

* an **address** decision becomes the ordinary per-address block (drop flows
  matching ip src + tcp dst, priority 300 above monitor and capture, hard
  timeout), made by the coordinator from :meth:`ConnectionFloods.address_block`,
  recorded in the history and counted as ``connection_flood``;
* a **prefix** decision (/24 or /64, a higher threshold) becomes a prefix block
  kept here (:mod:`.prefix_blocks`: drop flows on ip src = prefix at priority 175,
  so only the prefix's *new* connections are dropped), recorded in the history
  with the prefix as ``ip`` and counted as ``connection_flood_prefix``.

Whether a decision is enforced at all (monitor mode, whitelist) is the policy's
(:func:`.policy.never_blocked`). Bookkeeping only: the flows are
:mod:`.enforcement`'s.
"""

from __future__ import annotations

import logging
from collections import Counter

from napps.xmpp_ofc.rate_limiter import policy
from napps.xmpp_ofc.rate_limiter.connection_guard import ConnectionGuard, FloodDecision, Scope
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.history import History
from napps.xmpp_ofc.rate_limiter.prefix_blocks import PrefixBlock, PrefixBlocks, overlaps_whitelist
from napps.xmpp_ofc.rate_limiter.records import BlockRecord, EventKind, HistoryEvent, UnblockReason
from napps.xmpp_ofc.rate_limiter.settings_model import LimiterSettings, Mode
from napps.xmpp_ofc.rate_limiter.state import REINSTALL_GAP_S, Instant
from xmpp_ofc.messages import DecodedPacketIn
from xmpp_ofc.packet import TCP_SYN

log = logging.getLogger(__name__)

#: ``blocks_total`` kinds.
ADDRESS_KIND = "connection_flood"
PREFIX_KIND = "connection_flood_prefix"


class ConnectionFloods:
    """The connection guard and the prefix blocks it caused, with their counts."""

    def __init__(
        self,
        history: History,
        guard: ConnectionGuard | None = None,
        prefixes: PrefixBlocks | None = None,
    ) -> None:
        self.history = history
        self.guard = guard or ConnectionGuard()
        self.prefixes = prefixes or PrefixBlocks()
        self.blocks_total: Counter[str] = Counter()  # PREFIX_KIND
        self.unblocks_total: Counter[str] = Counter()  # by UnblockReason

    def new_connection(
        self,
        packet_in: DecodedPacketIn,
        client: Client,
        now: Instant,
        settings: LimiterSettings,
    ) -> list[FloodDecision]:
        """Count a new connection (a SYN); the guard's decisions to enforce (often none).

        A decision the policy does not enforce (monitor mode; an exempt address:
        whitelisted, protected, never a client; a prefix overlapping the whitelist or
        holding a protected address) is logged instead. The caller starts an address
        decision as an ordinary block (:meth:`address_block`) and a prefix decision
        with :meth:`start_prefix`.
        """
        if not packet_in.packet.has_tcp_flag(TCP_SYN):
            return []
        enforced = []
        monitor_mode = settings.mode is Mode.MONITOR
        for decision in self.guard.observe(packet_in.dpid, client.ip, now.mono):
            if decision.scope is Scope.PREFIX:
                spared = overlaps_whitelist(
                    decision.target, settings.whitelist
                ) or overlaps_whitelist(decision.target, settings.protected_addresses)
            else:
                spared = policy.address_exemption(client.ip, settings) is not None
            if policy.never_blocked(monitor_mode=monitor_mode, exempt=spared):
                log.warning(
                    "dpid %s: %s (not blocked: monitor mode/whitelist/protected)",
                    decision.dpid,
                    decision.reason,
                )
            else:
                enforced.append(decision)
        return enforced

    @staticmethod
    def address_block(
        decision: FloodDecision, client: Client, xmpp_ports: tuple[int, ...], now: Instant
    ) -> BlockRecord:
        """The whole-address block of an address decision (the coordinator starts it)."""
        return BlockRecord(
            dpid=decision.dpid,
            ip=client.ip,
            port=None,
            server_ports=tuple(sorted(set(xmpp_ports))),
            since=now.wall,
            expires=now.wall + decision.duration_s,
            reason=decision.reason,
            manual=False,
        )

    def start_prefix(
        self, decision: FloodDecision, xmpp_ports: tuple[int, ...], now: Instant, *, up: bool
    ) -> PrefixBlock | None:
        """Record a prefix block; the block to install (None: bound reached, or switch away)."""
        dpid = decision.dpid
        block = PrefixBlock(
            dpid=dpid,
            prefix=decision.target,
            server_ports=tuple(sorted(set(xmpp_ports))),
            since=now.wall,
            expires=now.wall + decision.duration_s,
            reason=decision.reason,
        )
        if not self.prefixes.start(block):
            log.warning(
                "dpid %s: %s (not blocked: %d prefix blocks on the switch already)",
                dpid,
                decision.reason,
                self.prefixes.max_per_switch,
            )
            return None
        self.blocks_total[PREFIX_KIND] += 1
        self.history.record(
            HistoryEvent(
                at=now.wall,
                kind=EventKind.BLOCK,
                dpid=dpid,
                ip=block.prefix,
                port=None,
                reason=block.reason,
            )
        )
        log.info(
            "dpid %s: blocked new connections of %s until %.0f: %s",
            dpid,
            block.prefix,
            block.expires,
            block.reason,
        )
        if not up:
            return None
        self.prefixes.installed[(dpid, block.prefix)] = now.mono
        return block

    def covering(self, dpid: str, client: Client) -> PrefixBlock | None:
        """The prefix block ``client`` falls in, if any."""
        return self.prefixes.covering(dpid, client.ip)

    def heal_due(self, block: PrefixBlock, now: Instant, *, up: bool) -> bool:
        """Whether a packet-in through ``block`` should re-add its flows now (lost or not in yet).

        At most once per ``REINSTALL_GAP_S``; not for a block about to expire.
        """
        key = (block.dpid, block.prefix)
        if (
            not up
            or block.remaining(now.wall) < 1
            or now.mono - self.prefixes.installed.get(key, float("-inf")) < REINSTALL_GAP_S
        ):
            return False
        self.prefixes.installed[key] = now.mono
        return True

    def restore(self, dpid: str, now: Instant) -> list[PrefixBlock]:
        """A (re)connected switch: its prefix blocks to reinstall with their remaining time."""
        again = []
        for block in self.prefixes.active(dpid):
            if block.remaining(now.wall) >= 1:
                self.prefixes.installed[(dpid, block.prefix)] = now.mono
                again.append(block)
        return again

    def expire(self, now: Instant) -> list[PrefixBlock]:
        """End prefix blocks whose time is up (history, count); the ones ended."""
        gone = self.prefixes.pop_expired(now.wall)
        for block in gone:
            self._ended(block, UnblockReason.EXPIRED, now, "hard_timeout")
        return gone

    def stop(self, dpid: str, now: Instant) -> None:
        """The module was disabled on ``dpid`` (the dispatcher deletes our flows)."""
        for block in self.prefixes.forget_switch(dpid):
            self._ended(block, UnblockReason.STOPPED, now, "module disabled on the switch")

    def _ended(self, block: PrefixBlock, reason: UnblockReason, now: Instant, detail: str) -> None:
        self.unblocks_total[reason.value] += 1
        self.history.record(
            HistoryEvent(
                at=now.wall,
                kind=EventKind.UNBLOCK,
                dpid=block.dpid,
                ip=block.prefix,
                port=None,
                reason=f"{reason.value}: {detail}",
            )
        )
        log.info(
            "dpid %s: prefix %s unblocked (%s: %s)", block.dpid, block.prefix, reason.value, detail
        )
