"""Which pending handshakes of_core closes past ``MAX_PENDING_HANDSHAKES``."""

from __future__ import annotations

from napps.kytos.of_core.connection_fsm import Phase
from napps.kytos.of_core.handshake_bound import oldest_over_limit

HELLO, FEATURES, UP = Phase.AWAITING_HELLO, Phase.AWAITING_FEATURES, Phase.ESTABLISHED


def test_under_the_limit_nothing_is_closed():
    assert oldest_over_limit([("a", HELLO, 1.0), ("b", FEATURES, 2.0)], 2) == []


def test_the_oldest_pending_go_first():
    connections = [("new", HELLO, 9.0), ("old", HELLO, 1.0), ("mid", FEATURES, 5.0)]
    assert oldest_over_limit(connections, 1) == ["old", "mid"]


def test_established_and_closing_connections_do_not_count_and_are_never_closed():
    connections = [
        ("switch", UP, 0.0),
        ("failed", Phase.HELLO_FAILED, 0.5),
        ("closed", Phase.CLOSED, 0.6),
        ("idle", HELLO, 1.0),
        ("idle2", HELLO, 2.0),
    ]
    assert oldest_over_limit(connections, 1) == ["idle"]


def test_a_limit_below_one_still_keeps_the_newest():
    assert oldest_over_limit([("a", HELLO, 1.0), ("b", HELLO, 2.0)], 0) == ["a"]
