"""The bookkeeping collaborators alone: monitors.py, blocks.py, history.py, escalation.py.

No RateLimiter, no enforcement, no policy: each class gets small fakes (a list for
the history's store, a dict for the block store) and is read back directly.
"""

from __future__ import annotations

from test_rate_limiter_helpers import DPID, at, echoed_match

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.blocks import BlockBook, reconnect_block
from napps.xmpp_ofc.rate_limiter.capture_bounds import CaptureBounds, Unmonitored
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.history import History
from napps.xmpp_ofc.rate_limiter.monitors import Monitors
from napps.xmpp_ofc.rate_limiter.records import BlockRecord, EventKind, HistoryEvent, UnblockReason

A = Client("10.0.0.7", 40001)
B = Client("10.0.0.7", 40002)
C = Client("10.0.0.8", 40003)


class FakeStore:
    """The parts of LimiterStore the bookkeeping uses, in memory."""

    def __init__(self, blocks: list[BlockRecord] = (), events: list[HistoryEvent] = ()) -> None:
        self.blocks = {(b.dpid, b.ip, b.port): b for b in blocks}
        self.events = list(events)

    def save_block(self, block: BlockRecord) -> None:
        self.blocks[(block.dpid, block.ip, block.port)] = block

    def delete_block(self, dpid: str, ip: str, port: int | None) -> None:
        self.blocks.pop((dpid, ip, port), None)

    def load_blocks(self) -> list[BlockRecord]:
        return list(self.blocks.values())

    def append_history(self, event: HistoryEvent) -> None:
        self.events.append(event)

    def load_history(self, limit: int) -> list[HistoryEvent]:
        return self.events[-limit:]


def record(target: Client, *, t: float = 0, lasts: float = 60, manual: bool = False) -> BlockRecord:
    return BlockRecord(
        dpid=DPID,
        ip=target.ip,
        port=target.port,
        server_ports=(5222,),
        since=at(t).wall,
        expires=at(t).wall + lasts,
        reason="test",
        manual=manual,
    )


# --- history.py -------------------------------------------------------------------------


def event(kind: EventKind, n: int = 0) -> HistoryEvent:
    return HistoryEvent(at=float(n), kind=kind, dpid=DPID, ip="10.0.0.7", port=None, reason="r")


def test_history_is_bounded_counts_flags_and_mirrors_the_store() -> None:
    store = FakeStore()
    history = History(limit=3, store=store)
    for n in range(5):
        history.record(event(EventKind.FLAG if n % 2 else EventKind.BLOCK, n))
    assert [e["at"] for e in history.events()] == [2.0, 3.0, 4.0]
    assert [e["at"] for e in history.events(2)] == [3.0, 4.0]
    assert history.events(0) == []
    assert history.flags_total == 2
    assert len(store.events) == 5  # the store trims by itself


def test_history_loads_the_stored_events_without_counting_them() -> None:
    history = History(limit=2, store=FakeStore(events=[event(EventKind.FLAG, n) for n in range(3)]))
    history.load()
    assert [e["at"] for e in history.events()] == [1.0, 2.0]
    assert history.flags_total == 0


# --- monitors.py --------------------------------------------------------------------------


def test_monitors_count_per_address_and_forget() -> None:
    monitors = Monitors()
    monitors.add(DPID, A, 5222, at(0), whitelisted=False)
    monitors.add(DPID, B, 5222, at(0), whitelisted=False)
    monitors.add(DPID, C, 5222, at(0), whitelisted=False)
    assert monitors.count(DPID) == 3
    assert monitors.of_address(DPID, A.ip) == [A, B]
    assert monitors.pop(DPID, A) is not None and monitors.pop(DPID, A) is None
    assert monitors.clients(DPID).of_address(A.ip) == 1
    assert monitors.count("other") == 0 and monitors.get("other", A) is None
    monitors.forget_switch(DPID)
    assert monitors.count(DPID) == 0


def test_monitor_bounds_are_counted_and_whitelisted_addresses_have_no_address_bound() -> None:
    monitors = Monitors(CaptureBounds(max_per_switch=3, max_per_address=1))
    monitors.add(DPID, A, 5222, at(0), whitelisted=False)
    assert not monitors.may_monitor(DPID, B, at(1), whitelisted=False)
    assert monitors.may_monitor(DPID, B, at(1), whitelisted=True)
    monitors.add(DPID, B, 5222, at(1), whitelisted=True)
    monitors.add(DPID, C, 5222, at(1), whitelisted=False)
    assert not monitors.may_monitor(DPID, Client("10.0.0.9", 1), at(2), whitelisted=False)
    assert monitors.unmonitored_total == {
        Unmonitored.ADDRESS_BOUND: 1,
        Unmonitored.SWITCH_BOUND: 1,
    }


