"""The xmpp_ofc/dispatcher NApp shell, driven with kytos.lib.helpers' real controller.

Handlers are called with the events Kytos would deliver (pyof messages built as
a switch sends them); what the NApp publishes is read back from the buffers.
"""

from __future__ import annotations

import re

import pytest
from kytos.core import KytosEvent
from pyof.v0x04.asynchronous.flow_removed import FlowRemoved as PyofFlowRemoved
from pyof.v0x04.asynchronous.packet_in import PacketIn
from pyof.v0x04.asynchronous.port_status import PortReason
from pyof.v0x04.asynchronous.port_status import PortStatus as PyofPortStatus

from napps.xmpp_ofc.dispatcher import settings as dispatcher_settings
from tests import kytos_helpers
from tests.kytos_helpers import (
    drain,
    mocked_controller,
    pyof_packet_in,
    switch_mock,
    synchronous_main,
)
from xmpp_ofc import cookies, metrics, pipeline
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.kytos_commands import FLOWS_DELETE_EVENT, FLOWS_INSTALL_EVENT
from xmpp_ofc.messages import (
    Control,
    DecodedPacketIn,
    FlowRemoved,
    FlowRemovedReason,
    FlowStatsReply,
    MessageType,
    PortStatus,
    PortStatusReason,
)
from xmpp_ofc.openflow.match import match_from_dict
from xmpp_ofc.rest_body import MAX_BODY_BYTES
from xmpp_ofc.testing import frames
from xmpp_ofc.testing.fake_switch import flow_stats, make_port

DPID = "00:00:00:00:00:00:00:01"
DOWN = "00:00:00:00:00:00:00:02"
URL = "/api/xmpp_ofc/dispatcher/v1"
L2_MISS = cookies.encode(Owner.L2_SWITCH, Kind.TABLE_MISS)
L2_FORWARD = cookies.encode(Owner.L2_SWITCH, Kind.FORWARDING, 0x0A)
MONITOR = cookies.encode(Owner.RATE_LIMITER, Kind.MONITOR, 3)
BASE = cookies.encode(Owner.DISPATCHER, Kind.TABLE_MISS)
FRAME = frames.ethernet("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:0a", 0x0806, bytes(28))


@pytest.fixture
def main_module():
    """main.py with synchronous ``@listen_to`` handlers."""
    with synchronous_main("napps.xmpp_ofc.dispatcher.main") as module:
        yield module


def make_switch(dpid: str, connected: bool = True):
    switch = switch_mock(dpid, connected=connected)
    switch.connection.switch = switch
    return switch


@pytest.fixture
def napp(main_module):
    controller = mocked_controller(make_switch(DPID), make_switch(DOWN, connected=False))
    napp = main_module.Main(controller)
    drain(controller.buffers.app)  # it took over the connected switch (tested below)
    return napp


# The shared REST client fixture (test_dispatcher_metrics reuses it from here).
api = kytos_helpers.api


def app_events(napp) -> list:
    return drain(napp.controller.buffers.app)


def switch_up(napp, dpid: str = DPID) -> None:
    switch = napp.controller.switches[dpid]
    napp.on_handshake_completed(
        KytosEvent(name="kytos/of_core.handshake.completed", content={"switch": switch})
    )
    app_events(napp)


def of_in(napp, message_type: str, message, dpid: str = DPID) -> KytosEvent:
    source = napp.controller.switches[dpid].connection
    return KytosEvent(
        name=f"kytos/of_core.v0x04.messages.in.{message_type}",
        content={"message": message, "source": source},
    )


def packet_in(cookie: int, in_port: int = 3, buffer_id: int = 0xFFFFFFFF) -> PacketIn:
    return pyof_packet_in(FRAME, in_port, cookie=cookie, buffer_id=buffer_id)


# --- switch lifecycle --------------------------------------------------------------


def test_handshake_deletes_ours_installs_base_then_restores_each_module_in_order(napp):
    switch = napp.controller.switches[DPID]
    napp.on_handshake_completed(
        KytosEvent(name="kytos/of_core.handshake.completed", content={"switch": switch})
    )
    events = app_events(napp)
    assert [event.name for event in events] == [
        FLOWS_DELETE_EVENT,
        FLOWS_INSTALL_EVENT,
        "xmpp_ofc/dispatcher.l2_switch.restore",
        "xmpp_ofc/dispatcher.rate_limiter.restore",
    ]
    delete, install, restore, _ = events
    assert delete.content == {"dpid": DPID, "flow_dict": {"flows": [pipeline.delete_ours()]}}
    assert install.content == {"dpid": DPID, "flow_dict": {"flows": pipeline.base_pipeline()}}
    assert restore.content == {"dpid": DPID, "message": Control.RESTORE}


