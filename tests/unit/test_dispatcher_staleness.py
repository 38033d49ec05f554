"""Stale packet-ins: the age rule and the throttled log count."""

from __future__ import annotations

import pytest

from napps.xmpp_ofc.dispatcher.staleness import StalePacketIns


def test_only_packet_ins_older_than_the_limit_are_stale_and_zero_never_sheds():
    stale = StalePacketIns(max_age_s=1.0)
    assert not stale.is_stale(0.2)
    assert not stale.is_stale(1.0)
    assert stale.is_stale(1.01)
    assert not StalePacketIns(max_age_s=0).is_stale(3600)
    with pytest.raises(ValueError, match=">= 0"):
        StalePacketIns(max_age_s=-1)


def test_shed_counts_every_packet_and_logs_at_most_once_per_interval_per_switch():
    stale = StalePacketIns(max_age_s=1.0, log_interval_s=10)
    assert stale.shed("a", now=0) == 1  # the first is logged at once
    assert [stale.shed("a", now=t) for t in (1, 2, 3)] == [0, 0, 0]
    assert stale.shed("b", now=3) == 1  # another switch has its own log line
    assert stale.shed("a", now=10.5) == 4  # the three held back and this one
    assert stale.shed_total("a") == 5
    stale.forget("a")
    assert stale.shed_total("a") == 0
