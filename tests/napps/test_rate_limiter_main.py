"""The xmpp_ofc/rate_limiter NApp shell, driven with kytos.lib.helpers' real controller.

Its input is what the dispatcher routes (``xmpp_ofc/dispatcher.rate_limiter.*``
with decoded messages) plus of_core's meter-features reply; its output is
flow_manager events and ordered meter-mod events on the app buffer, and pyof
requests on msg_out. State lives in a real SQLite file under ``tmp_path``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from kytos.core import KytosEvent
from pyof.v0x04.controller2switch.multipart_reply import MeterFeatures

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.limiter import Instant
from tests import kytos_helpers
from tests.kytos_helpers import drain, mocked_controller, switch_mock
from xmpp_ofc.kytos_commands import FLOWS_DELETE_EVENT, FLOWS_INSTALL_EVENT
from xmpp_ofc.messages import Control, FlowRemovedReason, FlowStatsReply, MessageType
from xmpp_ofc.messages import module_event_name as routed_name
from xmpp_ofc.rest_body import MAX_BODY_BYTES

# The rate limiter's message builders live with its unit tests (site-packages has
# a "tests.unit" package of its own, so they are imported by directory).
sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
from test_rate_limiter_helpers import packet_in, removed, stats_entry

DPID = "00:00:00:00:00:00:00:01"
URL = "/api/xmpp_ofc/rate_limiter/v1"
ORDERED = "xmpp_ofc/rate_limiter.internal.ordered_msg_out"
REQUEST = "xmpp_ofc/rate_limiter.messages.out.ofpt_multipart_request"
FAST = Client("10.0.0.7", 40001)
SLOW = Client("10.0.0.8", 40002)
WALL0 = 1_700_000_000.0


@pytest.fixture
def clock(monkeypatch):
    """The shell's clock (both monotonic and wall), moved by the test."""
    from napps.xmpp_ofc.rate_limiter import main

    offset = [0.0]
    monkeypatch.setattr(
        main, "now", lambda: Instant(mono=1000.0 + offset[0], wall=WALL0 + offset[0])
    )
    return offset


@pytest.fixture
def db_path(tmp_path, monkeypatch):
    from napps.xmpp_ofc.rate_limiter import settings

    path = tmp_path / "rate_limiter.sqlite"
    monkeypatch.setattr(settings, "DB_PATH", str(path))
    return path


def make_napp():
    from napps.xmpp_ofc.rate_limiter.main import Main

    return Main(mocked_controller(switch_mock(DPID)))


@pytest.fixture
def napp(clock, db_path):
    napp = make_napp()
    yield napp
    napp.shutdown()


# The shared REST test-client fixture.
api = kytos_helpers.api


def routed(kind, message, dpid: str = DPID, **extra) -> KytosEvent:
    return KytosEvent(
        name=routed_name("rate_limiter", kind), content={"dpid": dpid, "message": message, **extra}
    )


def flow_events(napp) -> list[tuple[str, list[dict]]]:
    """(event name, flows) of every app-buffer event; meter mods as (ORDERED, [])."""
    result = []
    for event in drain(napp.controller.buffers.app):
        flows_ = event.content.get("flow_dict", {}).get("flows", [])
        result.append((event.name, flows_))
    return result


def restore(napp) -> list[tuple[str, list[dict]]]:
    napp.on_restore(routed(Control.RESTORE, Control.RESTORE))
    return flow_events(napp)


def poll(napp) -> int:
    """Run the timer; return the xid of the one flow-stats request it sent."""
    drain(napp.controller.buffers.msg_out)
    napp.execute()
    requests = drain(napp.controller.buffers.msg_out)
    assert [event.name for event in requests] == [REQUEST]
    return int(requests[0].content["message"].header.xid)


def monitor_started(napp, client: Client) -> None:
    napp.on_packet_in(routed(MessageType.PACKET_IN, packet_in(client.ip, client.port)))
    (name, (flow,)), *_ = flow_events(napp)
    assert name == FLOWS_INSTALL_EVENT
    assert flow == flows.monitor_flow(client, 5222, idle_timeout=120)


def answer(napp, xid: int, *entries) -> None:
    napp.evaluate_flow_stats(
        routed(MessageType.FLOW_STATS, FlowStatsReply(DPID, tuple(entries)), xid=xid)
    )


