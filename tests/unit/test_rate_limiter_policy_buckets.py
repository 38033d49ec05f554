"""policy.py and escalation.py alone: every edge of the buckets, the verdict, the sentence
and the decisions that follow (flag or block, reconnects, address totals)."""

from __future__ import annotations

import pytest

from napps.xmpp_ofc.rate_limiter.escalation import OffenceLog
from napps.xmpp_ofc.rate_limiter.policy import (
    METER_GRACE_S,
    AddressTotals,
    Allowance,
    Buckets,
    Usage,
    blocks_reconnect,
    estimated_messages,
    is_suspect,
    judge,
    meter_not_enough,
    never_blocked,
    sentence,
    sentence_reason,
    why_not_block,
)

ALLOWANCE = Allowance(
    payload_rate_bps=3000,
    payload_burst_bytes=20000,
    message_rate_per_s=5,
    message_burst=10,
    sustain_s=2,
)


def window(messages: int, payload_each: int = 140, elapsed: float = 1.0) -> Usage:
    return Usage(messages, messages * payload_each, elapsed)


@pytest.mark.parametrize(
    ("packets", "payload", "expected"),
    [
        (100, 0, 0),  # pure ACKs
        (100, 100 * 12, 0),  # ACKs with SACK options
        (20, 20 * 140, 20),  # short chat messages: one per packet
        (70, 100_000, 70),  # one large stanza: at most one per packet
        (1, 10_000, 1),
        (10, 10 * 50, pytest.approx(5.0)),  # below the smallest stanza: fewer
    ],
)
def test_estimated_messages(packets: int, payload: int, expected: float) -> None:
    assert estimated_messages(packets, payload) == expected


def test_buckets_start_full_or_empty() -> None:
    assert (Buckets(ALLOWANCE).payload, Buckets(ALLOWANCE).messages) == (20000, 10)
    empty = Buckets(ALLOWANCE, full=False)
    assert (empty.payload, empty.messages) == (0, 0)


def test_exactly_the_burst_plus_the_refill_is_not_over() -> None:
    buckets = Buckets(ALLOWANCE)
    verdict = judge(buckets, window(15), ALLOWANCE, now=1)  # 10 tokens + 5 refilled
    assert not verdict.over and buckets.messages == 0
    assert judge(buckets, window(5), ALLOWANCE, now=2).over is False  # at the rate: never dry


def test_one_message_more_is_over_but_not_acted_on() -> None:
    buckets = Buckets(ALLOWANCE)
    verdict = judge(buckets, window(16), ALLOWANCE, now=1)
    assert verdict.over and not verdict.act
    assert buckets.messages == 0 and buckets.dry_since == 1


def test_acted_on_once_dry_for_sustain_s_and_the_spell_ends_when_it_refills() -> None:
    buckets = Buckets(ALLOWANCE)
    assert not judge(buckets, window(20), ALLOWANCE, now=1).act
    assert not judge(buckets, window(20), ALLOWANCE, now=2).act  # dry 1 s
    verdict = judge(buckets, window(20), ALLOWANCE, now=3)  # dry 2 s
    assert (
        verdict.act and "20.0 msg/s > 5 msg/s" in verdict.reason and "for 2.0 s" in verdict.reason
    )
    assert not judge(buckets, window(0), ALLOWANCE, now=4).over
    assert buckets.dry_since is None and buckets.messages == 5


def test_tokens_never_go_below_zero_so_a_burst_is_no_debt() -> None:
    buckets = Buckets(ALLOWANCE)
    judge(buckets, window(500), ALLOWANCE, now=1)
    assert not judge(buckets, window(5), ALLOWANCE, now=2).over


def test_tokens_never_exceed_the_burst() -> None:
    buckets = Buckets(ALLOWANCE)
    judge(buckets, window(0, elapsed=3600), ALLOWANCE, now=3600)
    assert buckets.messages == 10 and buckets.payload == 20000


def test_the_byte_bucket_alone_catches_few_large_stanzas() -> None:
    buckets = Buckets(ALLOWANCE)
    usage = Usage(packets=3, payload_bytes=12_000, elapsed=1.0)  # 3 messages, 12 kB
    verdicts = [judge(buckets, usage, ALLOWANCE, now=t) for t in (1, 2, 3, 4, 5)]
    assert [v.over for v in verdicts] == [False, False, True, True, True]
    assert [v.act for v in verdicts] == [False, False, False, False, True]
    assert verdicts[-1].act and "payload B/s > 3000 B/s" in verdicts[-1].reason
    assert "msg/s" not in verdicts[-1].reason


def test_sustain_zero_acts_at_the_first_dry_window() -> None:
    eager = Allowance(3000, 20000, 5, 10, sustain_s=0)
    assert judge(Buckets(eager), window(16), eager, now=1).act


def test_offences_count_within_the_window_and_are_forgiven_after_it() -> None:
    log = OffenceLog()
    assert log.recent("10.0.0.7", now=0, window_s=3600) == 0
    assert log.record("10.0.0.7", now=0, window_s=3600) == 1
    assert log.record("10.0.0.7", now=3600, window_s=3600) == 2  # 3600 s after: still in
    assert log.record("10.0.0.7", now=7201, window_s=3600) == 1  # more than a window after
    log.pardon("10.0.0.7")
    assert log.recent("10.0.0.7", now=7201, window_s=3600) == 0
    log.record("10.0.0.8", now=0, window_s=3600)
    log.forget("10.0.0.8")
    assert len(log) == 0


