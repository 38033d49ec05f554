"""Connection floods spread over one /24 or /64: prefix blocks (issue 14 item 5)."""

from __future__ import annotations

import pytest
from test_rate_limiter_helpers import DPID, at, echoed_match, packet_in

from napps.xmpp_ofc.rate_limiter.connection_guard import (
    ADDRESS_THRESHOLD,
    PREFIX_THRESHOLD,
    ConnectionGuard,
    Scope,
)
from napps.xmpp_ofc.rate_limiter.limiter import RateLimiter
from napps.xmpp_ofc.rate_limiter.prefix_blocks import (
    PrefixBlock,
    PrefixBlocks,
    overlaps_whitelist,
    prefix_block_flows,
    prefix_cookie,
)
from napps.xmpp_ofc.rate_limiter.settings_model import LimiterSettings
from xmpp_ofc import cookies, pipeline
from xmpp_ofc.commands import DeleteFlows, InstallFlow
from xmpp_ofc.cookies import Kind


def installs(commands) -> list[dict]:
    return [c.flow for c in commands if isinstance(c, InstallFlow)]


def prefix_flows(commands) -> list[dict]:
    return [f for f in installs(commands) if f["priority"] == pipeline.PRIORITY_PREFIX_BLOCK]


def spread_flood(limiter: RateLimiter, base: str, count: int, rate: float, start: float = 0.0):
    """``count`` new connections at ``rate``/s from addresses .1-.250 of ``base``.x."""
    out = []
    for i in range(count):
        ip = f"{base}.{i % 250 + 1}"
        out += limiter.handle_packet_in(packet_in(ip, 20000 + i % 40000), at(start + i / rate))
    return out


def test_prefix_threshold_is_above_the_address_threshold():
    assert PREFIX_THRESHOLD > ADDRESS_THRESHOLD


def test_one_flooding_address_never_trips_its_prefix():
    """Its connections after its own decision do not count towards the neighbours' /24."""
    guard = ConnectionGuard()
    decisions = []
    for i in range(10_000):  # 1000/s for 10 s
        decisions += guard.observe("dp1", "10.0.0.9", i / 1000)
    assert [d.scope for d in decisions] == [Scope.ADDRESS]


def test_spread_flood_blocks_the_prefix_in_the_switch():
    limiter = RateLimiter()
    limiter.restore(DPID, at(0))
    out = spread_flood(limiter, "203.0.113", 1000, 500)
    flow, *healed = prefix_flows(out)
    assert len(healed) <= 2  # re-added at most once a second while packet-ins still come
    assert flow["match"] == {
        "dl_type": 0x0800,
        "nw_src": "203.0.113.0/24",
        "nw_proto": 6,
        "tp_dst": 5222,
    }
    assert flow["instructions"] == [] and flow["hard_timeout"] == 60
    assert cookies.decode(flow["cookie"]).kind is Kind.BLOCK
    assert pipeline.PRIORITY_CAPTURE < flow["priority"] < pipeline.PRIORITY_MONITOR
    # The codec accepts the masked source (what flow_manager will send).
    assert echoed_match(flow)["nw_src"] == "203.0.113.0/24"
    assert limiter.blocks_total["connection_flood_prefix"] == 1
    assert limiter.blocks_total["connection_flood"] == 0  # 4/s per address: under its threshold
    (event,) = [e for e in limiter.history() if e["kind"] == "block"]
    assert event["ip"] == "203.0.113.0/24" and "connection flood" in event["reason"]
    (active,) = limiter.status()["prefix_blocks"]
    assert active["prefix"] == "203.0.113.0/24" and active["dpid"] == DPID
    # Monitors were only started before the decision; the flood's packet-ins that
    # still come up (the drop flow not in yet) start none and re-add the flows at
    # most once a second.
    assert len(limiter.monitored(DPID)) <= PREFIX_THRESHOLD + 1
    later = spread_flood(limiter, "203.0.113", 400, 500, start=2.0)
    assert len(limiter.monitored(DPID)) <= PREFIX_THRESHOLD + 1
    assert len(prefix_flows(later)) == 1
    assert [f for f in installs(later) if f["priority"] != pipeline.PRIORITY_PREFIX_BLOCK] == []


def test_ipv6_flood_blocks_the_64():
    limiter = RateLimiter()
    limiter.restore(DPID, at(0))
    out = []
    for i in range(400):
        ip = f"2001:db8:5:6::{i + 1:x}"
        out += limiter.handle_packet_in(packet_in(ip, 30000 + i), at(i / 200))
    flow, *_ = prefix_flows(out)
    assert flow["match"]["ipv6_src"] == "2001:db8:5:6::/64" and flow["match"]["dl_type"] == 0x86DD
    assert echoed_match(flow)["ipv6_src"].startswith("2001:0db8:0005:0006:0000")