def block_fast_client(napp, clock) -> None:
    """Monitor FAST and SLOW; FAST floods, over its allowance at t=8, 9 and 10 (blocked then).

    SLOW sends one small packet a second (60 packets/min).

    The shipped defaults: a poll a second, acted on after 2 s over the allowance.
    """
    restore(napp)
    monitor_started(napp, FAST)
    monitor_started(napp, SLOW)
    answer(napp, poll(napp), stats_entry(FAST, 10, 2000, 1.0), stats_entry(SLOW, 2, 200, 1.0))
    for t in (8.0, 9.0, 10.0):
        clock[0] = t
        sent = int(t - 7) * 500
        answer(
            napp,
            poll(napp),
            stats_entry(FAST, 10 + sent, 2000 + sent * 300, t + 1),
            stats_entry(SLOW, int(t) - 6, 200 + (int(t) - 8) * 132, t + 1),  # 1 ACK/s
        )


# --- events -------------------------------------------------------------------------------


def test_restore_installs_capture_flows_and_asks_for_meter_features(napp):
    events = restore(napp)
    assert events == [(FLOWS_INSTALL_EVENT, flows.capture_flows([5222]))]
    (request,) = drain(napp.controller.buffers.msg_out)
    assert request.name == REQUEST
    assert int(request.content["message"].multipart_type) == 11


def test_capture_packet_in_installs_a_monitor_flow(napp):
    restore(napp)
    monitor_started(napp, FAST)
    status = napp.limiter.status()["switches"][DPID]
    assert status["monitored"] == 1


def test_packet_in_of_a_switch_we_do_not_run_on_is_ignored(napp):
    napp.on_packet_in(routed(MessageType.PACKET_IN, packet_in(FAST.ip, FAST.port)))
    assert flow_events(napp) == []


def test_poll_is_one_cookie_filtered_request(napp):
    restore(napp)
    monitor_started(napp, FAST)
    monitor_started(napp, SLOW)
    drain(napp.controller.buffers.msg_out)
    napp.execute()
    (request,) = drain(napp.controller.buffers.msg_out)
    body = request.content["message"].body
    assert (body.cookie, body.cookie_mask) == flows.monitor_poll_selector()
    napp.execute()  # not due again yet
    assert drain(napp.controller.buffers.msg_out) == []


def test_flow_stats_block_the_flooder_and_delete_its_monitor(napp, clock):
    block_fast_client(napp, clock)
    events = flow_events(napp)
    assert events[0] == (FLOWS_INSTALL_EVENT, flows.block_flows(FAST, [5222], 60))
    assert events[1] == (FLOWS_DELETE_EVENT, [flows.delete_monitor(FAST, 5222)])
    assert len(events) == 2
    blocked = napp.limiter.blocked()
    assert [(b["ip"], b["port"], b["manual"]) for b in blocked] == [(FAST.ip, FAST.port, False)]
    assert [m["ip"] for m in napp.limiter.monitored()] == [SLOW.ip]


def test_metrics_read_the_limiters_state_and_time_the_poll(napp, clock):
    from prometheus_client import REGISTRY

    from xmpp_ofc import metrics

    block_fast_client(napp, clock)
    samples = {name: list(values) for name, values in napp.metrics_snapshot().items()}
    assert samples["xmpp_ofc_monitored_clients"] == [((DPID,), 1)]
    assert samples["xmpp_ofc_blocked_clients"] == [((DPID,), 1)]
    assert samples["xmpp_ofc_blocks"] == [(("auto",), 1)]
    assert samples["xmpp_ofc_client_packets_per_minute"] == [
        ((DPID, SLOW.ip, str(SLOW.port)), pytest.approx(60.0))
    ]
    polls = REGISTRY.get_sample_value("xmpp_ofc_poll_secs_count", {metrics.DP_ID: DPID})
    assert polls is not None and polls >= 2


def test_a_reply_to_someone_elses_poll_is_not_evaluated(napp, clock):
    restore(napp)
    monitor_started(napp, FAST)
    xid = poll(napp)
    answer(napp, xid, stats_entry(FAST, 10, 2000, 1.0))
    clock[0] = 3.0
    answer(napp, xid + 1000, stats_entry(FAST, 10 + 500, 2000 + 500 * 300, 4.0))  # of_core's
    answer(napp, xid, stats_entry(FAST, 10 + 500, 2000 + 500 * 300, 4.0))  # answered already
    assert flow_events(napp) == []
    assert napp.limiter.blocked() == []


