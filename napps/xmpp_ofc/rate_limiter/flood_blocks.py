"""Turn connection-guard decisions into address blocks (issue 14, item 5).

Kept out of limiter.py so the rate limiter's restructuring and this path merge
apart: the limiter calls :func:`on_new_connection` once per capture packet-in of a
client it neither monitors nor blocks. Only TCP SYNs count (a new connection).

An address decision becomes the existing per-address aggregate block (drop flows
matching ip src + tcp dst, table 0, priority above monitor and capture, hard
timeout), recorded in the history and counted as ``connection_flood``. Prefix
decisions are logged and counted by the guard but not yet enforced in the switch
(the block flows match single addresses today). Monitor mode and whitelisted
addresses are never blocked.
"""

from __future__ import annotations

import logging
from typing import Any

from napps.xmpp_ofc.rate_limiter.connection_guard import ConnectionGuard, Scope
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.records import BlockRecord
from napps.xmpp_ofc.rate_limiter.settings_model import Mode
from xmpp_ofc.commands import AnyCommand
from xmpp_ofc.messages import DecodedPacketIn
from xmpp_ofc.packet import TCP_SYN

log = logging.getLogger(__name__)


def on_new_connection(
    limiter: Any, switch: Any, packet_in: DecodedPacketIn, client: Client, *, now: Any
) -> list[AnyCommand]:
    """Count a new connection; the commands of the blocks it triggers (often none)."""
    dpid = packet_in.dpid
    if not packet_in.packet.has_tcp_flag(TCP_SYN):
        return []
    guard: ConnectionGuard = limiter.connection_guard
    commands: list[AnyCommand] = []
    for decision in guard.observe(dpid, client.ip, now.mono):
        settings = limiter.settings
        if decision.scope is Scope.PREFIX:
            log.warning("dpid %s: %s (prefix blocks not enforced)", dpid, decision.reason)
            continue
        if settings.mode is Mode.MONITOR or settings.is_whitelisted(client.ip):
            log.warning("dpid %s: %s (not blocked: monitor mode/whitelist)", dpid, decision.reason)
            continue
        record = BlockRecord(
            dpid=dpid,
            ip=client.ip,
            port=None,
            server_ports=tuple(sorted(set(settings.xmpp_ports))),
            since=now.wall,
            expires=now.wall + decision.duration_s,
            reason=decision.reason,
            manual=False,
        )
        target = Client(client.ip, None)
        commands += limiter._start_block(
            dpid, switch, target, record, now=now, count_as="connection_flood"
        )
    return commands
