"""Bookkeeping of blocks: which connections and addresses are blocked, persisted and counted.

A block is one drop flow per XMPP port with a hard timeout, so the switch ends it
even while the controller is away; the record (persisted in the store) keeps its
wall-clock expiry, so a restart or reconnect reinstalls it with the REMAINING time.
Blocking a target already blocked extends that block (history ``extend``, not
counted again). Every block and unblock is counted here and recorded in the
history; a block the switch refused is rolled back (history ``block_failed``, no
unblock counted) and backs off before the next try.

Pure bookkeeping: which flows a block means is :mod:`.enforcement`'s, when to
block is :mod:`.policy`'s.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.history import History
from napps.xmpp_ofc.rate_limiter.monitors import is_stale
from napps.xmpp_ofc.rate_limiter.records import (
    BlockRecord,
    EventKind,
    HistoryEvent,
    LimiterStore,
    UnblockReason,
)
from napps.xmpp_ofc.rate_limiter.state import (
    REINSTALL_GAP_S,
    RETRY_MAX_S,
    Backoff,
    Instant,
    Monitored,
    back_off,
    backing_off,
    last_bytes,
    last_packets,
)

log = logging.getLogger(__name__)


class _SwitchBlocks:
    __slots__ = ("backoff", "blocks", "by_address", "healed", "installed")

    def __init__(self) -> None:
        self.blocks: dict[Client, BlockRecord] = {}
        #: Monotonic time of each block's last install (stale FLOW_REMOVED detection)
        #: and of its last self-healing re-install.
        self.installed: dict[Client, float] = {}
        self.healed: dict[Client, float] = {}
        #: Per-connection blocks by address (reconnect detection without a scan of
        #: every block per packet-in).
        self.by_address: dict[str, set[Client]] = {}
        #: Clients whose drop flow the switch refused lately (OFPT_ERROR).
        self.backoff: dict[Client, Backoff] = {}

    def put(self, target: Client, record: BlockRecord) -> None:
        self.blocks[target] = record
        if target.port is not None:
            self.by_address.setdefault(target.ip, set()).add(target)

    def drop(self, target: Client) -> BlockRecord | None:
        record = self.blocks.pop(target, None)
        targets = self.by_address.get(target.ip)
        if targets is not None:
            targets.discard(target)
            if not targets:
                del self.by_address[target.ip]
        self.installed.pop(target, None)
        self.healed.pop(target, None)
        return record


class BlockBook:
    """The active blocks of every switch, their counts and their history events."""

    def __init__(self, history: History, store: LimiterStore | None = None) -> None:
        self.history = history
        self.store = store
        self._switches: dict[str, _SwitchBlocks] = {}
        self.blocks_total: Counter[str] = Counter()  # "auto" / "manual" / "reconnect" / ...
        self.unblocks_total: Counter[str] = Counter()  # by UnblockReason

    def _of(self, dpid: str) -> _SwitchBlocks:
        found = self._switches.get(dpid)
        if found is None:
            found = self._switches[dpid] = _SwitchBlocks()
        return found

    # --- reading -------------------------------------------------------------------------

    def active(self, dpid: str) -> list[tuple[Client, BlockRecord]]:
        """(target, record) of every block on ``dpid``, in the order they were made."""
        found = self._switches.get(dpid)
        return [] if found is None else list(found.blocks.items())

    def rows(self, dpid: str) -> list[dict[str, Any]]:
        """The switch's blocks, oldest first, as JSON (REST)."""
        return [
            b.to_json() for b in sorted((b for _, b in self.active(dpid)), key=lambda b: b.since)
        ]

    def count(self, dpid: str) -> int:
        """Blocks on ``dpid``."""
        found = self._switches.get(dpid)
        return 0 if found is None else len(found.blocks)

    def get(self, dpid: str, target: Client) -> BlockRecord | None:
        """The block of exactly ``target`` (a connection, or an address with port None)."""
        found = self._switches.get(dpid)
        return None if found is None else found.blocks.get(target)

    def covering(self, dpid: str, client: Client) -> BlockRecord | None:
        """The block that drops ``client``'s packets: its own, or its whole address's."""
        found = self._switches.get(dpid)
        if found is None or not found.blocks:
            return None
        return found.blocks.get(client) or found.blocks.get(Client(client.ip, None))

    def auto_block_of_address(self, dpid: str, client: Client, now: Instant) -> BlockRecord | None:
        """The automatic block of another connection of ``client``'s address, if any.

        Manual per-connection blocks do not count: an operator who blocks one
        connection chose that connection (the whole address is a port-less block).
        Of several, the one that ends last.
        """
        found = self._switches.get(dpid)
        targets = None if found is None else found.by_address.get(client.ip)
        if not targets:
            return None
        last = None
        for target in targets:
            block = found.blocks.get(target)  # type: ignore[union-attr]
            if block is None or block.manual or target == client or block.remaining(now.wall) < 1:
                continue
            if last is None or block.expires > last.expires:
                last = block
        return last

    def backing_off(self, dpid: str, target: Client, now: Instant) -> bool:
        """True while ``target``'s refused drop flow must not be asked for again."""
        found = self._switches.get(dpid)
        return found is not None and backing_off(found.backoff, target, now)

    # --- changes -------------------------------------------------------------------------

    def start(
        self,
        target: Client,
        record: BlockRecord,
        *,
        now: Instant,
        monitored: Monitored | None = None,
        count_as: str | None = None,
    ) -> bool:
        """Record a block (persisted, counted, history); True when it extends one."""
        switch = self._of(record.dpid)
        # Blocking a target that is already blocked extends that block: one block, one count.
        extends = target in switch.blocks
        switch.put(target, record)
        if not extends:
            self.blocks_total[count_as or ("manual" if record.manual else "auto")] += 1
        if self.store is not None:
            self.store.save_block(record)
        self.history.record(
            HistoryEvent(
                at=now.wall,
                kind=EventKind.EXTEND if extends else EventKind.BLOCK,
                dpid=record.dpid,
                ip=target.ip,
                port=target.port,
                reason=record.reason,
                manual=record.manual,
                packets_per_min=record.packets_per_min,
                payload_bytes_per_min=record.payload_bytes_per_min,
                packet_count=last_packets(monitored),
                byte_count=last_bytes(monitored),
            )
        )
        log.info(
            "dpid %s: %s %s until %.0f: %s",
            record.dpid,
            "block extended for" if extends else "blocked",
            target,
            record.expires,
            record.reason,
        )
        return extends

    def installed(self, dpid: str, target: Client, now: Instant) -> None:
        """Its drop flows were (re)sent now."""
        switch = self._of(dpid)
        switch.installed[target] = now.mono
        switch.healed[target] = now.mono

    def heal_due(self, block: BlockRecord, now: Instant) -> bool:
        """Whether a packet-in through ``block`` should re-add its drop flows now.

        At most once per REINSTALL_GAP_S, and not for a block about to expire (the
        timer or FLOW_REMOVED ends it).
        """
        target = Client(block.ip, block.port)
        switch = self._of(block.dpid)
        if now.mono - switch.healed.get(target, -math.inf) < REINSTALL_GAP_S:
            return False
        return block.remaining(now.wall) >= 1

    def end(self, block: BlockRecord, reason: UnblockReason, now: Instant, detail: str) -> None:
        """The block is over: forgotten, counted by ``reason``, recorded."""
        target = Client(block.ip, block.port)
        found = self._switches.get(block.dpid)
        if found is not None:
            found.drop(target)
        self.unblocks_total[reason.value] += 1
        if self.store is not None:
            self.store.delete_block(block.dpid, block.ip, block.port)
        self.history.record(
            HistoryEvent(
                at=now.wall,
                kind=EventKind.UNBLOCK,
                dpid=block.dpid,
                ip=block.ip,
                port=block.port,
                reason=f"{reason.value}: {detail}",
                manual=reason is UnblockReason.MANUAL,
            )
        )
        log.info("dpid %s: unblocked %s (%s: %s)", block.dpid, target, reason.value, detail)

    def removal_ends(
        self, dpid: str, client: Client, age: float, now: Instant
    ) -> BlockRecord | None:
        """The block a hard-timeout FLOW_REMOVED of ``client`` ends, if any (not stale)."""
        found = self._switches.get(dpid)
        if found is None:
            return None
        block = found.blocks.get(client)
        installed = found.installed.get(client)
        if block is None or (installed is not None and is_stale(age, installed, now)):
            return None
        return block

    def roll_back(
        self, dpid: str, client: Client, why: str, now: Instant
    ) -> tuple[BlockRecord, Backoff] | None:
        """The switch refused ``client``'s drop flow: it is NOT blocked.

        The block goes without an unblock being counted (history ``block_failed``)
        and ``client`` is not blocked again before a backoff (10 s, doubling).
        None when there was no such block (rolled back already: another XMPP port's
        drop flow of the same block).
        """
        switch = self._switches.get(dpid)
        if switch is None or client not in switch.blocks:
            return None
        block = switch.drop(client)
        if self.store is not None:
            self.store.delete_block(dpid, client.ip, client.port)
        retry = back_off(switch.backoff, client, now)
        self.history.record(
            HistoryEvent(
                at=now.wall,
                kind=EventKind.BLOCK_FAILED,
                dpid=dpid,
                ip=client.ip,
                port=client.port,
                reason=f"block failed: {why}",
                manual=block.manual,
                packets_per_min=block.packets_per_min,
                payload_bytes_per_min=block.payload_bytes_per_min,
            )
        )
        log.warning(
            "dpid %s: %s is NOT blocked (%s); not blocked again for %.0f s",
            dpid,
            client,
            why,
            retry.delay,
        )
        return block, retry

    def expire_backoffs(self, now: Instant) -> None:
        """A client quiet for long enough starts over at its next refusal."""
        for switch in self._switches.values():
            table = switch.backoff
            for client in [c for c, b in table.items() if now.mono > b.retry_at + RETRY_MAX_S]:
                del table[client]

    def now_whitelisted(self, dpid: str, whitelisted: Callable[[str], bool]) -> list[BlockRecord]:
        """Blocks of addresses the whitelist covers now (the caller ends them)."""
        return [block for _, block in self.active(dpid) if whitelisted(block.ip)]

    def load(self, now: Instant) -> list[str]:
        """Take the stored blocks back (controller start); the dpids they are on.

        Blocks that expired while the controller was down end here, counted and
        recorded; the others wait for their switch (reinstalled with the time left).
        """
        if self.store is None:
            return []
        dpids = []
        for block in self.store.load_blocks():
            if block.remaining(now.wall) <= 0:
                self.end(block, UnblockReason.EXPIRED, now, "expired while controller down")
                continue
            self._of(block.dpid).put(Client(block.ip, block.port), block)
            dpids.append(block.dpid)
        return dpids

    def forget_switch(self, dpid: str) -> list[BlockRecord]:
        """The module was disabled on ``dpid``: its blocks, for the caller to end."""
        found = self._switches.get(dpid)
        return [] if found is None else list(found.blocks.values())

    def drop_switch(self, dpid: str) -> None:
        """Forget ``dpid``'s tables (after its blocks were ended)."""
        self._switches.pop(dpid, None)


def reconnect_block(
    dpid: str, client: Client, server_port: int, sibling: BlockRecord, now: Instant
) -> BlockRecord:
    """Block a new connection of a blocked address until the sibling's block ends.

    Same expiry as the block it tried to escape, so reconnecting never extends
    (nor shortens) the penalty.
    """
    return BlockRecord(
        dpid=dpid,
        ip=client.ip,
        port=client.port,
        server_ports=(server_port,),
        since=now.wall,
        expires=sibling.expires,
        reason=f"reconnect while {Client(sibling.ip, sibling.port)} is blocked",
        manual=False,
    )