def test_block_flow_removed_unblocks_and_counts(napp, clock):
    block_fast_client(napp, clock)
    flow_events(napp)
    (drop,) = flows.block_flows(FAST, [5222], 60)
    clock[0] = 70.0
    napp.on_flow_removed(
        routed(MessageType.FLOW_REMOVED, removed(drop, FlowRemovedReason.HARD_TIMEOUT, 60.0))
    )
    assert napp.limiter.blocked() == []
    assert napp.limiter.status()["unblocks_total"] == {"expired": 1}
    kinds = [e["kind"] for e in napp.limiter.history()]
    assert kinds == ["block", "unblock"]


def test_meter_features_switch_to_meters_before_the_flows_that_use_them(napp, db_path, clock):
    napp.limiter.update_settings({"mode": "meter"}, clock_now(clock))
    restore(napp)
    drain(napp.controller.buffers.msg_out)
    features = MeterFeatures(
        max_meter=100, band_types=2, capabilities=0xF, max_bands=1, max_color=0
    )
    switch = napp.controller.switches[DPID]
    napp.on_multipart_reply(
        KytosEvent(
            name="kytos/of_core.multipart_reply.received",
            content={"switch": switch, "xid": 1, "multipart_type": 11, "body": [features]},
        )
    )
    assert napp.limiter.status()["switches"][DPID]["mode"] == "meter"
    drain(napp.controller.buffers.app)
    napp.on_packet_in(routed(MessageType.PACKET_IN, packet_in(FAST.ip, FAST.port)))
    events = drain(napp.controller.buffers.app)
    assert [event.name for event in events] == [ORDERED, FLOWS_INSTALL_EVENT]
    (flow,) = events[1].content["flow_dict"]["flows"]
    assert flow["instructions"][0] == {"instruction_type": "meter", "meter_id": 1}
    napp.forward_meter_mod(events[0])
    (meter_mod,) = drain(napp.controller.buffers.msg_out)
    assert meter_mod.name == "xmpp_ofc/rate_limiter.messages.out.ofpt_meter_mod"
    assert meter_mod.content["destination"] is switch.connection
    assert meter_mod.content["message"].meter_id == 1


def clock_now(clock) -> Instant:
    return Instant(mono=1000.0 + clock[0], wall=WALL0 + clock[0])


def test_stop_forgets_the_switch(napp):
    restore(napp)
    monitor_started(napp, FAST)
    napp.on_stop(routed(Control.STOP, Control.STOP))
    assert napp.limiter.known_switches() == []
    napp.on_packet_in(routed(MessageType.PACKET_IN, packet_in(SLOW.ip, SLOW.port)))
    assert flow_events(napp) == []


def test_restart_restores_blocks_with_their_remaining_time(napp, db_path, clock):
    block_fast_client(napp, clock)
    flow_events(napp)
    napp.shutdown()
    clock[0] = 30.0  # the 60 s block started at 10 s: 40 s left
    again = make_napp()
    try:
        (block,) = again.limiter.blocked()
        assert (block["ip"], block["port"]) == (FAST.ip, FAST.port)
        events = restore(again)
        assert events == [
            (
                FLOWS_INSTALL_EVENT,
                flows.capture_flows([5222]) + flows.block_flows(FAST, [5222], 40),
            )
        ]
    finally:
        again.shutdown()


# --- REST -----------------------------------------------------------------------------------


def snapshot(napp) -> tuple:
    """Everything a refused request must leave as it was."""
    return (
        napp.limiter.blocked(),
        napp.limiter.monitored(),
        napp.limiter.settings.to_json(),
        napp.limiter.history(),
        napp.controller.buffers.app.qsize(),
        napp.controller.buffers.msg_out.qsize(),
    )