def test_prefix_block_comes_back_on_reconnect_with_its_remaining_time_and_ends():
    limiter = RateLimiter()
    limiter.restore(DPID, at(0))
    spread_flood(limiter, "198.51.100", 400, 400)
    limiter.switch_down(DPID)
    (flow,) = prefix_flows(limiter.restore(DPID, at(21)))
    assert 38 <= flow["hard_timeout"] <= 40
    assert not [c for c in limiter.tick(at(50)) if isinstance(c, DeleteFlows)]
    deletes = [c for c in limiter.tick(at(62)) if isinstance(c, DeleteFlows)]
    (delete,) = deletes
    assert delete.flow["cookie"] == prefix_cookie("198.51.100.0/24")
    assert delete.flow["match"]["nw_src"] == "198.51.100.0/24"
    assert limiter.status()["prefix_blocks"] == []
    assert limiter.unblocks_total["expired"] == 1
    assert limiter.history()[-1]["kind"] == "unblock"
    assert limiter.history()[-1]["ip"] == "198.51.100.0/24"
    assert not prefix_flows(limiter.restore(DPID, at(63)))


def test_stop_ends_prefix_blocks():
    limiter = RateLimiter()
    limiter.restore(DPID, at(0))
    spread_flood(limiter, "198.51.100", 400, 400)
    limiter.stop(DPID, at(5))
    assert limiter.status()["prefix_blocks"] == []
    assert limiter.unblocks_total["module_stopped"] == 1


@pytest.mark.parametrize(
    "settings",
    [
        {"mode": "monitor"},
        {"whitelist": ("203.0.113.77",)},
        {"whitelist": ("203.0.0.0/16",)},
    ],
)
def test_monitor_mode_and_whitelist_never_block_a_prefix(settings):
    limiter = RateLimiter(LimiterSettings(**settings))
    limiter.restore(DPID, at(0))
    assert prefix_flows(spread_flood(limiter, "203.0.113", 1000, 500)) == []
    assert limiter.blocks_total["connection_flood_prefix"] == 0


def test_overlaps_whitelist():
    assert overlaps_whitelist("10.1.2.0/24", ["10.1.2.3/32"])
    assert overlaps_whitelist("10.1.2.0/24", ["10.0.0.0/8"])
    assert not overlaps_whitelist("10.1.2.0/24", ["10.1.3.0/24", "2001:db8::/32"])
    assert overlaps_whitelist("2001:db8:1:2::/64", ["2001:db8::/32"])


def _block(prefix: str, dpid: str = DPID) -> PrefixBlock:
    return PrefixBlock(dpid, prefix, (5222,), since=0.0, expires=60.0, reason="test")


def test_prefix_blocks_are_bounded_per_switch():
    blocks = PrefixBlocks(max_per_switch=2)
    assert blocks.start(_block("10.0.1.0/24")) and blocks.start(_block("10.0.2.0/24"))
    assert not blocks.start(_block("10.0.3.0/24"))
    assert blocks.refused == 1
    assert blocks.start(_block("10.0.1.0/24"))  # renewing one held is not a new entry
    assert blocks.start(_block("10.0.3.0/24", dpid="other"))
    assert len(blocks.all()) == 3
    with pytest.raises(ValueError):
        PrefixBlocks(max_per_switch=0)


def test_spoofed_sources_across_many_prefixes_grow_no_unbounded_state():
    """A SYN flood from 100k addresses in 100k /24s: every table stays at its bound."""
    limiter = RateLimiter(connection_guard=ConnectionGuard(max_entries=2000))
    limiter.restore(DPID, at(0))
    for i in range(100_000):
        ip = f"{10 + (i >> 16) % 200}.{i >> 8 & 255}.{i & 255}.1"
        limiter.handle_packet_in(packet_in(ip, 1024 + i % 60000), at(i / 1000))
    guard = limiter.connection_guard
    assert len(guard.addresses.entries) <= 2000 and len(guard.prefixes.entries) <= 2000
    assert limiter.status()["prefix_blocks"] == []  # one connection per /24: nothing to block
    assert len(limiter.monitored(DPID)) <= limiter.capture.max_per_switch


def test_prefix_block_flows_follow_the_remaining_time():
    block = PrefixBlock(DPID, "10.9.0.0/24", (5222, 5223), since=0.0, expires=100.0, reason="x")
    flows_now = prefix_block_flows(block, 99.5)
    assert [f["hard_timeout"] for f in flows_now] == [1, 1]
    assert sorted(f["match"]["tp_dst"] for f in flows_now) == [5222, 5223]