def test_disabled_by_setting_module_is_not_restored(main_module, monkeypatch):
    monkeypatch.setattr(main_module.settings, "DISABLED_MODULES", "rate_limiter")
    controller = mocked_controller(make_switch(DPID))
    napp = main_module.Main(controller)
    app_events(napp)
    napp.on_handshake_completed(
        KytosEvent(
            name="kytos/of_core.handshake.completed", content={"switch": controller.switches[DPID]}
        )
    )
    assert "xmpp_ofc/dispatcher.rate_limiter.restore" not in [e.name for e in app_events(napp)]
    monkeypatch.setattr(main_module.settings, "DISABLED_MODULES", "nonsense")
    with pytest.raises(ValueError, match="nonsense"):
        main_module.module_specs("nonsense")


def test_disconnect_tells_switch_down_subscribers(napp):
    switch_up(napp)
    napp.on_switch_disconnected(
        KytosEvent(
            name="kytos/of_core.switch.disconnected",
            content={"switch": napp.controller.switches[DPID], "reason": "gone"},
        )
    )
    events = app_events(napp)
    assert {event.name for event in events} == {
        "xmpp_ofc/dispatcher.l2_switch.switch_down",
        "xmpp_ofc/dispatcher.rate_limiter.switch_down",
    }
    assert events[0].content["message"].up is False
    assert not napp.router.is_connected(DPID)


def test_a_module_loaded_after_the_switch_connected_is_cleaned_and_restored(napp):
    switch_up(napp)
    napp.on_napp_loaded(KytosEvent(name="xmpp_ofc/l2_switch.loaded", content={}))
    events = app_events(napp)
    assert [event.name for event in events] == [
        FLOWS_DELETE_EVENT,
        "xmpp_ofc/dispatcher.l2_switch.restore",
    ]
    assert events[0].content["flow_dict"]["flows"] == [pipeline.delete_owner(Owner.L2_SWITCH)]
    napp.on_napp_loaded(KytosEvent(name="xmpp_ofc/dispatcher.loaded", content={}))
    assert app_events(napp) == []


def test_a_dispatcher_loaded_while_switches_are_up_takes_them_over(main_module, napp):
    fresh = main_module.Main(napp.controller)
    assert fresh.router.connected_switches() == (DPID,)
    assert FLOWS_DELETE_EVENT in [event.name for event in app_events(fresh)]


# --- routing ------------------------------------------------------------------------


def test_packet_in_goes_decoded_to_the_owner_of_its_cookie_only(napp):
    switch_up(napp)
    napp.on_packet_in(of_in(napp, "ofpt_packet_in", packet_in(L2_MISS, buffer_id=12)))
    (event,) = app_events(napp)
    assert event.name == "xmpp_ofc/dispatcher.l2_switch.packet_in"
    assert event.content["dpid"] == DPID
    message = event.content["message"]
    assert isinstance(message, DecodedPacketIn)
    assert (message.in_port, message.cookie, message.table_id, message.buffer_id) == (
        3,
        L2_MISS,
        1,
        12,
    )
    assert message.packet.eth_src == "02:00:00:00:00:0a"
    assert message.packet.raw == FRAME

    napp.on_packet_in(of_in(napp, "ofpt_packet_in", packet_in(MONITOR)))
    assert [e.name for e in app_events(napp)] == ["xmpp_ofc/dispatcher.rate_limiter.packet_in"]


CAPTURE = cookies.encode(Owner.RATE_LIMITER, Kind.CAPTURE, 0)


def test_capture_flood_is_shed_past_the_budget_and_l2_packet_ins_still_pass(napp, caplog):
    """Issue 14 item 5: the rate limiter's packet-ins have their own per-switch budget."""
    switch_up(napp)
    burst = dispatcher_settings.CAPTURE_PACKET_IN_BURST
    flood = burst + 300  # in well under a second: the bucket refills by far less than 300
    with caplog.at_level("WARNING"):
        for _ in range(flood):
            napp.on_packet_in(of_in(napp, "ofpt_packet_in", packet_in(CAPTURE)))
            napp.on_packet_in(of_in(napp, "ofpt_packet_in", packet_in(L2_MISS)))
    names = [e.name for e in app_events(napp)]
    assert names.count("xmpp_ofc/dispatcher.l2_switch.packet_in") == flood
    routed = names.count("xmpp_ofc/dispatcher.rate_limiter.packet_in")
    assert burst <= routed < flood - 100
    shed = metrics.PACKET_INS_SHED.labels(DPID, "xmpp_ofc/rate_limiter")._value.get()
    assert shed == flood - routed
    assert sum("shed" in r.getMessage() for r in caplog.records) == 1