def test_a_refused_monitor_backs_off_and_the_backoff_is_forgotten_later() -> None:
    monitors = Monitors()
    assert monitors.back_off(DPID, A, at(0)).delay == 10
    assert not monitors.may_monitor(DPID, A, at(9), whitelisted=False)
    assert monitors.may_monitor(DPID, A, at(10), whitelisted=False)
    assert monitors.back_off(DPID, A, at(10)).delay == 20  # doubling
    monitors.expire_backoffs(at(10 + 20 + 301))
    assert monitors.back_off(DPID, A, at(400)).delay == 10  # started over


def test_a_stats_entry_is_matched_by_cookie_and_match_or_adopted() -> None:
    monitors = Monitors()
    monitors.add(DPID, A, 5222, at(0), whitelisted=False)
    flow = flows.monitor_flow(A, 5222, idle_timeout=120)
    match = echoed_match(flow)
    assert monitors.entry(DPID, flow["cookie"], match)[0] == A
    assert monitors.entry(DPID, flow["cookie"] ^ 1, match) is None  # another client's cookie
    assert monitors.entry(DPID, flow["cookie"], {**match, "tp_dst": 5223}) is None
    stranger = echoed_match(flows.monitor_flow(C, 5222, idle_timeout=120))
    assert monitors.entry(DPID, 0, stranger) is None

    def adopt(blocked: bool):
        return monitors.adopt(
            DPID, stranger, at(1), whitelisted=lambda ip: ip == C.ip, blocked=lambda c: blocked
        )

    assert adopt(blocked=True) is None  # a blocked client's old monitor is not taken over
    client, adopted = adopt(blocked=False)
    assert client == C and adopted.whitelisted and adopt(blocked=False) is None


def test_heal_is_rate_limited_and_stale_removals_do_not_count() -> None:
    monitors = Monitors()
    monitored = monitors.add(DPID, A, 5222, at(0), whitelisted=False)
    assert not monitors.heal_due(monitored, at(0.5))
    assert monitors.heal_due(monitored, at(1.0)) and monitored.installed_at == at(1.0).mono
    assert not monitors.heal_due(monitored, at(1.5))
    # The removed flow lived 30 s, but we re-added it 1 s ago: a stale FLOW_REMOVED.
    assert not monitors.removal_counts(DPID, A, 30, at(2))
    assert monitors.removal_counts(DPID, A, 1, at(2))
    assert not monitors.removal_counts(DPID, C, 1, at(2))


def test_silent_connections_and_whitelist_marks() -> None:
    monitors = Monitors()
    monitors.add(DPID, A, 5222, at(0), whitelisted=False)
    monitors.add(DPID, C, 5222, at(0), whitelisted=False).last_seen = at(50).mono
    assert monitors.silent(DPID, at(100), forget_after=60) == [A]
    monitors.set_whitelisted(DPID, lambda ip: ip == C.ip)
    assert [row["whitelisted"] for row in monitors.rows(DPID)] == [False, True]
    assert monitors.rows(DPID)[0]["packets_per_s"] is None  # not polled yet


# --- blocks.py ---------------------------------------------------------------------------------


def book(store: FakeStore | None = None) -> tuple[BlockBook, History]:
    history = History()
    return BlockBook(history, store), history


def kinds(history: History) -> list[str]:
    return [e["kind"] for e in history.events()]


def test_a_block_is_persisted_counted_once_and_an_extend_is_recorded() -> None:
    store = FakeStore()
    blocks, history = book(store)
    assert blocks.start(A, record(A), now=at(0)) is False
    assert blocks.start(A, record(A, lasts=120), now=at(1)) is True  # extends
    whole = Client(C.ip, None)
    assert blocks.start(whole, record(whole), now=at(1), count_as="x") is False
    assert blocks.blocks_total == {"auto": 1, "x": 1}
    assert kinds(history) == ["block", "extend", "block"]
    assert store.blocks[(DPID, A.ip, A.port)].expires == at(0).wall + 120
    assert blocks.count(DPID) == 2
    assert [row["ip"] for row in blocks.rows(DPID)] == [A.ip, C.ip]