def test_get_monitored_blocked_status_events(api, napp, clock):
    block_fast_client(napp, clock)
    clock[0] = 25.0
    response = api.get(f"{URL}/monitored")
    assert response.status_code == 200
    (slow,) = response.json["monitored"]
    assert (slow["ip"], slow["port"], slow["server_port"]) == (SLOW.ip, SLOW.port, 5222)
    assert slow["packets_per_min"] == pytest.approx(60.0)
    assert slow["since"] == WALL0
    response = api.get(f"{URL}/blocked")
    (fast,) = response.json["blocked"]
    assert fast["remaining"] == pytest.approx(45.0)
    assert fast["expires"] == WALL0 + 70.0
    assert fast["manual"] is False and "msg/s > 5 msg/s" in fast["reason"]
    status = api.get(f"{URL}/status").json
    assert status["switches"][DPID]["mode"] == "block"
    assert status["blocks_total"] == {"auto": 1}
    events = api.get(f"{URL}/events?limit=1").json["events"]
    assert [e["kind"] for e in events] == ["block"]
    assert api.get(f"{URL}/monitored?dpid=nope").status_code == 404


def test_lists_are_pages_with_the_total(api, napp, clock):
    restore(napp)
    for port in range(41000, 41005):
        monitor_started(napp, Client("10.0.2.1", port))
    monitor_started(napp, Client("10.0.3.1", 42000))
    body = api.get(f"{URL}/monitored?limit=2&sort=port").json
    assert [c["port"] for c in body["monitored"]] == [41000, 41001]
    assert (body["total"], body["offset"], body["next_offset"]) == (6, 0, 2)
    body = api.get(f"{URL}/monitored?limit=2&offset=4&sort=port").json
    assert [c["port"] for c in body["monitored"]] == [41004, 42000]
    assert body["next_offset"] is None
    body = api.get(f"{URL}/monitored?prefix=10.0.3.0/24").json
    assert [(c["ip"], c["port"]) for c in body["monitored"]] == [("10.0.3.1", 42000)]
    assert api.get(f"{URL}/monitored?q=41003").json["total"] == 1
    assert api.get(f"{URL}/monitored").json["limit"] == 100
    for ip in ("10.0.4.1", "10.0.4.2"):
        assert api.post(f"{URL}/blocked", json={"dpid": DPID, "ip": ip}).status_code == 201
    body = api.get(f"{URL}/blocked?ip=10.0.4.2").json
    assert [b["ip"] for b in body["blocked"]] == ["10.0.4.2"] and body["total"] == 1
    body = api.get(f"{URL}/events?kind=block&limit=1").json
    assert [e["ip"] for e in body["events"]] == ["10.0.4.2"]
    assert (body["total"], body["offset"]) == (2, 1)


@pytest.mark.parametrize("path", ["monitored", "blocked", "events"])
@pytest.mark.parametrize(
    "query", ["limit=0", "limit=1001", "offset=-1", "sort=nope", "prefix=10.0.0.0/40", "x=1"]
)
def test_bad_list_parameters_are_a_400(api, napp, path, query):
    restore(napp)
    response = api.get(f"{URL}/{path}?{query}")
    assert response.status_code == 400
    assert (
        response.json["response"].split(":")[0] in query or "unknown" in response.json["response"]
    )


def test_status_counts_messages_for_switches_that_are_not_connected(api, napp):
    restore(napp)
    assert api.get(f"{URL}/status").json["messages_not_sent"] == 0
    napp.controller.switches[DPID].is_connected.return_value = False
    napp.sender.request_meter_features(DPID)  # a request, not a packet-out: counted too
    assert api.get(f"{URL}/status").json["messages_not_sent"] == 1


def test_manual_block_and_unblock(api, napp, clock):
    restore(napp)
    body = {"dpid": DPID, "ip": "2001:db8::7", "port": 5000, "duration": 30, "reason": "test"}
    response = api.post(f"{URL}/blocked", json=body)
    assert response.status_code == 201, response.json
    assert response.json["block"]["manual"] is True
    target = Client("2001:db8::7", 5000)
    assert flow_events(napp) == [(FLOWS_INSTALL_EVENT, flows.block_flows(target, [5222], 30))]
    response = api.delete(f"{URL}/blocked/{DPID}/2001:db8::7/5000")
    assert response.status_code == 200, response.json
    assert flow_events(napp) == [(FLOWS_DELETE_EVENT, [flows.delete_block(target)])]
    assert napp.limiter.status()["unblocks_total"] == {"manual": 1}


