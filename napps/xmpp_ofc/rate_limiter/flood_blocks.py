"""Turn connection-guard decisions into blocks in the switch (issue 14, item 5).

Kept out of limiter.py so the rate limiter's restructuring and this path merge
apart: the limiter calls :func:`on_new_connection` once per capture packet-in of a
client it neither monitors nor blocks (only TCP SYNs count: a new connection), and
:func:`heal_prefix_block` / :func:`restore_prefix_blocks` /
:func:`expire_prefix_blocks` / :func:`stop_prefix_blocks` from its packet-in,
restore, timer and stop.

* An **address** decision becomes the existing per-address aggregate block (drop
  flows matching ip src + tcp dst, table 0, priority 300 above monitor and
  capture, hard timeout), recorded in the history and counted as
  ``connection_flood``.
* A **prefix** decision (/24 or /64, a higher threshold) becomes a prefix block
  (:mod:`.prefix_blocks`: drop flows on ip src = prefix at priority 175, so only the
  prefix's *new* connections are dropped), recorded in the history with the prefix
  as ``ip`` and counted as ``connection_flood_prefix``.

Monitor mode and whitelisted addresses (or prefixes overlapping the whitelist) are
never blocked; the decision is logged instead.
"""

from __future__ import annotations

import logging
from typing import Any

from napps.xmpp_ofc.rate_limiter.connection_guard import ConnectionGuard, FloodDecision, Scope
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.prefix_blocks import (
    PrefixBlock,
    PrefixBlocks,
    delete_prefix_block,
    overlaps_whitelist,
    prefix_block_flows,
)
from napps.xmpp_ofc.rate_limiter.records import (
    BlockRecord,
    EventKind,
    HistoryEvent,
    UnblockReason,
)
from napps.xmpp_ofc.rate_limiter.settings_model import Mode
from napps.xmpp_ofc.rate_limiter.state import REINSTALL_GAP_S
from xmpp_ofc.commands import AnyCommand, DeleteFlows, InstallFlow
from xmpp_ofc.messages import DecodedPacketIn
from xmpp_ofc.packet import TCP_SYN

log = logging.getLogger(__name__)

#: ``blocks_total`` kinds.
ADDRESS_KIND = "connection_flood"
PREFIX_KIND = "connection_flood_prefix"


def on_new_connection(
    limiter: Any, switch: Any, packet_in: DecodedPacketIn, client: Client, *, now: Any
) -> list[AnyCommand]:
    """Count a new connection; the commands of the blocks it triggers (often none)."""
    if not packet_in.packet.has_tcp_flag(TCP_SYN):
        return []
    guard: ConnectionGuard = limiter.connection_guard
    commands: list[AnyCommand] = []
    for decision in guard.observe(packet_in.dpid, client.ip, now.mono):
        if decision.scope is Scope.PREFIX:
            commands += _block_prefix(limiter, switch, decision, now)
        else:
            commands += _block_address(limiter, switch, decision, client, now)
    return commands


def _block_address(
    limiter: Any, switch: Any, decision: FloodDecision, client: Client, now: Any
) -> list[AnyCommand]:
    settings = limiter.settings
    if settings.mode is Mode.MONITOR or settings.is_whitelisted(client.ip):
        log.warning(
            "dpid %s: %s (not blocked: monitor mode/whitelist)", decision.dpid, decision.reason
        )
        return []
    record = BlockRecord(
        dpid=decision.dpid,
        ip=client.ip,
        port=None,
        server_ports=tuple(sorted(set(settings.xmpp_ports))),
        since=now.wall,
        expires=now.wall + decision.duration_s,
        reason=decision.reason,
        manual=False,
    )
    target = Client(client.ip, None)
    return limiter._start_block(
        decision.dpid, switch, target, record, now=now, count_as=ADDRESS_KIND
    )


def _block_prefix(limiter: Any, switch: Any, decision: FloodDecision, now: Any) -> list[AnyCommand]:
    settings = limiter.settings
    dpid = decision.dpid
    if settings.mode is Mode.MONITOR or overlaps_whitelist(decision.target, settings.whitelist):
        log.warning("dpid %s: %s (not blocked: monitor mode/whitelist)", dpid, decision.reason)
        return []
    blocks: PrefixBlocks = limiter.prefix_blocks
    block = PrefixBlock(
        dpid=dpid,
        prefix=decision.target,
        server_ports=tuple(sorted(set(settings.xmpp_ports))),
        since=now.wall,
        expires=now.wall + decision.duration_s,
        reason=decision.reason,
    )
    if not blocks.start(block):
        log.warning(
            "dpid %s: %s (not blocked: %d prefix blocks on the switch already)",
            dpid,
            decision.reason,
            blocks.max_per_switch,
        )
        return []
    limiter.blocks_total[PREFIX_KIND] += 1
    limiter._record(
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
    if not switch.up:
        return []
    blocks.installed[(dpid, block.prefix)] = now.mono
    return [InstallFlow(dpid, flow) for flow in prefix_block_flows(block, now.wall)]


def heal_prefix_block(limiter: Any, switch: Any, dpid: str, client: Client, now: Any):
    """None if no prefix block covers ``client``; else the commands for its packet-in.

    A packet-in from a blocked prefix means its drop flows are not in the switch
    (yet, or lost): it starts no monitor, and the flows are re-added at most once
    per ``REINSTALL_GAP_S``.
    """
    blocks: PrefixBlocks = limiter.prefix_blocks
    block = blocks.covering(dpid, client.ip)
    if block is None:
        return None
    key = (dpid, block.prefix)
    if (
        not switch.up
        or block.remaining(now.wall) < 1
        or now.mono - blocks.installed.get(key, float("-inf")) < REINSTALL_GAP_S
    ):
        return []
    blocks.installed[key] = now.mono
    return [InstallFlow(dpid, flow) for flow in prefix_block_flows(block, now.wall)]


def restore_prefix_blocks(limiter: Any, dpid: str, now: Any) -> list[AnyCommand]:
    """A (re)connected switch gets its prefix blocks back with their remaining time."""
    blocks: PrefixBlocks = limiter.prefix_blocks
    commands: list[AnyCommand] = []
    for block in blocks.active(dpid):
        if block.remaining(now.wall) >= 1:
            blocks.installed[(dpid, block.prefix)] = now.mono
            commands += [InstallFlow(dpid, flow) for flow in prefix_block_flows(block, now.wall)]
    return commands


def expire_prefix_blocks(limiter: Any, now: Any) -> list[AnyCommand]:
    """End prefix blocks whose time is up: history, count, and their flows deleted.

    The switch's hard timeout removes the flows by itself; the delete covers a
    switch that missed it (it was away while the block was reinstalled later).
    """
    commands: list[AnyCommand] = []
    for block in limiter.prefix_blocks.pop_expired(now.wall):
        _ended(limiter, block, UnblockReason.EXPIRED, now, "hard_timeout")
        switch = limiter._switches.get(block.dpid)
        if switch is not None and switch.up:
            commands.append(DeleteFlows(block.dpid, delete_prefix_block(block.prefix)))
    return commands


def stop_prefix_blocks(limiter: Any, dpid: str, now: Any) -> None:
    """The module was disabled on ``dpid`` (the dispatcher deletes our flows)."""
    for block in limiter.prefix_blocks.forget_switch(dpid):
        _ended(limiter, block, UnblockReason.STOPPED, now, "module disabled on the switch")


def _ended(limiter: Any, block: PrefixBlock, reason: UnblockReason, now: Any, detail: str) -> None:
    limiter.unblocks_total[reason.value] += 1
    limiter._record(
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
