"""Blocks: start (or extend), install with the remaining time, heal, end.

A block is one drop flow per XMPP port with a hard timeout, so the switch ends it
even while the controller is away; the record (persisted in the store) keeps its
wall-clock expiry, so a restart or reconnect reinstalls it with the REMAINING time.
Blocking a target already blocked extends that block (history ``extend``, not
counted again). Every block and unblock is counted and recorded in history.
"""

from __future__ import annotations

import logging
import math

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.records import (
    BlockRecord,
    EventKind,
    HistoryEvent,
    UnblockReason,
)
from napps.xmpp_ofc.rate_limiter.registry import SwitchRegistry
from napps.xmpp_ofc.rate_limiter.settings_model import Mode
from napps.xmpp_ofc.rate_limiter.state import (
    REINSTALL_GAP_S,
    Instant,
    Monitored,
    SwitchState,
    discard_port_block,
    last_bytes,
    last_packets,
)
from xmpp_ofc.commands import AnyCommand, DeleteFlows, InstallFlow
from xmpp_ofc.messages import FlowRemoved

log = logging.getLogger(__name__)


class BlockKeeping(SwitchRegistry):
    """The blocks of each switch, their drop flows, counts and history.

    Uses ``_forget_client`` of :class:`~.clients.ClientMonitoring` (a block's
    monitor flows go) and ``_is_stale`` for late FLOW_REMOVEDs.
    """

    def _block_covering(self, switch: SwitchState, client: Client) -> BlockRecord | None:
        if not switch.blocks:
            return None
        return switch.blocks.get(client) or switch.blocks.get(Client(client.ip, None))

    def _auto_block_of_address(
        self, switch: SwitchState, client: Client, now: Instant
    ) -> BlockRecord | None:
        """The automatic block of another connection of ``client``'s address, if any.

        Manual per-connection blocks do not count: an operator who blocks one
        connection chose that connection (the whole address is a port-less block).
        Of several, the one that ends last.
        """
        targets = switch.port_blocks.get(client.ip)
        if not targets:
            return None
        found = None
        for target in targets:
            block = switch.blocks.get(target)
            if block is None or block.manual or target == client or block.remaining(now.wall) < 1:
                continue
            if found is None or block.expires > found.expires:
                found = block
        return found

    def _blocks_reconnects(self, client: Client) -> bool:
        """Whether a reconnect of a blocked client is blocked at once (``per_ip_aggregate``).

        Off by default: behind a NAT one address is many users, and blocking every
        new connection of the address would punish the flooder's neighbours. Then
        the reconnect is monitored as a suspect instead (judged at its first poll).
        """
        settings = self.settings
        return (
            settings.per_ip_aggregate
            and settings.mode is not Mode.MONITOR
            and not settings.is_whitelisted(client.ip)
        )

    def _block_reconnect(
        self,
        dpid: str,
        switch: SwitchState,
        client: Client,
        server_port: int,
        *,
        sibling: BlockRecord,
        now: Instant,
    ) -> list[AnyCommand]:
        """Block a new connection of a blocked address until the sibling's block ends.

        Same expiry as the block it tried to escape, so reconnecting never extends
        (nor shortens) the penalty; counted as a block of kind ``reconnect``.
        """
        blocked = Client(sibling.ip, sibling.port)
        record = BlockRecord(
            dpid=dpid,
            ip=client.ip,
            port=client.port,
            server_ports=(server_port,),
            since=now.wall,
            expires=sibling.expires,
            reason=f"reconnect while {blocked} is blocked",
            manual=False,
        )
        return self._start_block(dpid, switch, client, record, now=now, count_as="reconnect")

    def _start_block(
        self,
        dpid: str,
        switch: SwitchState,
        target: Client,
        record: BlockRecord,
        *,
        now: Instant,
        monitored: Monitored | None = None,
        count_as: str | None = None,
    ) -> list[AnyCommand]:
        # Blocking a target that is already blocked extends that block: one block, one count.
        extends = target in switch.blocks
        switch.blocks[target] = record
        if target.port is not None:
            switch.port_blocks.setdefault(target.ip, set()).add(target)
        if not extends:
            self.blocks_total[count_as or ("manual" if record.manual else "auto")] += 1
        if self.store is not None:
            self.store.save_block(record)
        self._record(
            HistoryEvent(
                at=now.wall,
                kind=EventKind.EXTEND if extends else EventKind.BLOCK,
                dpid=dpid,
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
            dpid,
            "block extended for" if extends else "blocked",
            target,
            record.expires,
            record.reason,
        )
        commands: list[AnyCommand] = []
        if switch.up:
            commands += self._install_block(dpid, switch, target, record, now)
        # The monitor flows the block covers go: they would only count drops.
        covered = (
            [target]
            if target.port is not None
            else [c for c in switch.clients if c.ip == target.ip]
        )
        for client in covered:
            commands += self._forget_client(dpid, switch, client, delete_flow=True)
        return commands

    def _install_block(
        self, dpid: str, switch: SwitchState, target: Client, record: BlockRecord, now: Instant
    ) -> list[AnyCommand]:
        remaining = min(flows.MAX_TIMEOUT, max(1, math.ceil(record.remaining(now.wall))))
        switch.block_installed[target] = now.mono
        switch.block_healed[target] = now.mono
        return [
            InstallFlow(dpid, flow)
            for flow in flows.block_flows(target, record.server_ports, remaining)
        ]

    def _heal_block(
        self, dpid: str, switch: SwitchState, block: BlockRecord, now: Instant
    ) -> list[AnyCommand]:
        target = Client(block.ip, block.port)
        if now.mono - switch.block_healed.get(target, -math.inf) < REINSTALL_GAP_S:
            return []
        if block.remaining(now.wall) < 1:
            return []  # about to expire; the timer or FLOW_REMOVED ends it
        log.info("dpid %s: drop flow of blocked %s missing on the switch; re-adding", dpid, target)
        return self._install_block(dpid, switch, target, block, now)

    def _end_block(
        self, block: BlockRecord, reason: UnblockReason, now: Instant, detail: str
    ) -> list[AnyCommand]:
        target = Client(block.ip, block.port)
        switch = self._switches.get(block.dpid)
        if switch is not None:
            switch.blocks.pop(target, None)
            discard_port_block(switch, target)
            switch.block_installed.pop(target, None)
            switch.block_healed.pop(target, None)
        self.unblocks_total[reason.value] += 1
        if self.store is not None:
            self.store.delete_block(block.dpid, block.ip, block.port)
        self._record(
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
        return []

    def _block_removed(
        self, removed: FlowRemoved, switch: SwitchState, client: Client, age: float, now: Instant
    ) -> list[AnyCommand]:
        block = switch.blocks.get(client)
        installed = switch.block_installed.get(client)
        if block is None or (installed is not None and self._is_stale(age, installed, now)):
            return []
        commands = self._end_block(block, UnblockReason.EXPIRED, now, removed.reason.value)
        # A block has one drop flow per XMPP port; the others go now, not in a moment.
        return [*commands, DeleteFlows(removed.dpid, flows.delete_block(client))]

    def _apply_whitelist(self, dpid: str, switch: SwitchState, now: Instant) -> list[AnyCommand]:
        settings = self.settings
        for client, monitored in switch.clients.items():
            monitored.whitelisted = settings.is_whitelisted(client.ip)
        commands: list[AnyCommand] = []
        for target, block in list(switch.blocks.items()):
            if settings.is_whitelisted(block.ip):
                commands += self._end_block(block, UnblockReason.WHITELISTED, now, "whitelisted")
                if switch.up:
                    commands.append(DeleteFlows(dpid, flows.delete_block(target)))
        return commands
