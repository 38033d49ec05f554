"""Issue 13, item 6: the protected XMPP server's own addresses are never blocked.

By hand (InvalidRequestError: a REST 400, nothing changed) when they are in the
``protected_addresses`` setting or were learned as the destination of capture
packet-ins; automatically (flagged instead) when they are in the setting, and so
are addresses that are never a client (loopback...). A learned address exempts
nobody from the automatic policy: any client could make any address "a server"
by connecting to it.
"""

from __future__ import annotations

import pytest
from test_rate_limiter_helpers import (
    DPID,
    SERVER_V4,
    at,
    capture_cookie,
    packet_in,
    stats,
    stats_entry,
)

from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.limiter import InvalidRequestError, RateLimiter
from napps.xmpp_ofc.rate_limiter.server_addresses import ServerAddresses
from napps.xmpp_ofc.rate_limiter.settings_model import LimiterSettings, SettingsError
from xmpp_ofc.commands import InstallFlow
from xmpp_ofc.cookies import Kind, decode
from xmpp_ofc.messages import DecodedPacketIn, PacketInReason
from xmpp_ofc.packet import TCP_SYN
from xmpp_ofc.testing import frames

SERVER = "10.0.0.1"
FLOODER = Client("10.0.0.7", 40001)


def limiter(**settings) -> RateLimiter:
    settings.setdefault("sustain_s", 0)
    result = RateLimiter(LimiterSettings(**settings))
    result.restore(DPID, at(0))
    return result


def flood(limit: RateLimiter, client: Client) -> list:
    """Monitor ``client`` and have it send 20 msg/s for a minute: far over its allowance."""
    limit.handle_packet_in(packet_in(client.ip, client.port), at(0))
    limit.handle_flow_stats(stats(stats_entry(client, 5, 500, 10.0)), at(10))
    return limit.handle_flow_stats(
        stats(stats_entry(client, 5 + 1200, 500 + 1200 * 206, 70.0)), at(70)
    )


def packet_to(destination: str, *, src: str) -> DecodedPacketIn:
    """A capture packet-in of a SYN from ``src`` to ``destination``:5222."""
    data = frames.tcp4_frame(
        eth_src="02:00:00:00:00:02",
        eth_dst="02:00:00:00:00:01",
        ip_src=src,
        ip_dst=destination,
        tp_src=40000,
        tp_dst=5222,
        flags=TCP_SYN,
    )
    return DecodedPacketIn.from_frame(
        dpid=DPID, in_port=2, data=data, reason=PacketInReason.ACTION, cookie=capture_cookie()
    )


def blocks_installed(commands: list) -> list:
    return [
        c
        for c in commands
        if isinstance(c, InstallFlow) and decode(c.flow["cookie"]).kind is Kind.BLOCK
    ]


# --- the setting ---------------------------------------------------------------------------


def test_protected_addresses_are_canonical_single_addresses() -> None:
    settings = LimiterSettings(protected_addresses=["10.0.0.1", "2001:db8:0::1", "10.0.0.1"])
    assert settings.protected_addresses == ("10.0.0.1", "2001:db8::1")
    assert settings.to_json()["protected_addresses"] == ["10.0.0.1", "2001:db8::1"]
    assert settings.is_protected("2001:db8::1") and not settings.is_protected("10.0.0.2")


@pytest.mark.parametrize(
    "value",
    ["10.0.0.1", ["10.0.0.0/24"], ["fe80::1%eth0"], ["server"], [1], ["10.0.0.1"] * 0 + [""]],
)
def test_a_bad_protected_address_is_refused_naming_the_setting(value) -> None:
    with pytest.raises(SettingsError, match="protected_addresses"):
        LimiterSettings(protected_addresses=value)


def test_at_most_64_protected_addresses() -> None:
    with pytest.raises(SettingsError, match="at most 64"):
        LimiterSettings(protected_addresses=[f"10.0.1.{n}" for n in range(65)])


# --- learned from capture packet-ins ----------------------------------------------------------


def test_destinations_are_learned_unless_they_are_clients() -> None:
    servers = ServerAddresses(max_learned=2)
    servers.observe("10.0.0.7", SERVER)
    assert SERVER in servers and "10.0.0.7" not in servers
    servers.observe(SERVER, "10.0.0.9")  # the "server" connects as a client: it is not one
    assert SERVER not in servers
    servers.observe("10.0.0.8", SERVER)
    assert SERVER not in servers  # remembered as a client: not learned again
    servers.observe("10.0.0.8", "10.0.0.20")
    servers.observe("10.0.0.8", "10.0.0.21")  # full (10.0.0.9 and .20): first come, first kept
    assert servers.learned() == ["10.0.0.9", "10.0.0.20"] and servers.overflow == 1


