"""estimation.py, polling.py and flood_blocks.py alone (no RateLimiter, no switch)."""

from __future__ import annotations

import dataclasses

import pytest
from test_rate_limiter_helpers import DPID, at, packet_in, stats_entry

from napps.xmpp_ofc.rate_limiter.connection_guard import ConnectionGuard
from napps.xmpp_ofc.rate_limiter.estimation import (
    min_window,
    monitor_entries,
    usage_since_last_poll,
)
from napps.xmpp_ofc.rate_limiter.flood_blocks import ConnectionFloods
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.history import History
from napps.xmpp_ofc.rate_limiter.polling import PollSchedule
from napps.xmpp_ofc.rate_limiter.prefix_blocks import PrefixBlocks
from napps.xmpp_ofc.rate_limiter.rates import CounterSample, RateTracker
from napps.xmpp_ofc.rate_limiter.settings_model import LimiterSettings
from xmpp_ofc import cookies
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.packet import TCP_ACK

A = Client("10.0.0.7", 40001)


# --- estimation.py ------------------------------------------------------------------------


def test_only_our_monitor_entries_are_read() -> None:
    ours = stats_entry(A, 1, 100, 1.0)
    # Another owner's flow with our kind byte (not encodable through cookies.encode).
    foreign = (Owner.L2_SWITCH << cookies.OWNER_SHIFT) | (Kind.MONITOR << cookies.KIND_SHIFT) | 1
    l2 = dataclasses.replace(ours, cookie=foreign)
    capture = dataclasses.replace(ours, cookie=cookies.encode(Owner.RATE_LIMITER, Kind.CAPTURE, 0))
    assert list(monitor_entries([l2, ours, capture])) == [ours]


def test_a_monitor_we_installed_is_judged_from_zero_at_its_first_poll() -> None:
    tracker = RateTracker()
    # Installed at t=0 (mono 1000), first polled 1.5 s later, 30 packets of 206 B.
    usage = usage_since_last_poll(
        tracker, at(0).mono, CounterSample(30, 30 * 206, 1.5, at(1.5).mono), 0.5, 66
    )
    assert (usage.packets, usage.payload_bytes, usage.elapsed) == (30, 30 * 140, 1.5)
    assert tracker.last is not None and tracker.rate is None  # the displayed rate waits


def test_an_adopted_flow_only_sets_the_baseline_then_deltas_are_judged() -> None:
    tracker = RateTracker()
    # A flow an hour old that we did not install (state lost): no whole-life average.
    first = CounterSample(10_000, 10_000 * 66, 3600.0, at(1).mono)
    assert usage_since_last_poll(tracker, at(0).mono, first, 0.5, 66) is None
    second = CounterSample(10_020, 10_020 * 66 + 20 * 140, 3601.0, at(2).mono)
    usage = usage_since_last_poll(tracker, at(0).mono, second, 0.5, 66)
    assert (usage.packets, usage.payload_bytes, usage.elapsed) == (20, 20 * 140, 1.0)


def test_a_window_shorter_than_the_minimum_keeps_the_baseline() -> None:
    tracker = RateTracker()
    usage_since_last_poll(tracker, 0.0, CounterSample(0, 0, 100.0, 1.0), 0.5, 66)
    too_soon = CounterSample(5, 5 * 200, 100.2, 1.2)
    assert usage_since_last_poll(tracker, 0.0, too_soon, 0.5, 66) is None
    later = CounterSample(10, 10 * 200, 101.0, 2.0)
    assert usage_since_last_poll(tracker, 0.0, later, 0.5, 66).packets == 10


def test_min_window_is_half_a_poll_at_most_a_second() -> None:
    assert (min_window(1.0), min_window(10.0)) == (0.5, 1.0)


# --- polling.py --------------------------------------------------------------------------------


def test_polls_are_due_every_interval_with_an_early_margin() -> None:
    polls = PollSchedule(cpu_budget=0.25)
    assert polls.due(DPID, 0.0, 1.0)
    assert not polls.due(DPID, 0.9, 1.0)
    assert polls.due(DPID, 0.96, 1.0)  # a timer 40 ms early still polls
    polls.restart(DPID)
    assert polls.due(DPID, 1.0, 1.0)


def test_a_costly_switch_is_polled_less_often_within_the_budget() -> None:
    polls = PollSchedule(cpu_budget=0.25)
    polls.record_cost(DPID, 0.8)
    assert polls.interval(DPID, 1.0) == pytest.approx(3.2)
    assert polls.interval("other", 1.0) == 1.0
    polls.forget_switch(DPID)
    assert polls.interval(DPID, 1.0) == 1.0


# --- flood_blocks.py ---------------------------------------------------------------------------


def floods(threshold: int = 3) -> tuple[ConnectionFloods, History]:
    history = History()
    guard = ConnectionGuard(address_threshold=threshold, prefix_threshold=threshold * 10)
    return ConnectionFloods(history, guard, PrefixBlocks(max_per_switch=1)), history


def syns(floods_: ConnectionFloods, ip: str, count: int, settings: LimiterSettings):
    decisions = []
    for n in range(count):
        client = Client(ip, 40000 + n)
        decisions += floods_.new_connection(
            packet_in(ip, client.port), client, at(n / 100), settings
        )
    return decisions


def test_only_syns_count_and_an_address_flood_becomes_a_whole_address_block() -> None:
    guarded, _ = floods()
    ack = packet_in(A.ip, A.port, flags=TCP_ACK)
    assert all(guarded.new_connection(ack, A, at(0), LimiterSettings()) == [] for _ in range(10))
    (decision,) = syns(guarded, A.ip, 4, LimiterSettings())
    record = guarded.address_block(decision, A, (5223, 5222, 5222), at(0))
    assert (record.port, record.server_ports, record.manual) == (None, (5222, 5223), False)


@pytest.mark.parametrize(
    "settings", [LimiterSettings(mode="monitor"), LimiterSettings(whitelist=("10.0.0.0/24",))]
)
def test_monitor_mode_and_the_whitelist_are_never_blocked(settings, caplog) -> None:
    guarded, _ = floods()
    with caplog.at_level("WARNING"):
        assert syns(guarded, A.ip, 4, settings) == []
    assert "not blocked: monitor mode/whitelist/protected" in caplog.text


def test_prefix_blocks_are_recorded_bounded_healed_restored_and_expire() -> None:
    guarded, history = floods()
    decisions = [
        d for n in range(40) for d in syns(guarded, f"10.0.1.{n + 1}", 1, LimiterSettings())
    ]
    (decision,) = [d for d in decisions if d.target == "10.0.1.0/24"]
    block = guarded.start_prefix(decision, (5222,), at(1), up=True)
    assert block is not None and guarded.blocks_total == {"connection_flood_prefix": 1}
    other = dataclasses.replace(decision, target="10.0.2.0/24")
    assert guarded.start_prefix(other, (5222,), at(1), up=True) is None  # bound of 1
    assert guarded.covering(DPID, Client("10.0.1.200", 1)) is block
    assert not guarded.heal_due(block, at(1.5), up=True) and guarded.heal_due(block, at(2), up=True)
    assert not guarded.heal_due(block, at(3), up=False)
    assert guarded.restore(DPID, at(30)) == [block]
    assert guarded.expire(at(30)) == [] and guarded.expire(at(62)) == [block]
    assert guarded.unblocks_total == {"expired": 1}
    assert [e["kind"] for e in history.events()] == ["block", "unblock"]