def test_covering_finds_the_connection_or_its_whole_address() -> None:
    blocks, _ = book()
    blocks.start(A, record(A), now=at(0))
    assert blocks.covering(DPID, A) is not None and blocks.covering(DPID, B) is None
    whole = Client(A.ip, None)
    blocks.start(whole, record(whole), now=at(0))
    assert blocks.covering(DPID, B).port is None
    assert blocks.covering("other", A) is None


def test_the_automatic_block_of_a_sibling_is_found_but_not_manual_or_ending_ones() -> None:
    blocks, _ = book()
    blocks.start(A, record(A, lasts=60), now=at(0))
    assert blocks.auto_block_of_address(DPID, B, at(1)).port == A.port
    assert blocks.auto_block_of_address(DPID, A, at(1)) is None  # itself
    assert blocks.auto_block_of_address(DPID, B, at(59.5)) is None  # under 1 s left
    manual, _ = book()
    manual.start(A, record(A, manual=True), now=at(0))
    assert manual.auto_block_of_address(DPID, B, at(1)) is None
    sibling = blocks.auto_block_of_address(DPID, B, at(1))
    again = reconnect_block(DPID, B, 5222, sibling, at(1))
    assert again.expires == sibling.expires and again.reason == f"reconnect while {A} is blocked"


def test_an_ended_block_is_counted_by_reason_and_leaves_the_store() -> None:
    store = FakeStore()
    blocks, history = book(store)
    blocks.start(A, record(A), now=at(0))
    blocks.end(blocks.get(DPID, A), UnblockReason.MANUAL, at(5), "by hand")
    assert blocks.get(DPID, A) is None and store.blocks == {}
    assert blocks.unblocks_total == {"manual": 1}
    assert history.events()[-1]["reason"] == "manual: by hand" and history.events()[-1]["manual"]
    assert blocks.auto_block_of_address(DPID, B, at(6)) is None  # the index forgot it too


def test_a_refused_block_rolls_back_without_an_unblock_and_backs_off() -> None:
    store = FakeStore()
    blocks, history = book(store)
    blocks.start(A, record(A), now=at(0))
    block, retry = blocks.roll_back(DPID, A, "OFPFMFC_TABLE_FULL", at(1))
    assert block.ip == A.ip and retry.delay == 10
    assert blocks.roll_back(DPID, A, "again", at(1)) is None  # the other port's error
    assert blocks.get(DPID, A) is None and store.blocks == {}
    assert blocks.unblocks_total == {} and kinds(history) == ["block", "block_failed"]
    assert blocks.backing_off(DPID, A, at(10.9)) and not blocks.backing_off(DPID, A, at(11))


def test_heal_and_stale_removal_follow_the_last_install() -> None:
    blocks, _ = book()
    blocks.start(A, record(A), now=at(0))
    blocks.installed(DPID, A, at(0))
    block = blocks.get(DPID, A)
    assert not blocks.heal_due(block, at(0.5)) and blocks.heal_due(block, at(1))
    assert not blocks.heal_due(block, at(59.5))  # about to expire anyway
    blocks.installed(DPID, A, at(30))
    assert blocks.removal_ends(DPID, A, 60, at(31)) is None  # the old flow's removal
    assert blocks.removal_ends(DPID, A, 1, at(31)) is block


def test_stored_blocks_come_back_and_expired_ones_end() -> None:
    store = FakeStore([record(A, lasts=10), record(C, lasts=100)])
    blocks, history = book(store)
    assert blocks.load(at(50)) == [DPID]
    assert blocks.get(DPID, C) is not None and blocks.get(DPID, A) is None
    assert blocks.unblocks_total == {"expired": 1} and kinds(history) == ["unblock"]
    assert [b.ip for b in blocks.now_whitelisted(DPID, lambda ip: ip == C.ip)] == [C.ip]
    assert [b.ip for b in blocks.forget_switch(DPID)] == [C.ip]


def test_an_unknown_switch_has_no_blocks() -> None:
    blocks, _ = book()
    blocks.start(A, record(A), now=at(0))
    assert blocks.active("other") == [] and blocks.removal_ends("other", A, 1, at(0)) is None
    assert not blocks.backing_off("other", A, at(0)) and blocks.count("other") == 0
    assert blocks.covering("other", A) is None and blocks.get("other", A) is None
