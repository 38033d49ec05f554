"""Rate maths: deltas between polls, never whole-life averages (the seed's bug)."""

from __future__ import annotations

import pytest

from napps.xmpp_ofc.rate_limiter.rates import CounterSample, Rate, RateTracker


def sample(packets: int, octets: int, duration: float, at: float) -> CounterSample:
    return CounterSample(packets, octets, duration, at)


def test_first_sample_gives_no_rate_even_after_a_long_flow_life() -> None:
    tracker = RateTracker()
    # 6000 packets over 60 s would be 6000/min as a whole-life average: not used.
    assert tracker.update(sample(6000, 600_000, 60.0, 100.0)) is None
    assert tracker.rate is None


def test_rate_is_the_delta_between_consecutive_polls() -> None:
    tracker = RateTracker()
    tracker.update(sample(1000, 100_000, 50.0, 10.0))
    rate = tracker.update(sample(1020, 102_000, 60.0, 20.0))
    assert rate is not None
    assert rate.packets_per_s == pytest.approx(2.0)
    assert rate.packets_per_min == pytest.approx(120.0)
    assert rate.bytes_per_s == pytest.approx(200.0)
    assert rate.elapsed == pytest.approx(10.0)
    # A quiet window after a busy life is quiet: not the whole-life average.
    rate = tracker.update(sample(1020, 102_000, 70.0, 30.0))
    assert rate is not None and rate.packets_per_min == 0


def test_switch_duration_is_the_clock_not_the_controller_arrival_time() -> None:
    tracker = RateTracker()
    tracker.update(sample(0, 0, 1.0, 0.0))
    # The reply was handled 25 s later on the controller (queued), but the
    # switch's counters are 10 s apart: the rate uses the switch's 10 s.
    rate = tracker.update(sample(100, 6600, 11.0, 25.0))
    assert rate is not None and rate.packets_per_s == pytest.approx(10.0)


def test_controller_clock_jump_does_not_change_the_rate() -> None:
    tracker = RateTracker()
    tracker.update(sample(0, 0, 5.0, 1000.0))
    rate = tracker.update(sample(50, 5000, 15.0, 1_000_000.0))  # monotonic jumped far
    assert rate is not None and rate.packets_per_s == pytest.approx(5.0)


def test_whole_second_durations_fall_back_to_the_controller_clock() -> None:
    tracker = RateTracker()
    tracker.update(sample(0, 0, 3.0, 100.0))
    rate = tracker.update(sample(20, 2000, 3.0, 110.0))  # duration did not advance
    assert rate is not None and rate.packets_per_s == pytest.approx(2.0)


@pytest.mark.parametrize(
    "second",
    [
        sample(5, 9000, 20.0, 20.0),  # packet counter went down
        sample(50, 900, 20.0, 20.0),  # byte counter went down
        sample(50, 9000, 2.0, 20.0),  # duration went down: flow re-created
    ],
)
def test_recreated_flow_resets_the_baseline_without_a_rate(second: CounterSample) -> None:
    tracker = RateTracker()
    tracker.update(sample(10, 1000, 10.0, 10.0))
    assert tracker.update(second) is None
    assert tracker.resets == 1
    assert tracker.last == second
    # The next poll measures from the new baseline.
    rate = tracker.update(
        sample(second.packet_count + 30, second.byte_count + 300, second.duration + 10, 30.0)
    )
    assert rate is not None and rate.packets_per_s == pytest.approx(3.0)


def test_duration_zero_never_divides_by_zero() -> None:
    tracker = RateTracker()
    assert tracker.update(sample(0, 0, 0.0, 5.0)) is None
    # Same duration and same controller time: elapsed 0 on both clocks.
    assert tracker.update(sample(3, 200, 0.0, 5.0)) is None
    assert tracker.rate is None


def test_controller_clock_going_back_with_a_stuck_duration_rebases() -> None:
    tracker = RateTracker()
    tracker.update(sample(0, 0, 7.0, 50.0))
    assert tracker.update(sample(10, 1000, 7.0, 40.0)) is None
    rate = tracker.update(sample(20, 2000, 17.0, 50.0))
    assert rate is not None and rate.packets_per_s == pytest.approx(1.0)


def test_too_short_window_keeps_the_old_baseline() -> None:
    tracker = RateTracker()
    tracker.update(sample(0, 0, 10.0, 10.0))
    # Another requester's reply 0.2 s later: no rate, baseline kept...
    assert tracker.update(sample(2, 200, 10.2, 10.2), min_elapsed=1.0) is None
    # ...so the next window spans the whole 10 s.
    rate = tracker.update(sample(100, 10_000, 20.0, 20.0), min_elapsed=1.0)
    assert rate is not None and rate.elapsed == pytest.approx(10.0)
    assert rate.packets_per_s == pytest.approx(10.0)


def test_payload_bytes_of_pure_acks_are_zero() -> None:
    acks = Rate(packets_per_s=10.0, bytes_per_s=660.0, elapsed=10.0)
    assert acks.payload_bytes_per_min(66) == 0
    chat = Rate(packets_per_s=10.0, bytes_per_s=3660.0, elapsed=10.0)
    assert chat.payload_bytes_per_min(66) == pytest.approx(180_000.0)
