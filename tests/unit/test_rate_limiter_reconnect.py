"""A blocked client that reconnects from a new source port must not escape (DESIGN section 5).

With ``per_ip_aggregate`` the new connection is blocked at its first packet until
the block it tried to escape ends; without it (the NAT-safe default) the new
connection is monitored as a suspect and judged at its first poll.
"""

from __future__ import annotations

from test_rate_limiter_helpers import DPID, at, packet_in, removed, stats, stats_entry

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.limiter import RateLimiter
from napps.xmpp_ofc.rate_limiter.settings_model import LimiterSettings
from xmpp_ofc import cookies
from xmpp_ofc.commands import InstallFlow
from xmpp_ofc.cookies import Kind
from xmpp_ofc.messages import FlowRemovedReason

SPAMMER = Client.of("10.0.0.7", 40001)
RECONNECT = Client.of("10.0.0.7", 40009)
CHAT_BYTES = 66 + 300


def blocked_spammer(**settings) -> RateLimiter:
    """SPAMMER auto-blocked at t=70 for 60 s (600 chat packets in a minute).

    ``sustain_s`` 0: blocked at its first dry poll, so the times here stay simple.
    """
    limiter = RateLimiter(LimiterSettings(sustain_s=0, **settings))
    limiter.restore(DPID, at(0))
    limiter.handle_packet_in(packet_in(SPAMMER.ip, SPAMMER.port), at(0))
    limiter.handle_flow_stats(stats(stats_entry(SPAMMER, 5, 500, 10.0)), at(10))
    limiter.handle_flow_stats(
        stats(stats_entry(SPAMMER, 605, 500 + 600 * CHAT_BYTES, 70.0)), at(70)
    )
    assert [(b["ip"], b["port"]) for b in limiter.blocked()] == [(SPAMMER.ip, SPAMMER.port)]
    return limiter


def flow_kinds(commands: list) -> list[Kind]:
    return [cookies.decode(c.flow["cookie"]).kind for c in commands]


def test_with_per_ip_aggregate_a_reconnect_is_blocked_at_once_until_the_block_ends() -> None:
    limiter = blocked_spammer(per_ip_aggregate=True)
    commands = limiter.handle_packet_in(packet_in(RECONNECT.ip, RECONNECT.port), at(80))
    assert all(isinstance(c, InstallFlow) for c in commands)
    assert flow_kinds(commands) == [Kind.BLOCK]
    assert commands[0].flow["match"]["tp_src"] == RECONNECT.port
    assert commands[0].flow["hard_timeout"] == 50  # what the first block has left
    blocks = {b["port"]: b for b in limiter.blocked()}
    assert set(blocks) == {SPAMMER.port, RECONNECT.port}
    assert blocks[RECONNECT.port]["expires"] == blocks[SPAMMER.port]["expires"]
    assert blocks[RECONNECT.port]["reason"] == "reconnect while 10.0.0.7:40001 is blocked"
    assert limiter.monitored() == []
    assert limiter.status()["blocks_total"] == {"auto": 1, "reconnect": 1}
    assert limiter.history()[-1]["kind"] == "block"
    # A third connection is caught the same way; the penalty is not extended.
    third = limiter.handle_packet_in(packet_in(RECONNECT.ip, 40010), at(90))
    assert flow_kinds(third) == [Kind.BLOCK] and third[0].flow["hard_timeout"] == 40


def test_another_address_and_a_manual_block_do_not_block_new_connections() -> None:
    limiter = blocked_spammer(per_ip_aggregate=True)
    other = limiter.handle_packet_in(packet_in("10.0.0.8", 40001), at(80))
    assert flow_kinds(other) == [Kind.MONITOR]
    limiter.unblock(DPID, SPAMMER.ip, SPAMMER.port, at(81))
    limiter.block(DPID, SPAMMER.ip, SPAMMER.port, duration=60, reason="by hand", now=at(82))
    commands = limiter.handle_packet_in(packet_in(RECONNECT.ip, RECONNECT.port), at(83))
    assert flow_kinds(commands) == [Kind.MONITOR]


def test_after_the_block_ended_a_new_connection_is_an_ordinary_client() -> None:
    limiter = blocked_spammer(per_ip_aggregate=True)
    block_flow = flows.block_flows(SPAMMER, [5222], 60)[0]
    limiter.handle_flow_removed(removed(block_flow, FlowRemovedReason.HARD_TIMEOUT, 60), at(130))
    assert limiter.blocked() == []
    commands = limiter.handle_packet_in(packet_in(RECONNECT.ip, RECONNECT.port), at(131))
    assert flow_kinds(commands) == [Kind.MONITOR]