def test_a_packet_in_that_waited_too_long_is_shed_undecoded_and_counted(napp, caplog):
    """Issue 13 item 4: a flood's backlog is dropped, not worked through."""
    import datetime

    switch_up(napp)
    max_age = dispatcher_settings.PACKET_IN_MAX_AGE_S
    fresh, stale = (of_in(napp, "ofpt_packet_in", packet_in(L2_MISS)) for _ in range(2))
    stale.timestamp -= datetime.timedelta(seconds=max_age + 0.5)
    before = metrics.PACKET_INS_SHED.labels(DPID, "stale")._value.get()
    with caplog.at_level("WARNING"):
        napp.on_packet_in(stale)
        napp.on_packet_in(stale)  # the second within the log interval: counted, not logged
        napp.on_packet_in(fresh)
    assert [e.name for e in app_events(napp)] == ["xmpp_ofc/dispatcher.l2_switch.packet_in"]
    assert metrics.PACKET_INS_SHED.labels(DPID, "stale")._value.get() == before + 2
    assert sum("waited more than" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("cookie", [0, 0x1234, BASE, cookies.NO_FLOW_COOKIE])
def test_packet_in_of_no_module_reaches_nobody_and_is_counted(napp, cookie):
    switch_up(napp)
    napp.on_packet_in(of_in(napp, "ofpt_packet_in", packet_in(cookie)))
    assert app_events(napp) == []
    assert sum(napp.router.unrouted_counts(DPID)["packet_in"].values()) == 1


def test_packet_in_for_a_disabled_module_reaches_nobody(napp, api):
    switch_up(napp)
    api.patch(f"{URL}/switches/{DPID}/modules/l2_switch", json={"enabled": False})
    app_events(napp)
    napp.on_packet_in(of_in(napp, "ofpt_packet_in", packet_in(L2_MISS)))
    assert app_events(napp) == []


def test_packet_in_without_in_port_is_dropped_not_raised(napp):
    switch_up(napp)
    message = packet_in(L2_MISS)
    message.match = match_from_dict({})
    napp.on_packet_in(of_in(napp, "ofpt_packet_in", message))
    assert app_events(napp) == []


def test_flow_removed_goes_to_its_owner(napp):
    switch_up(napp)
    removed = PyofFlowRemoved(
        cookie=MONITOR,
        priority=200,
        reason=0,
        table_id=0,
        duration_sec=5,
        duration_nsec=0,
        idle_timeout=30,
        hard_timeout=0,
        packet_count=9,
        byte_count=900,
        match=match_from_dict({"dl_type": 2048, "nw_src": "10.0.0.1"}),
    )
    napp.on_flow_removed(of_in(napp, "ofpt_flow_removed", removed))
    (event,) = app_events(napp)
    assert event.name == "xmpp_ofc/dispatcher.rate_limiter.flow_removed"
    message = event.content["message"]
    assert isinstance(message, FlowRemoved)
    assert message.reason is FlowRemovedReason.IDLE_TIMEOUT
    assert (message.packet_count, message.match["nw_src"]) == (9, "10.0.0.1")


def test_port_status_goes_to_its_subscribers(napp):
    switch_up(napp)
    status = PyofPortStatus(reason=PortReason.OFPPR_MODIFY, desc=make_port(4, link_down=True))
    napp.on_port_status(of_in(napp, "ofpt_port_status", status))
    (event,) = app_events(napp)
    assert event.name == "xmpp_ofc/dispatcher.l2_switch.port_status"
    assert event.content["message"] == PortStatus(
        dpid=DPID,
        port_no=4,
        reason=PortStatusReason.MODIFY,
        name="eth4",
        hw_addr="02:00:00:00:00:04",
        link_down=True,
    )


def test_flow_stats_reply_is_split_among_owners_with_its_xid(napp):
    switch_up(napp)
    body = [
        flow_stats({"cookie": BASE, "priority": 0}),
        flow_stats({"cookie": L2_FORWARD, "table_id": 1, "priority": 100}, packet_count=4),
        flow_stats({"cookie": MONITOR, "priority": 200}, packet_count=7),
        flow_stats({"cookie": 0x99, "priority": 5}),
    ]
    switch = napp.controller.switches[DPID]
    content = {"switch": switch, "source": switch.connection, "xid": 77, "body": body}
    napp.on_multipart_reply(
        KytosEvent(
            name="kytos/of_core.multipart_reply.received", content={**content, "multipart_type": 1}
        )
    )
    # l2_switch does not subscribe to flow stats: its entry is counted, not sent.
    (monitor,) = app_events(napp)
    assert monitor.name == "xmpp_ofc/dispatcher.rate_limiter.flow_stats"
    assert napp.router.unrouted_counts(DPID)["flow_stats"] == {
        "dispatcher_flow": 1,
        "foreign_cookie": 1,
        "not_subscribed": 1,
    }
    assert monitor.content["xid"] == 77
    reply = monitor.content["message"]
    assert isinstance(reply, FlowStatsReply)
    assert [(entry.cookie, entry.packet_count) for entry in reply.entries] == [(MONITOR, 7)]

    napp.on_multipart_reply(
        KytosEvent(
            name="kytos/of_core.multipart_reply.received", content={**content, "multipart_type": 4}
        )
    )
    assert app_events(napp) == []


# --- enable / disable ---------------------------------------------------------------


def test_disable_sends_stop_first_and_the_delete_only_when_the_stop_is_delivered(napp, api):
    switch_up(napp)
    response = api.patch(f"{URL}/switches/{DPID}/modules/l2_switch", json={"enabled": False})
    assert response.status_code == 200
    assert response.json["changed"] is True and response.json["enabled"] is False
    (stop,) = app_events(napp)
    assert stop.name == "xmpp_ofc/dispatcher.l2_switch.stop"
    assert stop.content == {"dpid": DPID, "message": Control.STOP}

    # What l2_switch installs while answering earlier packet-ins is queued now...
    napp.controller.buffers.app.put(KytosEvent(name=FLOWS_INSTALL_EVENT, content={}))
    napp.on_module_stop(stop)  # ...and the delete goes after it.
    install, delete = app_events(napp)
    assert install.name == FLOWS_INSTALL_EVENT
    assert delete.name == FLOWS_DELETE_EVENT
    assert delete.content["flow_dict"]["flows"] == [pipeline.delete_owner(Owner.L2_SWITCH)]
    napp.on_module_stop(stop)  # delivered once: nothing held twice
    assert app_events(napp) == []

    again = api.patch(f"{URL}/switches/{DPID}/modules/l2_switch", json={"enabled": False})
    assert again.json["changed"] is False
    assert app_events(napp) == []


def test_enable_restores_on_a_connected_switch_and_only_records_on_a_down_one(napp, api):
    switch_up(napp)
    api.patch(f"{URL}/switches/{DPID}/modules/l2_switch", json={"enabled": False})
    app_events(napp)
    response = api.patch(f"{URL}/switches/{DPID}/modules/l2_switch", json={"enabled": True})
    assert response.status_code == 200 and response.json["changed"] is True
    assert [e.name for e in app_events(napp)] == ["xmpp_ofc/dispatcher.l2_switch.restore"]

    api.patch(f"{URL}/switches/{DOWN}/modules/l2_switch", json={"enabled": False})
    assert [e.name for e in app_events(napp)] == ["xmpp_ofc/dispatcher.l2_switch.stop"]
    assert api.get(f"{URL}/switches/{DOWN}").json["modules"]["l2_switch"]["enabled"] is False


def test_subscriptions_change_over_rest(napp, api):
    switch_up(napp)
    path = f"{URL}/switches/{DPID}/modules/l2_switch"
    response = api.patch(path, json={"subscriptions": ["packet_in"]})
    assert response.status_code == 200
    assert response.json["subscriptions"] == ["packet_in"]
    status = PyofPortStatus(reason=PortReason.OFPPR_DELETE, desc=make_port(4))
    napp.on_port_status(of_in(napp, "ofpt_port_status", status))
    assert app_events(napp) == []


@pytest.mark.parametrize(
    ("kwargs", "status", "says"),
    [
        ({"json": {"enabled": "false"}}, 400, "enabled"),
        ({"json": {"enabled": False, "colour": 1}}, 400, "colour"),
        ({"json": {}}, 400, "nothing"),
        ({"json": [1]}, 400, "object"),
        ({"json": {"subscriptions": ["telepathy"]}}, 400, "telepathy"),
        ({"json": {"subscriptions": "packet_in"}}, 400, "list"),
        ({"data": "{", "content_type": "application/json"}, 400, "JSON"),
        ({"data": "enabled=0", "content_type": "text/plain"}, 415, "application/json"),
        ({}, 400, "empty"),
        ({"data": "[" * 5000, "content_type": "application/json"}, 400, "nested too deeply"),
        ({"data": " " * (MAX_BODY_BYTES + 1), "content_type": "application/json"}, 413, "bytes"),
    ],
)
def test_bad_patch_bodies_are_refused_and_change_nothing(napp, api, kwargs, status, says):
    switch_up(napp)
    before = napp.router.config.describe(DPID)
    response = api.patch(f"{URL}/switches/{DPID}/modules/l2_switch", **kwargs)
    assert response.status_code == status
    assert says in response.json["response"]
    assert napp.router.config.describe(DPID) == before
    assert app_events(napp) == []


def test_unknown_switch_or_module_is_404(napp, api):
    switch_up(napp)
    body = {"enabled": False}
    assert api.patch(f"{URL}/switches/{DPID}/modules/nope", json=body).status_code == 404
    unknown = "00:00:00:00:00:00:00:99"
    response = api.patch(f"{URL}/switches/{unknown}/modules/l2_switch", json=body)
    assert response.status_code == 404
    assert unknown in response.json["response"]
    assert api.get(f"{URL}/switches/{unknown}").status_code == 404


# --- counters and the switch view ------------------------------------------------------


def test_messages_are_counted_by_switch_direction_and_type(napp, api):
    switch_up(napp)
    connection = napp.controller.switches[DPID].connection
    for name in ("ofpt_packet_in", "ofpt_packet_in", "ofpt_echo_reply"):
        napp.count_message_in(
            KytosEvent(
                name=f"kytos/of_core.v0x04.messages.in.{name}",
                content={"message": None, "source": connection},
            )
        )
    for name in (
        "kytos/flow_manager.messages.out.ofpt_flow_mod",
        "xmpp_ofc/l2_switch.messages.out.ofpt_packet_out",
    ):
        napp.count_message_out(
            KytosEvent(name=name, content={"message": None, "destination": connection})
        )
    view = api.get(f"{URL}/switches/{DPID}").json
    assert view["connected"] is True
    assert view["messages"] == {
        "in": {"ofpt_packet_in": 2, "ofpt_echo_reply": 1},
        "out": {"ofpt_flow_mod": 1, "ofpt_packet_out": 1},
    }
    assert view["modules"]["l2_switch"] == {
        "enabled": True,
        "subscriptions": ["packet_in", "port_status", "switch_down"],
    }
    listing = api.get(f"{URL}/switches").json["switches"]
    assert set(listing) == {DPID, DOWN}
    assert listing[DOWN]["connected"] is False


def matching_handlers(napp, event_name: str) -> list[str]:
    """Every (pattern, handler) registration Kytos would call for ``event_name``."""
    return sorted(
        handler.__name__
        for pattern, handlers in napp._listeners.items()
        for handler in handlers
        if re.match(pattern if pattern.endswith("$") else pattern + "$", event_name)
    )


@pytest.mark.parametrize(
    ("event_name", "handlers"),
    [
        ("kytos/of_core.v0x04.messages.in.ofpt_packet_in", ["count_message_in", "on_packet_in"]),
        ("kytos/of_core.v0x04.messages.in.ofpt_echo_request", ["count_message_in"]),
        ("kytos/of_core.v0x04.messages.out.ofpt_hello", ["count_message_out"]),
        ("kytos/flow_manager.messages.out.ofpt_flow_mod", ["count_message_out"]),
        ("xmpp_ofc/l2_switch.messages.out.ofpt_packet_out", ["count_message_out"]),
        ("xmpp_ofc/dispatcher.l2_switch.stop", ["on_module_stop"]),
        ("xmpp_ofc/dispatcher.l2_switch.restore", []),
        ("xmpp_ofc/l2_switch.loaded", ["on_napp_loaded"]),
        ("kytos/of_core.handshake.completed", ["on_handshake_completed"]),
        ("kytos/flow_manager.flow.added", []),
    ],
)
def test_each_event_reaches_each_handler_once(napp, event_name, handlers):
    assert matching_handlers(napp, event_name) == handlers


def test_routed_events_are_named_by_module_and_type(napp):
    switch_up(napp)
    napp._notify("l2_switch", MessageType.PACKET_IN, DPID, None)
    assert app_events(napp)[0].name == "xmpp_ofc/dispatcher.l2_switch.packet_in"
