"""The dispatcher shell's metrics: OF counters, switch series, exposition, history, dashboard.

Driven like ``test_dispatcher_main`` (whose fixtures and helpers this reuses); the
metrics are read back from the text the REST endpoint serves.
"""

from __future__ import annotations

import socket

import pytest
from kytos.core import KytosEvent
from prometheus_client.parser import text_string_to_metric_families

from tests.napps import test_dispatcher_main as base
from tests.napps.test_dispatcher_main import (
    DPID,
    L2_MISS,
    URL,
    app_events,
    of_in,
    packet_in,
    switch_up,
)
from xmpp_ofc import metrics

# The dispatcher shell's fixtures, shared with its main tests.
main_module = base.main_module
napp = base.napp
api = base.api


@pytest.fixture(autouse=True)
def clean_metrics():
    metrics.reset_event_metrics()
    yield
    metrics.reset_event_metrics()


def scrape(api) -> dict[str, dict[tuple, float]]:
    """GET v1/metrics parsed: {sample name: {sorted labels: value}}."""
    response = api.get(f"{URL}/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def disconnect(napp, dpid: str = DPID) -> None:
    napp.on_switch_disconnected(
        KytosEvent(
            name="kytos/of_core.switch.disconnected",
            content={"switch": napp.controller.switches[dpid], "reason": "gone"},
        )
    )
    app_events(napp)


def test_the_exposition_is_valid_text_format_with_the_bundles_families(api):
    found = scrape(api)
    assert "xmpp_ofc_switches_connected" in found
    response = api.get(f"{URL}/metrics")
    text = response.get_data(as_text=True)
    for name in ("of_packet_ins", "xmpp_ofc_learned_macs", "xmpp_ofc_blocked_clients"):
        assert f"# TYPE {name}" in text


def test_packet_in_is_counted_and_its_handling_time_observed(napp, api):
    switch_up(napp)
    event = of_in(napp, "ofpt_packet_in", packet_in(L2_MISS))
    napp.count_message_in(event)
    napp.on_packet_in(event)
    found = scrape(api)
    assert found["of_packet_ins_total"][(("dp_id", DPID),)] == 1
    key = (("dp_id", DPID), ("type", "ofpt_packet_in"))
    assert found["xmpp_ofc_of_messages_received_total"][key] == 1
    histogram = found["xmpp_ofc_packet_in_secs_count"]
    assert histogram[(("dp_id", DPID), ("napp", "xmpp_ofc/dispatcher"))] == 1


def test_messages_out_are_counted_by_type(napp, api):
    switch_up(napp)
    connection = napp.controller.switches[DPID].connection
    for msg_type in ("ofpt_flow_mod", "ofpt_packet_out", "ofpt_echo_reply"):
        napp.count_message_out(
            KytosEvent(
                name=f"kytos/of_core.messages.out.{msg_type}",
                content={"message": None, "destination": connection},
            )
        )
    found = scrape(api)
    assert found["of_flowmsgs_sent_total"][(("dp_id", DPID),)] == 2
    sent = found["xmpp_ofc_of_messages_sent_total"]
    assert sent[(("dp_id", DPID), ("type", "ofpt_echo_reply"))] == 1


def test_connect_shows_the_switch_and_disconnect_removes_its_series(napp, api):
    switch_up(napp)
    event = of_in(napp, "ofpt_packet_in", packet_in(L2_MISS))
    napp.count_message_in(event)
    napp.on_packet_in(event)
    found = scrape(api)
    assert found["dp_status"] == {(("dp_id", DPID),): 1}
    assert found["xmpp_ofc_switches_connected"][()] == 1

    disconnect(napp)

    found = scrape(api)
    assert found.get("dp_status", {}) == {}
    assert found["xmpp_ofc_switches_connected"][()] == 0
    assert found["xmpp_ofc_dp_disconnections_total"][()] >= 1
    text = api.get(f"{URL}/metrics").get_data(as_text=True)
    assert DPID not in text


def test_message_history_is_sampled_by_the_timer(napp, api, monkeypatch):
    body = api.get(f"{URL}/messages/history").get_json()
    assert body["points"] == []
    assert body["interval"] == 10.0
    now = [1000.0]
    monkeypatch.setattr("napps.xmpp_ofc.dispatcher.main.time.time", lambda: now[0])
    napp.execute()
    switch_up(napp)
    napp.count_message_in(of_in(napp, "ofpt_packet_in", packet_in(L2_MISS)))
    now[0] = 1010.0
    napp.execute()
    points = api.get(f"{URL}/messages/history").get_json()["points"]
    assert points == [{"at": 1010.0, "seconds": 10.0, "in": 1, "out": 0}]


def test_dashboard_files_are_served_and_nothing_else(api):
    page = api.get(f"{URL}/dashboard/")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.get_data(as_text=True)
    assert 'src="dashboard.js"' in html
    assert "http://" not in html and "https://" not in html  # no CDN: works offline
    script = api.get(f"{URL}/dashboard/dashboard.js")
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert api.get(f"{URL}/dashboard/dashboard.css").status_code == 200
    for name in ("main.py", "settings.py", "nothing.js"):
        response = api.get(f"{URL}/dashboard/{name}")
        assert response.status_code == 404, name
        assert "no file" in response.get_json()["response"]
    assert api.get(f"{URL}/dashboard/..%2Fmain.py").status_code == 404


def test_graphite_push_starts_from_settings_and_stops_with_the_napp(main_module, monkeypatch):
    from kytos.lib.helpers import get_controller_mock

    server = socket.create_server(("127.0.0.1", 0))
    try:
        monkeypatch.setattr(main_module.settings, "GRAPHITE_HOST", "127.0.0.1")
        monkeypatch.setattr(main_module.settings, "GRAPHITE_PORT", server.getsockname()[1])
        controller = get_controller_mock()
        controller.switches = {}
        napp = main_module.Main(controller)
        assert napp.graphite is not None
        assert napp.graphite.push_once()
        napp.shutdown()
        assert not napp.graphite._thread.is_alive()
    finally:
        server.close()


def test_no_graphite_and_no_extra_port_by_default(napp):
    assert napp.graphite is None
    assert napp._metrics_server is None


def test_the_optional_metrics_port_serves_the_same_registry(main_module, monkeypatch):
    import urllib.request

    from kytos.lib.helpers import get_controller_mock

    from xmpp_ofc.testing.controller import free_port

    port = free_port()
    monkeypatch.setattr(main_module.settings, "METRICS_PORT", port)
    controller = get_controller_mock()
    controller.switches = {}
    napp = main_module.Main(controller)
    try:
        metrics.switch_connected(DPID)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        assert f'dp_status{{dp_id="{DPID}"}} 1.0' in text
    finally:
        napp.shutdown()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_a_batch_of_flow_mods_written_in_one_send_counts_as_its_messages(napp, api):
    from xmpp_ofc.openflow.fast_codec import encode_flow_mod
    from xmpp_ofc.openflow.packed import PackedMessage

    switch_up(napp)
    connection = napp.controller.switches[DPID].connection
    flow = {"priority": 1, "match": {}, "instructions": [], "flags": []}
    batch = PackedMessage.join(
        [PackedMessage(encode_flow_mod(flow, "add", xid)) for xid in (1, 2, 3)]
    )
    napp.count_message_out(
        KytosEvent(
            name="kytos/flow_manager.messages.out.ofpt_flow_mod",
            content={"message": batch, "destination": connection},
        )
    )
    found = scrape(api)
    assert found["of_flowmsgs_sent_total"][(("dp_id", DPID),)] == 3
    assert napp.router.counters.get(DPID, "out", "ofpt_flow_mod") == 3
