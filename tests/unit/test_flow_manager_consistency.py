"""flow_manager's consistency check, as a pure module: what a round re-adds."""

from __future__ import annotations

from napps.kytos.flow_manager.consistency import (
    MIN_TIME_LEFT_S,
    ConsistencyCheck,
    selectors,
    to_check,
)
from xmpp_ofc import cookies
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.openflow.flow_stats_codec import FlowStatsRecord

DPID = "00:00:00:00:00:00:00:01"
MISS = cookies.encode(Owner.DISPATCHER, Kind.TABLE_MISS, 0)
BLOCK = cookies.encode(Owner.RATE_LIMITER, Kind.BLOCK, 9)


def flow(cookie: int, priority: int, match: dict, hard_timeout: int = 0) -> dict:
    return {
        "table_id": 0,
        "priority": priority,
        "match": match,
        "cookie": cookie,
        "hard_timeout": hard_timeout,
        "instructions": [],
    }


TABLE_MISS = flow(MISS, 0, {})
A_BLOCK = flow(BLOCK, 300, {"dl_type": 2048, "nw_src": "10.0.0.9"}, hard_timeout=60)


def on_switch(stored: dict, cookie: int | None = None) -> FlowStatsRecord:
    """The flow-stats entry a switch reports for ``stored``."""
    return FlowStatsRecord(
        table_id=stored["table_id"], duration_sec=1, duration_nsec=0,
        priority=stored["priority"], idle_timeout=0, hard_timeout=stored["hard_timeout"],
        flags=0, cookie=stored["cookie"] if cookie is None else cookie,
        packet_count=0, byte_count=0, match=stored["match"], instructions_raw=b"",
    )  # fmt: skip


def always(_flow) -> bool:
    return True


def test_only_our_flows_with_time_left_are_checked():
    foreign = flow(0x1234, 10, {"in_port": 1})
    expiring = {**A_BLOCK, "hard_timeout": MIN_TIME_LEFT_S - 1}
    assert to_check([TABLE_MISS, foreign, expiring, A_BLOCK]) == [TABLE_MISS, A_BLOCK]


def test_one_request_per_owner_and_kind():
    other_block = {**A_BLOCK, "cookie": BLOCK + 1, "match": {"nw_src": "10.0.0.8"}}
    mask = cookies.OWNER_KIND_MASK
    assert selectors([A_BLOCK, TABLE_MISS, other_block]) == [
        (MISS & mask, mask),
        (BLOCK & mask, mask),
    ]


def test_a_round_re_adds_only_what_the_switch_lacks():
    check = ConsistencyCheck(round_timeout_s=20)
    check.begin(DPID, [TABLE_MISS, A_BLOCK], xids=[1, 2], now=0)
    assert check.reply(DPID, 1, [on_switch(TABLE_MISS)], always) is None  # one reply pending
    verdict = check.reply(DPID, 2, [], always)
    assert verdict.missing == [A_BLOCK]
    assert verdict.conflicts == []
    assert verdict.checked == 2
    assert not check.busy(DPID, now=1)


def test_nothing_missing_nothing_re_added():
    check = ConsistencyCheck(round_timeout_s=20)
    check.begin(DPID, [TABLE_MISS, A_BLOCK], xids=[1], now=0)
    verdict = check.reply(DPID, 1, [on_switch(A_BLOCK), on_switch(TABLE_MISS)], always)
    assert verdict.missing == []


def test_a_flow_its_owner_deleted_meanwhile_is_not_re_added():
    check = ConsistencyCheck(round_timeout_s=20)
    check.begin(DPID, [A_BLOCK], xids=[1], now=0)
    verdict = check.reply(DPID, 1, [], lambda stored: stored is not A_BLOCK)
    assert verdict.missing == []


def test_another_cookie_on_our_entry_is_a_conflict_left_alone():
    check = ConsistencyCheck(round_timeout_s=20)
    check.begin(DPID, [A_BLOCK], xids=[1], now=0)
    verdict = check.reply(DPID, 1, [on_switch(A_BLOCK, cookie=BLOCK + 5)], always)
    assert verdict.missing == []
    assert verdict.conflicts == [A_BLOCK]


def test_unknown_xids_and_switches_are_ignored_and_stale_rounds_time_out():
    check = ConsistencyCheck(round_timeout_s=20)
    check.begin(DPID, [A_BLOCK], xids=[1], now=0)
    assert check.reply(DPID, 99, [], always) is None
    assert check.reply("00:00:00:00:00:00:00:02", 1, [], always) is None
    assert check.busy(DPID, now=19)
    assert not check.busy(DPID, now=21)  # a lost reply does not stop the next round
    check.forget(DPID)
    assert check.reply(DPID, 1, [], always) is None
