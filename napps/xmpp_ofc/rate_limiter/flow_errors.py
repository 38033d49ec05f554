"""Rollback when a switch refuses one of our flows (OFPT_ERROR via flow_manager).

Our state must say what the switch really does: a refused drop flow means the
client is NOT blocked, a refused monitor means it is not monitored. Asking again at
once would only fill the log while the table stays full, so each refused client
backs off (10 s, doubling up to 300 s; :func:`~.state.back_off`).
"""

from __future__ import annotations

import logging

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.records import EventKind, HistoryEvent
from napps.xmpp_ofc.rate_limiter.registry import SwitchRegistry
from napps.xmpp_ofc.rate_limiter.state import (
    Instant,
    SwitchState,
    back_off,
    discard_port_block,
    locked,
)
from xmpp_ofc.commands import AnyCommand, DeleteFlows
from xmpp_ofc.cookies import Kind
from xmpp_ofc.flow_errors import FlowError

log = logging.getLogger(__name__)


class FlowErrorRollback(SwitchRegistry):
    """Undo the block or monitor a switch refused, and back off before the next try.

    Uses ``_forget_client`` and ``_start_monitoring`` of
    :class:`~.clients.ClientMonitoring`.
    """

    @locked
    def handle_flow_error(self, error: FlowError, now: Instant) -> list[AnyCommand]:
        """A switch refused one of our flows (OFPT_ERROR): make our state say so.

        * a drop flow: the client is NOT blocked -- the block is rolled back
          (history ``block_failed``, no unblock counted), any drop flow of it the
          switch did accept is deleted, a per-connection client is monitored again,
          and it is not blocked again before a backoff (10 s, doubling to 300 s);
        * a monitor: the client is not monitored; its next capture copy re-adds the
          monitor, but not before a backoff either;
        * a capture flow, or a refused delete: logged and counted only.

        Every error is counted by flow kind (``flow_errors_total``).
        """
        self.flow_errors_total[error.kind_name] += 1
        log.error(
            "dpid %s: switch refused %s of our %s flow %s: %s",
            error.dpid,
            error.command,
            error.kind_name,
            error.flow.get("match"),
            error.reason,
        )
        switch = self._switches.get(error.dpid)
        match = error.flow.get("match")
        found = flows.client_from_match(match) if isinstance(match, dict) else None
        if switch is None or found is None or error.command != "add":
            return []
        client, server_port = found
        if error.kind is Kind.BLOCK:
            return self._block_refused(error, switch, client, server_port, now)
        if error.kind is Kind.MONITOR and client in switch.clients:
            back_off(switch.monitor_backoff, client, now)
            return self._forget_client(error.dpid, switch, client, delete_flow=False)
        return []

    def _block_refused(
        self, error: FlowError, switch: SwitchState, client: Client, server_port: int, now: Instant
    ) -> list[AnyCommand]:
        block = switch.blocks.pop(client, None)
        if block is None:
            return []  # rolled back already (another XMPP port's drop flow of the same block)
        dpid = error.dpid
        discard_port_block(switch, client)
        switch.block_installed.pop(client, None)
        switch.block_healed.pop(client, None)
        if self.store is not None:
            self.store.delete_block(dpid, client.ip, client.port)
        retry = back_off(switch.block_backoff, client, now)
        if not block.manual:
            self.offences.pardon(client.ip)  # a block that never was is no offence
        self._record(
            HistoryEvent(
                at=now.wall,
                kind=EventKind.BLOCK_FAILED,
                dpid=dpid,
                ip=client.ip,
                port=client.port,
                reason=f"block failed: {error.reason}",
                manual=block.manual,
                packets_per_min=block.packets_per_min,
                payload_bytes_per_min=block.payload_bytes_per_min,
            )
        )
        log.warning(
            "dpid %s: %s is NOT blocked (%s); not blocked again for %.0f s",
            dpid,
            client,
            error.reason,
            retry.delay,
        )
        commands: list[AnyCommand] = []
        if switch.up:
            # Drop flows of the same block on other XMPP ports may have been accepted.
            commands.append(DeleteFlows(dpid, flows.delete_block(client)))
            if client.port is not None and client not in switch.clients:
                commands += self._start_monitoring(dpid, switch, client, server_port, now)
        return commands