def test_blocking_again_extends_the_block(api, napp, clock):
    restore(napp)
    body = {"dpid": DPID, "ip": "10.0.0.5", "port": 5000, "duration": 30, "reason": "first"}
    response = api.post(f"{URL}/blocked", json=body)
    assert response.status_code == 201, response.json
    assert response.json["replaced"] is False
    flow_events(napp)
    clock[0] = 10.0
    response = api.post(f"{URL}/blocked", json={**body, "duration": 90, "reason": "again"})
    assert response.status_code == 200, response.json
    assert response.json["replaced"] is True
    assert response.json["block"]["reason"] == "again"
    target = Client("10.0.0.5", 5000)
    assert flow_events(napp) == [(FLOWS_INSTALL_EVENT, flows.block_flows(target, [5222], 90))]
    (listed,) = api.get(f"{URL}/blocked").json["blocked"]
    assert (listed["reason"], listed["since"]) == ("again", WALL0)
    assert listed["expires"] == pytest.approx(WALL0 + 100.0)
    assert api.get(f"{URL}/status").json["blocks_total"] == {"manual": 1}
    events = api.get(f"{URL}/events").json["events"]
    assert [e["kind"] for e in events] == ["block", "extend"]


def test_whole_address_block_and_unblock(api, napp):
    restore(napp)
    response = api.post(f"{URL}/blocked", json={"dpid": DPID, "ip": "10.0.0.9"})
    assert response.status_code == 201, response.json
    assert response.json["block"]["port"] is None
    assert api.delete(f"{URL}/blocked/{DPID}/10.0.0.9").status_code == 200
    assert napp.limiter.blocked() == []


UNKNOWN_DPID = "00:00:00:00:00:00:00:99"
BAD_POSTS = [
    ({"dpid": DPID, "ip": "10.0.0.300"}, 400),
    ({"dpid": DPID, "ip": "10.0.0.1", "port": 0}, 400),
    ({"dpid": DPID, "ip": "10.0.0.1", "port": 70000}, 400),
    ({"dpid": DPID, "ip": "10.0.0.1", "port": "80"}, 400),
    ({"dpid": DPID, "ip": "10.0.0.1", "duration": -5}, 400),
    ({"dpid": DPID, "ip": "10.0.0.1", "duration": 10**9}, 400),
    ({"dpid": DPID, "ip": "10.0.0.1", "duration": 1.5}, 400),
    ({"dpid": DPID, "ip": "10.0.0.1", "reason": 7}, 400),
    ({"dpid": DPID, "ip": "10.0.0.1", "colour": "red"}, 400),
    ({"dpid": DPID}, 400),
    ({"ip": "10.0.0.1"}, 400),
    ({"dpid": UNKNOWN_DPID, "ip": "10.0.0.1"}, 404),
    ({"dpid": DPID, "ip": "192.168.1.5"}, 409),
]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"dpid": UNKNOWN_DPID, "ip": "10.0.0.500"}, "ip: '10.0.0.500' is not an IPv4 or IPv6"),
        ({"dpid": UNKNOWN_DPID, "ip": "10.0.0.5", "port": 0}, "port: must be an integer"),
        ({"dpid": UNKNOWN_DPID, "ip": "10.0.0.5", "duration": 0}, "duration: must be"),
        ({"dpid": UNKNOWN_DPID, "ip": "10.0.0.5", "reason": 1}, "reason: must be"),
    ],
)
def test_a_bad_field_is_a_400_naming_it_even_on_an_unknown_switch(api, napp, body, says):
    restore(napp)
    response = api.post(f"{URL}/blocked", json=body)
    assert response.status_code == 400
    assert response.json["response"].startswith(says)


