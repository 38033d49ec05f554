"""Connection-flood guard: thresholds, NAT-safety, prefixes, bounded state."""

from __future__ import annotations

import pytest

from napps.xmpp_ofc.rate_limiter.connection_guard import (
    ADDRESS_THRESHOLD,
    ConnectionGuard,
    Scope,
    prefix_of,
)


def flood(guard: ConnectionGuard, ip: str, rate: float, seconds: float, start: float = 0.0):
    decisions = []
    n = int(rate * seconds)
    for i in range(n):
        now = start + i / rate
        for d in guard.observe("dp1", ip, now):
            decisions.append((now, d))
    return decisions


def test_single_address_flood_of_200_per_s_is_blocked_within_a_second():
    decisions = flood(ConnectionGuard(), "10.0.0.9", 200, 30)
    address = [(t, d) for t, d in decisions if d.scope is Scope.ADDRESS]
    assert address, "never blocked"
    first_at, first = address[0]
    assert first_at < 1.0
    assert first.target == "10.0.0.9" and first.duration_s == 60
    assert "connection flood" in first.reason


def test_decision_is_not_repeated_within_the_block_period_but_is_after():
    guard = ConnectionGuard(block_s=20)
    decisions = [d for _, d in flood(guard, "10.0.0.9", 100, 30)]
    address = [d for d in decisions if d.scope is Scope.ADDRESS]
    assert len(address) == 2  # t~0.5 s and again after 20 s


def test_login_storm_of_50_different_clients_in_one_prefix_never_trips():
    guard = ConnectionGuard()
    for i in range(50):
        assert guard.observe("dp1", f"192.0.2.{i + 1}", i * 0.01) == []


def test_nat_address_reconnecting_at_the_threshold_is_not_blocked():
    guard = ConnectionGuard()
    # ADDRESS_THRESHOLD connections spread over one window, repeated for a minute.
    rate = ADDRESS_THRESHOLD / guard.window_s * 0.9
    assert flood(guard, "198.51.100.1", rate, 60) == []


def test_many_addresses_of_one_prefix_trip_the_prefix_only():
    guard = ConnectionGuard()
    decisions = []
    for i in range(400):
        decisions += guard.observe("dp1", f"203.0.113.{i % 250 + 1}", i * 0.01)
    assert [d.scope for d in decisions] == [Scope.PREFIX]
    assert decisions[0].target == "203.0.113.0/24"


def test_ipv6_prefix_is_a_64():
    assert prefix_of("2001:db8:1:2:3::4") == "2001:db8:1:2::/64"
    assert prefix_of("10.1.2.3") == "10.1.2.0/24"


def test_switches_are_counted_apart():
    guard = ConnectionGuard(address_threshold=3)
    for i in range(3):
        assert guard.observe("dp1", "10.0.0.1", i * 0.1) == []
        assert guard.observe("dp2", "10.0.0.1", i * 0.1) == []
    assert [d.dpid for d in guard.observe("dp1", "10.0.0.1", 0.4)] == ["dp1"]


def test_counts_decay_after_the_window():
    guard = ConnectionGuard(address_threshold=5)
    for i in range(5):
        guard.observe("dp1", "10.0.0.1", i * 0.1)
    # 25 s later (two windows), the old burst is forgotten.
    for i in range(5):
        assert guard.observe("dp1", "10.0.0.1", 25 + i * 0.1) == []


def test_spoofed_sources_grow_no_unbounded_state():
    guard = ConnectionGuard(max_entries=1000)
    for i in range(20000):
        guard.observe("dp1", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", i * 0.0001)
    assert len(guard.addresses.entries) <= 1000
    assert len(guard.prefixes.entries) <= 1000
    assert guard.evicted >= 19000


def test_flooder_keeps_its_counter_under_spoofed_noise():
    """LRU: a hot key is refreshed on every hit, so noise evicts cold keys first."""
    guard = ConnectionGuard(max_entries=50)
    blocked = []
    for i in range(2000):
        blocked += guard.observe("dp1", "10.9.9.9", i * 0.005)
        guard.observe("dp1", f"172.16.{i >> 8 & 255}.{i & 255}", i * 0.005)
    assert any(d.scope is Scope.ADDRESS and d.target == "10.9.9.9" for d in blocked)


def test_bad_address_is_ignored_and_bad_settings_raise():
    assert ConnectionGuard().observe("dp1", "not-an-ip", 0.0) == []
    with pytest.raises(ValueError):
        ConnectionGuard(address_threshold=0)
    with pytest.raises(ValueError):
        ConnectionGuard(max_entries=0)


def test_forget_switch_drops_its_counters():
    guard = ConnectionGuard()
    guard.observe("dp1", "10.0.0.1", 0.0)
    guard.observe("dp2", "10.0.0.1", 0.0)
    guard.forget_switch("dp1")
    assert {k[0] for k in guard.addresses.entries} == {"dp2"}


# --- wired into the limiter (real RateLimiter, no Kytos) ----------------------------


def _flood_limiter(ip: str, count: int, rate: float = 200.0, **settings):
    from test_rate_limiter_helpers import at, packet_in

    from napps.xmpp_ofc.rate_limiter.limiter import RateLimiter
    from napps.xmpp_ofc.rate_limiter.settings_model import LimiterSettings

    limiter = RateLimiter(LimiterSettings(**settings))
    out = []
    for i in range(count):
        out.append(limiter.handle_packet_in(packet_in(ip, 20000 + i), at(i / rate)))
    return limiter, out


def test_connection_flood_blocks_the_address_in_the_switch():
    from xmpp_ofc import cookies
    from xmpp_ofc.commands import InstallFlow
    from xmpp_ofc.cookies import Kind

    limiter, out = _flood_limiter("10.0.0.66", 200)
    blocks = [
        c.flow
        for cmds in out
        for c in cmds
        if isinstance(c, InstallFlow) and cookies.decode(c.flow["cookie"]).kind is Kind.BLOCK
    ]
    assert blocks, "connection flood not blocked"
    match = blocks[0]["match"]
    assert match["nw_src"] == "10.0.0.66" and "tp_src" not in match
    assert blocks[0]["hard_timeout"] == 60
    assert limiter.blocks_total["connection_flood"] == 1
    # Monitors stop at the block: the flood's later connections add no monitor flows.
    assert len(limiter.monitored("00:00:00:00:00:00:00:01")) == 0
    assert sum(1 for cmds in out[100:] for c in cmds if isinstance(c, InstallFlow)) <= 1


def test_connection_flood_in_monitor_mode_is_not_blocked():
    limiter, _ = _flood_limiter("10.0.0.66", 200, mode="monitor")
    assert limiter.blocks_total["connection_flood"] == 0
