"""The xmpp_ofc/l2_switch NApp shell, driven with kytos.lib.helpers' real controller.

Its input is what the dispatcher routes (``xmpp_ofc/dispatcher.l2_switch.*`` with
decoded messages); its output is flow_manager events on the app buffer and pyof
packet-outs on the msg_out buffer.
"""

from __future__ import annotations

import importlib
import re

import pytest
from kytos.core import KytosEvent
from pyof.v0x04.controller2switch.packet_out import PacketOut as PyofPacketOut

from tests import kytos_helpers
from tests.kytos_helpers import drain, mocked_controller, switch_mock
from xmpp_ofc import cookies, pipeline
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.kytos_commands import FLOWS_DELETE_EVENT, FLOWS_INSTALL_EVENT
from xmpp_ofc.messages import (
    NO_BUFFER,
    Control,
    DecodedPacketIn,
    MessageType,
    PortStatus,
    PortStatusReason,
    module_event_name,
)
from xmpp_ofc.settings_env import SettingError
from xmpp_ofc.testing import frames

DPID = "00:00:00:00:00:00:00:01"
URL = "/api/xmpp_ofc/l2_switch/v1"
MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"
BROADCAST = "ff:ff:ff:ff:ff:ff"


@pytest.fixture
def clock(monkeypatch):
    """The NApp's monotonic clock, moved by the test."""
    from napps.xmpp_ofc.l2_switch import main

    now = [1000.0]
    monkeypatch.setattr(main.time, "monotonic", lambda: now[0])
    return now


@pytest.fixture
def napp(clock):
    from napps.xmpp_ofc.l2_switch.main import Main

    return Main(mocked_controller(switch_mock(DPID)))


# The shared REST test-client fixture.
api = kytos_helpers.api


def routed(kind, message, dpid: str = DPID) -> KytosEvent:
    return KytosEvent(
        name=module_event_name("l2_switch", kind), content={"dpid": dpid, "message": message}
    )


def restore(napp, dpid: str = DPID) -> None:
    napp.on_restore(routed(Control.RESTORE, Control.RESTORE, dpid))
    drain(napp.controller.buffers.app)


def packet_in(napp, src: str, dst: str, in_port: int, buffer_id: int = NO_BUFFER) -> bytes:
    frame = frames.ethernet(dst, src, 0x0800, b"\x45" + bytes(40))
    message = DecodedPacketIn.from_frame(
        dpid=DPID, in_port=in_port, data=frame, table_id=1, buffer_id=buffer_id
    )
    if buffer_id != NO_BUFFER:
        frame = b""
    napp.on_packet_in(routed(MessageType.PACKET_IN, message))
    return frame


def packet_outs(napp) -> list[PyofPacketOut]:
    events = drain(napp.controller.buffers.msg_out)
    assert {event.name for event in events} <= {"xmpp_ofc/l2_switch.messages.out.ofpt_packet_out"}
    switch = napp.controller.switches[DPID]
    assert all(event.content["destination"] is switch.connection for event in events)
    return [event.content["message"] for event in events]


def flow_events(napp) -> list[tuple[str, list[dict]]]:
    return [
        (event.name, event.content["flow_dict"]["flows"])
        for event in drain(napp.controller.buffers.app)
    ]


def data(packet_out: PyofPacketOut) -> bytes:
    return getattr(packet_out.data, "value", packet_out.data)


def ports(packet_out: PyofPacketOut) -> list[int]:
    return [int(action.port) for action in packet_out.actions]


def test_restore_installs_the_table1_miss_flow(napp):
    napp.on_restore(routed(Control.RESTORE, Control.RESTORE))
    assert flow_events(napp) == [(FLOWS_INSTALL_EVENT, [pipeline.l2_table_miss()])]


def test_packet_ins_before_restore_are_ignored(napp):
    packet_in(napp, MAC_A, BROADCAST, 1)
    assert packet_outs(napp) == []
    assert flow_events(napp) == []


def test_unknown_destination_floods_and_the_reply_installs_a_flow_and_packet_out(napp):
    restore(napp)
    frame = packet_in(napp, MAC_A, BROADCAST, 1)
    (flood,) = packet_outs(napp)
    assert ports(flood) == [pipeline.OFPP_FLOOD]
    assert (int(flood.in_port), int(flood.buffer_id), data(flood)) == (1, NO_BUFFER, frame)
    assert flow_events(napp) == []

    reply = packet_in(napp, MAC_B, MAC_A, 2)
    assert flow_events(napp) == [
        (
            FLOWS_INSTALL_EVENT,
            [
                pipeline.l2_forwarding(
                    in_port=2, eth_dst=MAC_A, out_port=1, idle_timeout=10, hard_timeout=30
                )
            ],
        )
    ]
    (out,) = packet_outs(napp)
    assert ports(out) == [1]
    assert data(out) == reply