def test_the_offence_log_is_bounded_and_forgets_the_least_recent_first() -> None:
    log = OffenceLog(max_offenders=100)
    for i in range(10_000):  # a flood of spoofed sources
        log.record(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", now=i, window_s=3600)
    assert len(log) == 100
    assert log.recent("10.0.0.0", now=10_000, window_s=3600) == 0
    assert log.recent("10.0.39.15", now=10_000, window_s=3600) == 1  # the 9999th


@pytest.mark.parametrize(
    ("offence", "duration", "whole"),
    [(1, 60, False), (2, 120, True), (3, 240, True), (7, 3600, True), (10_000, 3600, True)],
)
def test_sentence_doubles_up_to_the_maximum(offence: int, duration: int, whole: bool) -> None:
    given = sentence(offence, block_duration_s=60, block_max_s=3600, address_block_after=2)
    assert (given.duration_s, given.whole_address) == (duration, whole)


def test_address_block_after_zero_never_blocks_the_whole_address() -> None:
    given = sentence(50, block_duration_s=60, block_max_s=3600, address_block_after=0)
    assert not given.whole_address


def test_poll_jitter_does_not_cost_a_whole_extra_poll() -> None:
    for late, acts in ((3.5, False), (3.95, True)):  # dry 1.5 s; 1.95 s: a late timer
        buckets = Buckets(ALLOWANCE)
        assert not judge(buckets, window(15), ALLOWANCE, now=1.0).over  # exactly emptied
        assert judge(buckets, window(20), ALLOWANCE, now=2.0).over  # dry since 2.0
        assert judge(buckets, window(20), ALLOWANCE, now=late).act is acts


# --- the decisions after the buckets (policy.py alone) ------------------------------------


def why_not(**facts) -> str | None:
    defaults = {
        "exempt": None,
        "monitor_mode": False,
        "metered": False,
        "dry_since": 10.0,
        "now": 12.0,
        "sustain_s": 2.0,
    }
    return why_not_block(**{**defaults, **facts})


def test_a_client_acted_on_is_blocked_unless_whitelisted_monitor_mode_or_metered() -> None:
    assert why_not() is None
    assert why_not(exempt="whitelisted", monitor_mode=True) == "whitelisted"
    assert why_not(monitor_mode=True) == "monitor-only mode"
    assert why_not(metered=True) == "metered"


def test_a_metered_client_still_dry_after_the_grace_is_blocked() -> None:
    assert why_not(metered=True, now=10.0 + 2.0 + METER_GRACE_S - 0.1) == "metered"
    assert why_not(metered=True, now=10.0 + 2.0 + METER_GRACE_S) is None
    assert not meter_not_enough(None, 1e9, 2.0)


def test_the_sentence_reason_names_the_offence_and_the_duration() -> None:
    given = sentence(2, block_duration_s=60, block_max_s=3600, address_block_after=2)
    text = sentence_reason(
        "20.0 msg/s > 5 msg/s",
        given,
        ip="10.0.0.7",
        offence_window_s=3600,
        address_block_after=2,
        whole_already=False,
    )
    assert text == (
        "20.0 msg/s > 5 msg/s; offence 2 of 10.0.0.7 within 3600 s "
        "(from offence 2: the whole address); 120 s"
    )
    already = sentence_reason(
        "x", given, ip="10.0.0.7", offence_window_s=3600, address_block_after=2, whole_already=True
    )
    assert "from offence" not in already


def test_reconnects_are_blocked_at_once_only_with_per_ip_aggregate() -> None:
    assert blocks_reconnect(per_ip_aggregate=True, monitor_mode=False, exempt=False)
    assert not blocks_reconnect(per_ip_aggregate=False, monitor_mode=False, exempt=False)
    assert not blocks_reconnect(per_ip_aggregate=True, monitor_mode=True, exempt=False)
    assert not blocks_reconnect(per_ip_aggregate=True, monitor_mode=False, exempt=True)
    assert is_suspect(address_blocked=True, recent_offences=0)
    assert is_suspect(address_blocked=False, recent_offences=1)
    assert not is_suspect(address_blocked=False, recent_offences=0)


def test_address_totals_must_stay_over_for_sustain_and_skip_blocked_addresses() -> None:
    totals = AddressTotals()
    each = Usage(30, 30 * 140, 1.0)  # 30 msg/s per connection
    usages = [("10.0.0.7", each), ("10.0.0.7", each), ("10.0.0.8", each)]
    kwargs = {"limit": 50, "sustain_s": 2}
    assert totals.judge("dp", usages, now=0, **kwargs) == []  # over since 0
    assert totals.judge("dp", usages, now=1.5, **kwargs) == []
    (over,) = totals.judge("dp", usages, now=2, **kwargs)
    assert over.ip == "10.0.0.7" and "60.0 msg/s over 2 connections > 50 msg/s" in over.reason
    assert totals.judge("dp", usages, now=3, blocked=lambda ip: True, **kwargs) == []
    # Not over at one poll: the spell starts again.
    assert totals.judge("dp", usages[:1], now=4, **kwargs) == []
    assert totals.judge("dp", usages, now=5, **kwargs) == []


def test_never_blocked_is_monitor_mode_or_an_exempt_address() -> None:
    assert never_blocked(monitor_mode=True, exempt=False)
    assert never_blocked(monitor_mode=False, exempt=True)
    assert not never_blocked(monitor_mode=False, exempt=False)
