"""The dispatcher's per-switch packet-in budgets (issue 14 item 5)."""

from __future__ import annotations

import pytest

from napps.xmpp_ofc.dispatcher.packet_in_budget import Budget, PacketInBudgets

S1, S2 = "00:00:00:00:00:00:00:01", "00:00:00:00:00:00:00:02"


def budgets(rate: float = 10, burst: float = 5) -> PacketInBudgets:
    return PacketInBudgets({"rate_limiter": Budget(rate, burst)}, log_interval_s=10)


def admitted(table: PacketInBudgets, dpid: str, module: str, count: int, now: float) -> int:
    return sum(table.admit(dpid, module, now).admitted for _ in range(count))


def test_a_burst_is_admitted_then_the_excess_is_shed_and_counted() -> None:
    table = budgets()
    assert admitted(table, S1, "rate_limiter", 1000, now=0.0) == 5
    assert table.shed == {(S1, "rate_limiter"): 995}


def test_tokens_refill_at_the_rate_and_never_beyond_the_burst() -> None:
    table = budgets()
    admitted(table, S1, "rate_limiter", 5, now=0.0)
    assert admitted(table, S1, "rate_limiter", 100, now=0.3) == 3
    assert admitted(table, S1, "rate_limiter", 100, now=100.0) == 5


def test_a_flood_on_one_switch_leaves_other_switches_and_unbudgeted_modules_alone() -> None:
    table = budgets()
    admitted(table, S1, "rate_limiter", 10_000, now=0.0)
    assert admitted(table, S2, "rate_limiter", 5, now=0.0) == 5
    assert admitted(table, S1, "l2_switch", 10_000, now=0.0) == 10_000


def test_a_sustained_flood_gets_the_rate_through() -> None:
    table = budgets(rate=200, burst=100)
    through = sum(
        admitted(table, S1, "rate_limiter", 10, now=tick / 100) for tick in range(1000)
    )  # 1000/s for 10 s
    assert 100 + 200 * 9 <= through <= 100 + 200 * 10 + 1


def test_the_log_line_is_rate_limited_and_carries_the_count_since_the_last() -> None:
    table = budgets()
    admitted(table, S1, "rate_limiter", 5, now=0.0)
    logs = [table.admit(S1, "rate_limiter", 0.0).log_shed for _ in range(50)]
    assert logs[0] == 1 and sum(1 for n in logs if n) == 1
    later = [table.admit(S1, "rate_limiter", 10.0).log_shed for _ in range(200)]
    # The bucket refilled (5 admitted); the next shed one logs the 49 unlogged + itself.
    assert [n for n in later if n] == [50]


def test_forget_switch_drops_its_state_and_bad_budgets_are_refused() -> None:
    table = budgets()
    admitted(table, S1, "rate_limiter", 50, now=0.0)
    table.forget_switch(S1)
    assert table.shed == {}
    assert admitted(table, S1, "rate_limiter", 5, now=0.0) == 5
    with pytest.raises(ValueError):
        Budget(0, 5)
    with pytest.raises(ValueError):
        Budget(5, 0)