def test_buffered_packet_out_names_the_buffer_and_carries_no_data(napp):
    restore(napp)
    packet_in(napp, MAC_A, BROADCAST, 1, buffer_id=42)
    (out,) = packet_outs(napp)
    assert int(out.buffer_id) == 42
    assert data(out) == b""


def test_packet_out_to_a_switch_that_went_away_is_dropped_not_raised(napp):
    restore(napp)
    napp.controller.switches[DPID].is_connected.return_value = False
    packet_in(napp, MAC_A, BROADCAST, 1)
    assert packet_outs(napp) == []
    assert napp.sender.messages_not_sent == 1


def test_a_mac_seen_on_a_new_port_deletes_flows_towards_the_old_one(napp):
    restore(napp)
    packet_in(napp, MAC_A, BROADCAST, 1)
    packet_in(napp, MAC_A, BROADCAST, 3)
    assert flow_events(napp) == [(FLOWS_DELETE_EVENT, [pipeline.l2_delete_towards(MAC_A)])]


def test_stop_forgets_the_switch_and_later_packet_ins_are_ignored(napp, api):
    restore(napp)
    packet_in(napp, MAC_A, BROADCAST, 1)
    drain(napp.controller.buffers.msg_out)
    napp.on_stop(routed(Control.STOP, Control.STOP))
    assert api.get(f"{URL}/mac_table/{DPID}").status_code == 404
    packet_in(napp, MAC_B, MAC_A, 2)
    assert packet_outs(napp) == []
    assert flow_events(napp) == []


def test_switch_down_forgets_the_switch(napp):
    restore(napp)
    packet_in(napp, MAC_A, BROADCAST, 1)
    napp.on_stop(routed(MessageType.SWITCH_DOWN, None))
    assert napp.learning.switches() == ()


def test_a_port_going_down_forgets_its_macs_and_their_flows(napp):
    restore(napp)
    packet_in(napp, MAC_A, BROADCAST, 1)
    status = PortStatus(dpid=DPID, port_no=1, reason=PortStatusReason.MODIFY, link_down=True)
    napp.on_port_status(routed(MessageType.PORT_STATUS, status))
    assert flow_events(napp) == [(FLOWS_DELETE_EVENT, [pipeline.l2_delete_towards(MAC_A)])]
    assert napp.learning.where_is(DPID, MAC_A, 1000.0) is None


def test_aging_timer_expires_entries(napp, clock, api):
    restore(napp)
    packet_in(napp, MAC_A, BROADCAST, 1)
    clock[0] += napp.learning.settings.mac_aging + 1
    napp.execute()
    assert api.get(f"{URL}/mac_table/{DPID}").json["entries"] == []
    assert napp.learning.stats(DPID).learned == 0


def test_rest_mac_table_and_flush(napp, clock, api):
    restore(napp)
    packet_in(napp, MAC_A, BROADCAST, 1)
    clock[0] += 2.5
    packet_in(napp, MAC_B, MAC_A, 2)
    drain(napp.controller.buffers.app)
    body = api.get(f"{URL}/mac_table/{DPID}").json
    assert body["entries"] == [
        {"mac": MAC_A, "port": 1, "age": 2.5},
        {"mac": MAC_B, "port": 2, "age": 0.0},
    ]
    assert body["stats"] == {
        "learned": 2,
        "refused": 0,
        "refused_per_port": {},
        "moves": 0,
        "refused_flows": 0,
    }
    assert set(api.get(f"{URL}/mac_table").json["switches"]) == {DPID}

    response = api.delete(f"{URL}/mac_table/{DPID}")
    assert response.status_code == 200
    assert response.json == {"dpid": DPID, "flushed": 2}
    assert flow_events(napp) == [(FLOWS_DELETE_EVENT, [pipeline.l2_delete_forwarding()])]
    assert api.get(f"{URL}/mac_table/{DPID}").json["entries"] == []