def test_client_memory_is_bounded() -> None:
    servers = ServerAddresses(max_clients=2)
    for n in range(3):
        servers.observe(f"10.0.0.{n}", None)
    servers.observe("10.0.0.99", "10.0.0.0")  # forgotten as a client: may be learned again
    assert "10.0.0.0" in servers


# --- manual blocks -----------------------------------------------------------------------------


@pytest.mark.parametrize("port", [None, 5000])
def test_manual_block_of_a_protected_address_is_refused_and_changes_nothing(port) -> None:
    limit = limiter(protected_addresses=[SERVER])
    with pytest.raises(InvalidRequestError, match=r"10\.0\.0\.1 is an address of the protected"):
        limit.block(DPID, SERVER, port, duration=30, reason="x", now=at(1))
    assert limit.blocked() == [] and limit.history() == []


def test_manual_block_of_the_learned_server_is_refused() -> None:
    limit = limiter()
    limit.handle_packet_in(packet_in(FLOODER.ip, FLOODER.port), at(1))  # to SERVER_V4
    with pytest.raises(InvalidRequestError, match="destination of capture packet-ins"):
        limit.block(DPID, SERVER_V4, None, duration=30, reason="x", now=at(2))
    assert limit.blocked() == []
    limit.block(DPID, FLOODER.ip, None, duration=30, reason="x", now=at(2))  # clients still can
    assert len(limit.blocked()) == 1


# --- the automatic policy ------------------------------------------------------------------------


def test_a_protected_address_that_floods_is_flagged_not_blocked() -> None:
    limit = limiter(protected_addresses=[FLOODER.ip])
    assert blocks_installed(flood(limit, FLOODER)) == []
    (flag,) = limit.history()
    assert flag["kind"] == "flag" and flag["reason"].endswith("(protected XMPP server address)")
    assert limit.blocked() == []


def test_a_loopback_source_that_floods_is_flagged_not_blocked() -> None:
    limit = limiter()
    assert blocks_installed(flood(limit, Client("127.0.0.1", 40001))) == []
    assert limit.history()[0]["reason"].endswith("(loopback address)")


def test_a_learned_address_is_no_shield_from_the_automatic_policy() -> None:
    """A client sends one SYN to its accomplice's address first: the accomplice is still blocked."""
    limit = limiter()
    accomplice = Client("10.0.0.66", 40001)
    limit.handle_packet_in(packet_to(accomplice.ip, src="10.0.0.65"), at(0))
    assert accomplice.ip in limit.servers
    assert blocks_installed(flood(limit, accomplice)) != []
    assert accomplice.ip not in limit.servers


def test_a_connection_flood_from_a_protected_address_or_its_prefix_is_not_blocked() -> None:
    limit = limiter(protected_addresses=[FLOODER.ip])
    commands = []
    for n in range(300):  # 300 SYNs in 3 s from one address, and from its /24
        commands += limit.handle_packet_in(packet_in(FLOODER.ip, 20000 + n), at(n / 100))
        commands += limit.handle_packet_in(
            packet_in(f"10.0.0.{n % 200 + 10}", 20000 + n), at(n / 100)
        )
    assert blocks_installed(commands) == []
    assert limit.status()["prefix_blocks"] == []
    assert not [b for b in limit.blocked() if b["ip"] == FLOODER.ip]


def test_protecting_a_blocked_address_lifts_its_block() -> None:
    limit = limiter()
    assert blocks_installed(flood(limit, FLOODER)) != []
    _, commands = limit.update_settings({"protected_addresses": [FLOODER.ip]}, at(80))
    assert limit.blocked() == []
    assert limit.status()["unblocks_total"] == {"protected": 1}
    assert limit.history()[-1]["reason"] == "protected: protected_addresses"
    assert [type(c).__name__ for c in commands] == ["DeleteFlows"]


def test_address_totals_never_block_a_protected_address() -> None:
    limit = aggregating(protected_addresses=[FLOODER.ip])
    clients = [Client(FLOODER.ip, 40001 + n) for n in range(3)]
    for client in clients:
        limit.handle_packet_in(packet_in(client.ip, client.port), at(0))
    limit.handle_flow_stats(stats(*(stats_entry(c, 5, 500, 10.0) for c in clients)), at(10))
    commands = limit.handle_flow_stats(
        stats(*(stats_entry(c, 5 + 1800, 500 + 1800 * 206, 70.0) for c in clients)), at(70)
    )
    assert blocks_installed(commands) == [] and limit.blocked() == []


def aggregating(**settings) -> RateLimiter:
    """Each connection within its allowance (30 msg/s of 100), the address over 50 msg/s."""
    return limiter(
        per_ip_aggregate=True,
        message_rate_per_s=100,
        message_burst=1000,
        payload_rate_bps=100_000,
        **settings,
    )