@pytest.mark.parametrize(("body", "status"), BAD_POSTS)
def test_refused_block_changes_nothing(api, napp, body, status):
    napp.limiter.update_settings({"whitelist": ["192.168.1.0/24"]}, clock_now([0.0]))
    restore(napp)
    before = snapshot(napp)
    response = api.post(f"{URL}/blocked", json=body)
    assert response.status_code == status
    assert isinstance(response.json["response"], str) and response.json["response"]
    assert snapshot(napp) == before


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b"", "application/json", 400),
        (b"{}", "application/json", 400),
        (b"[" * 5000, "application/json", 400),  # RecursionError inside json.loads
        (b" " * (MAX_BODY_BYTES + 1), "application/json", 413),
        (json.dumps({"dpid": DPID, "ip": "10.0.0.1"}).encode(), "text/plain", 415),
    ],
)
@pytest.mark.parametrize("method_path", [("post", "blocked"), ("patch", "settings")])
def test_malformed_bodies_change_nothing(api, napp, data, content_type, status, method_path):
    restore(napp)
    before = snapshot(napp)
    method, path = method_path
    response = getattr(api, method)(f"{URL}/{path}", data=data, content_type=content_type)
    assert response.status_code == status
    assert response.json["response"]
    assert snapshot(napp) == before


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"blocked/{DPID}/10.0.0.1/5000", 404),  # not blocked
        (f"blocked/{DPID}/10.0.0.1", 404),
        ("blocked/00:00:00:00:00:00:00:99/10.0.0.1/5000", 404),
        (f"blocked/{DPID}/not-an-ip/5000", 400),
        (f"blocked/{UNKNOWN_DPID}/not-an-ip/5000", 400),  # the request first, then the switch
        (f"blocked/{DPID}/10.0.0.1/port", 400),
        (f"blocked/{DPID}/10.0.0.1/0", 400),
        (f"blocked/{DPID}/10.0.0.1/65536", 400),
        (f"blocked/{DPID}/10.0.0.1/%C2%B2", 400),  # '²' passes str.isdigit(), not int()
        (f"blocked/{DPID}/10.0.0.1/%D9%A5%D9%A0%D9%A0%D9%A1", 400),  # Arabic-Indic 5001
    ],
)
def test_refused_unblock_changes_nothing(api, napp, path, status):
    restore(napp)
    api.post(f"{URL}/blocked", json={"dpid": DPID, "ip": "10.0.0.1", "port": 5001})
    flow_events(napp)
    before = snapshot(napp)
    response = api.delete(f"{URL}/{path}")
    assert response.status_code == status
    assert response.json["response"]
    assert snapshot(napp) == before


@pytest.mark.parametrize(
    "patch",
    [
        {"threshold_ppm": 100},  # retired
        {"message_burst": -1},
        {"payload_rate_bps": 10**12},
        {"poll_interval_s": 0},
        {"block_duration_s": 70000},
        {"xmpp_ports": [5222, 0]},
        {"xmpp_ports": []},
        {"whitelist": ["10.0.0.0/33"]},
        {"protected_addresses": ["10.0.0.0/24"]},
        {"protected_addresses": ["fe80::1%eth0"]},
        {"protected_addresses": "10.0.0.1"},
        {"mode": "nuke"},
        {"per_ip_aggregate": "yes"},
        {"unknown_setting": 1},
        {"message_burst": 50, "mode": "nuke"},  # one bad field refuses the whole patch
    ],
)
def test_refused_settings_patch_changes_nothing(api, napp, patch):
    restore(napp)
    before = snapshot(napp)
    response = api.patch(f"{URL}/settings", json=patch)
    assert response.status_code == 400
    assert response.json["response"]
    assert snapshot(napp) == before


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=-1", "limit=x", "limit=100000", "limit=%C2%B2", "limit=%D9%A3", "limit=1_0"],
)
def test_bad_events_limit(api, query):
    response = api.get(f"{URL}/events?{query}")
    assert response.status_code == 400
    assert response.json["response"]


def test_settings_patch_applies_persists_and_reinstalls_capture(api, napp, db_path):
    restore(napp)
    response = api.patch(f"{URL}/settings", json={"message_burst": 50, "xmpp_ports": [5222, 5223]})
    assert response.status_code == 200, response.json
    assert response.json["changed"] == ["message_burst", "xmpp_ports"]
    assert api.get(f"{URL}/settings").json["message_burst"] == 50
    events = flow_events(napp)
    assert events == [
        (FLOWS_DELETE_EVENT, [flows.delete_capture()]),
        (FLOWS_INSTALL_EVENT, flows.capture_flows([5222, 5223])),
    ]
    napp.shutdown()
    again = make_napp()
    try:
        assert again.limiter.settings.message_burst == 50
        assert again.limiter.settings.xmpp_ports == (5222, 5223)
    finally:
        again.shutdown()