def test_rest_unknown_switch_is_404_and_changes_nothing(napp, api):
    unknown = "00:00:00:00:00:00:00:99"
    for method in (api.get, api.delete):
        response = method(f"{URL}/mac_table/{unknown}")
        assert response.status_code == 404
        assert unknown in response.json["response"]
    assert flow_events(napp) == []


def test_bounded_learning_refuses_past_the_bound_and_counts(monkeypatch, clock):
    from napps.xmpp_ofc.l2_switch import main, settings

    monkeypatch.setattr(settings, "MAX_MACS_PER_PORT", 2)
    napp = main.Main(mocked_controller())
    restore(napp)
    for index in range(5):
        packet_in(napp, f"02:00:00:00:01:{index:02x}", BROADCAST, 7)
    stats = napp.learning.stats(DPID)
    assert (stats.learned, stats.refused, stats.refused_per_port) == (2, 3, {7: 3})


def test_settings_come_from_the_environment_and_are_validated(monkeypatch):
    from napps.xmpp_ofc.l2_switch import main, settings

    monkeypatch.setenv("XMPP_OFC_L2_SWITCH_IDLE_TIMEOUT", "5")
    monkeypatch.setenv("XMPP_OFC_L2_SWITCH_HARD_TIMEOUT", "60")
    try:
        importlib.reload(settings)
        chosen = main.learning_settings()
        assert (chosen.idle_timeout, chosen.hard_timeout) == (5, 60)
        monkeypatch.setenv("XMPP_OFC_L2_SWITCH_IDLE_TIMEOUT", "0")
        monkeypatch.setenv("XMPP_OFC_L2_SWITCH_HARD_TIMEOUT", "0")
        importlib.reload(settings)
        with pytest.raises(ValueError, match="permanent"):
            main.learning_settings()
        monkeypatch.setenv("XMPP_OFC_L2_SWITCH_IDLE_TIMEOUT", "ten")
        with pytest.raises(SettingError, match="IDLE_TIMEOUT"):
            importlib.reload(settings)
    finally:
        monkeypatch.delenv("XMPP_OFC_L2_SWITCH_IDLE_TIMEOUT")
        monkeypatch.delenv("XMPP_OFC_L2_SWITCH_HARD_TIMEOUT")
        importlib.reload(settings)


@pytest.mark.parametrize(
    ("kind", "handler"),
    [
        (Control.RESTORE, "on_restore"),
        (Control.STOP, "on_stop"),
        (MessageType.SWITCH_DOWN, "on_stop"),
        (MessageType.PACKET_IN, "on_packet_in"),
        (MessageType.PORT_STATUS, "on_port_status"),
        (MessageType.FLOW_STATS, None),
    ],
)
def test_each_routed_event_reaches_one_handler_once(napp, kind, handler):
    name = module_event_name("l2_switch", kind)
    matched = [
        method.__name__
        for pattern, methods in napp._listeners.items()
        for method in methods
        if re.match(pattern + "$", name)
    ]
    assert matched == ([handler] if handler else [])
    assert not any(
        re.match(pattern + "$", module_event_name("rate_limiter", kind))
        for pattern in napp._listeners
        if pattern.startswith("xmpp_ofc")
    )


def test_refused_forwarding_flow_is_counted_and_other_modules_errors_are_not(napp, api):
    restore(napp)
    packet_in(napp, MAC_A, BROADCAST, 1)
    packet_in(napp, MAC_B, MAC_A, 2)  # installs the forwarding flow towards MAC_A
    drain(napp.controller.buffers.app)

    def error_event(flow: dict) -> KytosEvent:
        return KytosEvent(
            name="kytos/flow_manager.flow.error",
            content={
                "datapath": switch_mock(DPID),
                "flow": flow,
                "error_command": "add",
                "error_type": 5,
                "error_code": 1,
                "error_type_name": "OFPET_FLOW_MOD_FAILED",
                "error_code_name": "OFPFMFC_TABLE_FULL",
            },
        )

    forwarding = {"cookie": cookies.encode(Owner.L2_SWITCH, Kind.FORWARDING, 0xA), "match": {}}
    napp.on_flow_error(error_event(forwarding))
    not_ours = {"cookie": cookies.encode(Owner.RATE_LIMITER, Kind.BLOCK, 1), "match": {}}
    napp.on_flow_error(error_event(not_ours))
    body = api.get(f"{URL}/mac_table/{DPID}").json
    assert body["stats"]["refused_flows"] == 1
    assert body["stats"]["learned"] == 2  # nothing rolled back
