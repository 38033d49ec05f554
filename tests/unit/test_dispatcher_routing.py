"""Dispatcher logic without Kytos: module config, cookie routing, lifecycle plans, counters."""

import threading

import pytest

from napps.xmpp_ofc.dispatcher.module_config import (
    ModuleConfig,
    ModuleSpec,
    UnknownModuleError,
)
from napps.xmpp_ofc.dispatcher.routing import (
    Direction,
    MessageCounters,
    NotifyModule,
    Router,
    Unrouted,
)
from xmpp_ofc import cookies, pipeline
from xmpp_ofc.commands import DeleteFlows, InstallFlow
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.messages import Control, FlowStatsEntry, MessageType

DPID = "00:00:00:00:00:00:00:01"
OTHER = "00:00:00:00:00:00:00:02"
L2_MISS = cookies.encode(Owner.L2_SWITCH, Kind.TABLE_MISS)
CAPTURE = cookies.encode(Owner.RATE_LIMITER, Kind.CAPTURE)
MONITOR = cookies.encode(Owner.RATE_LIMITER, Kind.MONITOR, 42)
BASE = cookies.encode(Owner.DISPATCHER, Kind.TABLE_MISS)


@pytest.fixture
def router():
    return Router()


# --- module config -------------------------------------------------------------------


def test_every_module_is_enabled_by_default_with_its_subscriptions():
    config = ModuleConfig()
    assert config.enabled_modules(DPID) == ("l2_switch", "rate_limiter")
    assert MessageType.FLOW_STATS in config.subscriptions(DPID, "rate_limiter")
    assert MessageType.FLOW_STATS not in config.subscriptions(DPID, "l2_switch")


def test_config_is_per_switch():
    config = ModuleConfig()
    assert config.set_enabled(DPID, "rate_limiter", False) is True
    assert config.set_enabled(DPID, "rate_limiter", False) is False
    assert config.enabled_modules(DPID) == ("l2_switch",)
    assert config.enabled_modules(OTHER) == ("l2_switch", "rate_limiter")


def test_unknown_module_and_unknown_message_type_are_refused():
    config = ModuleConfig()
    with pytest.raises(UnknownModuleError, match="of_l2ls"):
        config.set_enabled(DPID, "of_l2ls", True)
    with pytest.raises(ValueError):
        config.set_subscriptions(DPID, "l2_switch", ["packet_in", "barrier"])
    assert MessageType.PACKET_IN in config.subscriptions(DPID, "l2_switch"), "unchanged"


def test_subscriptions_change_at_runtime_and_describe_shows_them():
    config = ModuleConfig()
    config.set_subscriptions(DPID, "l2_switch", ["packet_in"])
    assert config.subscribers(DPID, MessageType.PORT_STATUS) == ()
    assert config.describe(DPID)["l2_switch"] == {"enabled": True, "subscriptions": ["packet_in"]}


def test_specs_must_not_collide_or_use_the_dispatcher_owner():
    spec = ModuleSpec("x", Owner.L2_SWITCH, frozenset())
    with pytest.raises(ValueError):
        ModuleConfig([spec, ModuleSpec("y", Owner.L2_SWITCH, frozenset())])
    with pytest.raises(ValueError):
        ModuleSpec("z", Owner.DISPATCHER, frozenset())


def test_a_module_disabled_by_default_starts_disabled():
    config = ModuleConfig(
        [ModuleSpec("l2_switch", Owner.L2_SWITCH, frozenset(), enabled_by_default=False)]
    )
    assert config.enabled_modules(DPID) == ()


# --- routing by cookie ---------------------------------------------------------------


def test_packet_in_goes_only_to_the_owner_of_the_cookie(router):
    assert router.route(DPID, MessageType.PACKET_IN, L2_MISS) == "l2_switch"
    assert router.route(DPID, MessageType.PACKET_IN, CAPTURE) == "rate_limiter"


@pytest.mark.parametrize(
    "cookie, reason",
    [
        (0, Unrouted.FOREIGN_COOKIE),
        (cookies.NO_FLOW_COOKIE, Unrouted.FOREIGN_COOKIE),
        (0xA900000000000000, Unrouted.FOREIGN_COOKIE),
        (BASE, Unrouted.DISPATCHER_FLOW),
    ],
)
def test_cookies_of_no_module_reach_no_module_and_are_counted(router, cookie, reason):
    assert router.route(DPID, MessageType.PACKET_IN, cookie) is None
    assert router.unrouted[(DPID, MessageType.PACKET_IN, reason)] == 1


def test_disabled_or_unsubscribed_owner_gets_nothing(router):
    router.config.set_enabled(DPID, "rate_limiter", False)
    assert router.route(DPID, MessageType.PACKET_IN, CAPTURE) is None
    assert router.route(OTHER, MessageType.PACKET_IN, CAPTURE) == "rate_limiter"
    assert router.route(DPID, MessageType.FLOW_REMOVED, L2_MISS) is None
    assert router.unrouted[(DPID, MessageType.PACKET_IN, Unrouted.MODULE_DISABLED)] == 1
    assert router.unrouted[(DPID, MessageType.FLOW_REMOVED, Unrouted.NOT_SUBSCRIBED)] == 1


def entry(cookie, packets=1):
    return FlowStatsEntry(
        dpid=DPID,
        table_id=0,
        cookie=cookie,
        priority=200,
        match={},
        packet_count=packets,
        byte_count=packets * 100,
        duration_sec=1,
    )