def test_manual_block_of_a_loopback_address_is_a_400_and_installs_nothing(api, napp, clock):
    restore(napp)
    flow_events(napp)
    body = {"dpid": DPID, "ip": "127.0.0.1", "duration": 30, "reason": "test"}
    response = api.post(f"{URL}/blocked", json=body)
    assert response.status_code == 400, response.json
    assert "loopback" in response.json["response"]
    assert flow_events(napp) == []
    assert api.get(f"{URL}/blocked").json["blocked"] == []


@pytest.mark.parametrize(
    ("ip", "says"),
    [
        ("0.0.0.0", "unspecified address"),
        ("::", "unspecified address"),
        ("127.0.0.1", "loopback address"),
        ("::1", "loopback address"),
        ("169.254.1.1", "link-local address"),
        ("fe80::1", "link-local address"),
        ("fe80::1%eth0", "zone index"),
        ("224.0.0.5", "multicast address"),
        ("ff02::1", "multicast address"),
        ("10.0.0.53", "protected XMPP server (the protected_addresses setting)"),
        ("10.0.0.1", "protected XMPP server (learned as the destination of capture packet-ins)"),
    ],
)
@pytest.mark.parametrize("port", [None, 5000])
def test_manual_block_of_an_address_never_blocked_is_a_400_that_changes_nothing(
    api, napp, ip, says, port
):
    """Issue 13: blocks of 0.0.0.0, ::, fe80::1%eth0 and the server's own address were accepted."""
    restore(napp)
    assert (
        api.patch(f"{URL}/settings", json={"protected_addresses": ["10.0.0.53"]}).status_code == 200
    )
    monitor_started(napp, SLOW)  # a client of the server 10.0.0.1: the server is learned
    flow_events(napp)
    before = snapshot(napp)
    body = {"dpid": DPID, "ip": ip, "duration": 30, "reason": "test"}
    if port is not None:
        body["port"] = port
    response = api.post(f"{URL}/blocked", json=body)
    assert response.status_code == 400, response.json
    assert says in response.json["response"]
    assert snapshot(napp) == before
    assert flow_events(napp) == []
    assert api.get(f"{URL}/status").json["server_addresses"] == {
        "protected": ["10.0.0.53"],
        "learned": ["10.0.0.1"],
        "learned_overflow": 0,
    }


def test_protected_addresses_over_rest_persist_and_lift_their_blocks(api, napp, clock):
    restore(napp)
    assert api.post(f"{URL}/blocked", json={"dpid": DPID, "ip": "10.0.0.53"}).status_code == 201
    flow_events(napp)
    response = api.patch(
        f"{URL}/settings", json={"protected_addresses": ["10.0.0.53", "2001:db8:0::1"]}
    )
    assert response.status_code == 200, response.json
    assert response.json["changed"] == ["protected_addresses"]
    assert api.get(f"{URL}/settings").json["protected_addresses"] == ["10.0.0.53", "2001:db8::1"]
    assert api.get(f"{URL}/blocked").json["blocked"] == []
    assert api.get(f"{URL}/status").json["unblocks_total"] == {"protected": 1}
    assert [name for name, _ in flow_events(napp)] == [FLOWS_DELETE_EVENT]
    napp.shutdown()
    again = make_napp()
    try:
        assert again.limiter.settings.protected_addresses == ("10.0.0.53", "2001:db8::1")
    finally:
        again.shutdown()


def test_a_wide_whitelist_is_refused_over_rest_unless_forced(api, napp):
    restore(napp)
    response = api.patch(f"{URL}/settings", json={"whitelist": ["0.0.0.0/0"]})
    assert response.status_code == 400
    assert '"force": true' in response.json["response"]
    assert napp.limiter.settings.whitelist == ()  # nothing changed
    response = api.patch(f"{URL}/settings", json={"whitelist": ["0.0.0.0/0"], "force": "yes"})
    assert response.status_code == 400 and "force" in response.json["response"]
    response = api.patch(f"{URL}/settings", json={"whitelist": ["0.0.0.0/0"], "force": True})
    assert response.status_code == 200, response.json
    assert response.json["changed"] == ["whitelist"]
    assert "force" not in api.get(f"{URL}/settings").json


def test_a_retired_setting_over_rest_names_its_replacement(api, napp):
    response = api.patch(f"{URL}/settings", json={"threshold_ppm": 100})
    assert response.status_code == 400
    assert "message_rate_per_s" in response.json["response"]
