"""The dispatcher's message history: per-interval differences of totals, bounded."""

from __future__ import annotations

import pytest

from napps.xmpp_ofc.dispatcher.message_history import MessageHistory


def test_points_are_differences_between_samples():
    history = MessageHistory(interval=10.0, size=5)
    assert history.sample(100.0, 10, 4) is None  # the first sample is the baseline
    history.sample(110.0, 25, 9)
    history.sample(120.5, 25, 12)
    assert history.to_json() == {
        "interval": 10.0,
        "size": 5,
        "points": [
            {"at": 110.0, "seconds": 10.0, "in": 15, "out": 5},
            {"at": 120.5, "seconds": 10.5, "in": 0, "out": 3},
        ],
    }


def test_the_ring_keeps_the_newest_points_only():
    history = MessageHistory(interval=1.0, size=3)
    for second in range(10):
        history.sample(float(second), second * 2, second)
    points = history.points()
    assert [point.at for point in points] == [7.0, 8.0, 9.0]
    assert all(point.received == 2 and point.sent == 1 for point in points)


def test_a_total_that_went_down_counts_as_zero():
    history = MessageHistory()
    history.sample(0.0, 100, 100)
    point = history.sample(10.0, 40, 120)
    assert (point.received, point.sent) == (0, 20)


@pytest.mark.parametrize(("interval", "size"), [(0, 10), (-1, 10), (10, 0)])
def test_bad_settings_are_refused(interval, size):
    with pytest.raises(ValueError):
        MessageHistory(interval, size)