def test_flow_stats_reply_is_split_by_owner(router):
    entries = [entry(MONITOR, 1), entry(BASE), entry(0), entry(L2_MISS), entry(MONITOR + 1, 2)]
    routed = router.route_flow_stats(DPID, entries)
    assert set(routed) == {"rate_limiter"}, "l2_switch is not subscribed to flow stats"
    assert [e.packet_count for e in routed["rate_limiter"]] == [1, 2]


# --- lifecycle plans -----------------------------------------------------------------


def test_switch_up_deletes_ours_installs_base_then_restores_each_enabled_module(router):
    steps = router.switch_up(DPID)
    assert steps == [
        DeleteFlows(DPID, pipeline.delete_ours()),
        InstallFlow(DPID, pipeline.base_table_miss()),
        NotifyModule(DPID, "l2_switch", Control.RESTORE),
        NotifyModule(DPID, "rate_limiter", Control.RESTORE),
    ]
    assert router.is_connected(DPID)


def test_switch_up_skips_disabled_modules_and_tells_switch_up_subscribers(router):
    router.config.set_enabled(DPID, "rate_limiter", False)
    router.config.set_subscriptions(DPID, "l2_switch", ["packet_in", "switch_up"])
    steps = router.switch_up(DPID)
    modules = [(s.module, s.kind) for s in steps if isinstance(s, NotifyModule)]
    assert modules == [("l2_switch", Control.RESTORE), ("l2_switch", MessageType.SWITCH_UP)]


def test_switch_down_notifies_subscribers_and_marks_the_switch_down(router):
    router.switch_up(DPID)
    steps = router.switch_down(DPID)
    assert NotifyModule(DPID, "rate_limiter", MessageType.SWITCH_DOWN) in steps
    assert not router.is_connected(DPID)


def test_disable_deletes_the_module_flows_by_owner_and_tells_it_to_stop(router):
    router.switch_up(DPID)
    change = router.disable(DPID, "l2_switch")
    assert change.changed
    assert change.steps == (
        NotifyModule(DPID, "l2_switch", Control.STOP),
        DeleteFlows(DPID, pipeline.delete_owner(Owner.L2_SWITCH)),
    )
    assert router.disable(DPID, "l2_switch").changed is False
    assert router.route(DPID, MessageType.PACKET_IN, L2_MISS) is None


def test_enable_restores_on_a_connected_switch_and_only_records_on_a_down_one(router):
    router.config.set_enabled(DPID, "l2_switch", False)
    router.config.set_enabled(OTHER, "l2_switch", False)
    router.switch_up(DPID)
    assert router.enable(DPID, "l2_switch").steps == (
        NotifyModule(DPID, "l2_switch", Control.RESTORE),
    )
    assert router.enable(DPID, "l2_switch").changed is False
    down = router.enable(OTHER, "l2_switch")
    assert down.changed and down.steps == ()


def test_disable_on_a_down_switch_sends_no_delete(router):
    change = router.disable(OTHER, "rate_limiter")
    assert change.steps == (NotifyModule(OTHER, "rate_limiter", Control.STOP),)


def test_a_module_that_loads_late_is_cleaned_and_restored_where_enabled_and_up(router):
    router.switch_up(DPID)
    router.switch_up(OTHER)
    router.disable(OTHER, "l2_switch")
    assert router.module_loaded("l2_switch") == [
        DeleteFlows(DPID, pipeline.delete_owner(Owner.L2_SWITCH)),
        NotifyModule(DPID, "l2_switch", Control.RESTORE),
    ]
    assert router.module_loaded("dispatcher") == []
    assert router.module_loaded("of_core") == []


def test_unrouted_counts_per_switch_by_type_and_reason(router):
    router.route(DPID, MessageType.PACKET_IN, cookies.NO_FLOW_COOKIE)
    router.route(DPID, MessageType.PACKET_IN, BASE)
    router.route(DPID, MessageType.PACKET_IN, BASE)
    router.route(OTHER, MessageType.FLOW_REMOVED, 0)
    assert router.unrouted_counts(DPID) == {
        "packet_in": {"dispatcher_flow": 2, "foreign_cookie": 1}
    }
    assert router.unrouted_counts("00:00:00:00:00:00:00:09") == {}


def test_enable_unknown_module_raises(router):
    with pytest.raises(UnknownModuleError):
        router.enable(DPID, "nope")


# --- counters ------------------------------------------------------------------------


def test_counters_by_switch_direction_and_type():
    counters = MessageCounters()
    counters.count(DPID, Direction.IN, "ofpt_packet_in")
    counters.count(DPID, Direction.IN, "ofpt_packet_in", 2)
    counters.count(DPID, "out", "ofpt_flow_mod")
    counters.count(OTHER, Direction.OUT, "ofpt_packet_out")
    assert counters.get(DPID, Direction.IN, "ofpt_packet_in") == 3
    assert counters.snapshot()[DPID] == {
        "in": {"ofpt_packet_in": 3},
        "out": {"ofpt_flow_mod": 1},
    }
    assert counters.total(Direction.OUT) == 2
    counters.forget(DPID)
    assert DPID not in counters.snapshot()


def test_counters_lose_nothing_across_threads():
    counters = MessageCounters()

    def hammer():
        for _ in range(2000):
            counters.count(DPID, Direction.IN, "ofpt_packet_in")

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert counters.get(DPID, Direction.IN, "ofpt_packet_in") == 16000
