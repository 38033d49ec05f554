"""kytos/flow_manager NApp shell: REST, events, error mapping, replay (kytos.lib.helpers)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from pyof.v0x04.asynchronous.error_msg import BadMatchCode, ErrorMsg, ErrorType
from pyof.v0x04.asynchronous.flow_removed import FlowRemoved
from pyof.v0x04.controller2switch.flow_mod import FlowModCommand

from tests import kytos_helpers
from tests.kytos_helpers import drain, mocked_controller, switch_mock, synchronous_main
from xmpp_ofc.openflow.flow_json import flow_mod_to_dict
from xmpp_ofc.rest_body import MAX_BODY_BYTES

DPID = "00:00:00:00:00:00:00:01"
DPID2 = "00:00:00:00:00:00:00:02"
URL = "/api/kytos/flow_manager/v2"
TCP_CLIENT = {
    "priority": 200,
    "cookie": 7,
    "match": {"dl_type": 2048, "nw_src": "10.0.0.1", "nw_proto": 6, "tp_src": 4000, "tp_dst": 5222},
    "instructions": [{"instruction_type": "goto_table", "table_id": 1}],
}


@pytest.fixture
def main_module(monkeypatch, tmp_path):
    """main.py with synchronous handlers, its store under ``tmp_path``."""
    from napps.kytos.flow_manager import settings

    monkeypatch.setattr(settings, "STORE_FILE", str(tmp_path / "flows.json"))
    with synchronous_main("napps.kytos.flow_manager.main") as module:
        yield module


def make_switch(dpid: str, *, enabled: bool = True, connected: bool = True):
    switch = switch_mock(dpid, connected=connected)
    switch.is_enabled.return_value = enabled
    switch.flows = []
    return switch


@pytest.fixture
def napp(main_module):
    return main_module.Main(mocked_controller(make_switch(DPID), make_switch(DPID2)))


# The shared REST test-client fixture.
api = kytos_helpers.api


def sent_flow_mods(napp) -> list:
    return drain(napp.controller.buffers.msg_out)


def split_messages(data: bytes) -> list:
    """Every OpenFlow message of ``data`` (one send), unpacked by pyof."""
    from pyof.v0x04.common.utils import unpack_message

    messages = []
    while data:
        length = int.from_bytes(data[2:4], "big")
        messages.append(unpack_message(data[:length]))
        data = data[length:]
    return messages


def test_flows_outside_the_fast_codec_keep_their_place_between_batches(napp):
    """Packed FlowMods are joined per run; a pyof-built one travels alone, in order."""
    named = {"priority": 2, "actions": [{"action_type": "output", "port": "FLOOD"}]}
    flows = [{"priority": 1}, {"priority": 3}, named, {"priority": 4}]
    napp.on_flows_event(
        event("kytos.flow_manager.flows.install", dpid=DPID, flow_dict={"flows": flows})
    )
    sent = [split_messages(e.content["message"].pack()) for e in sent_flow_mods(napp)]
    assert [[m.priority.value for m in messages] for messages in sent] == [[1, 3], [2], [4]]
    assert len(napp._sent) == 4  # every xid is remembered for error mapping


def app_events(napp) -> list:
    return drain(napp.controller.buffers.app)


def event(name: str, **content):
    from kytos.lib.helpers import get_kytos_event_mock

    mock = get_kytos_event_mock(name=name, content=content)
    mock.name = name
    return mock


# --- REST: success ---------------------------------------------------------------


def test_post_to_one_switch_queues_flow_mods_and_announces_them(napp, api):
    response = api.post(f"{URL}/flows/{DPID}", json={"flows": [TCP_CLIENT, {"priority": 1}]})
    assert response.status_code == 200
    assert response.json["response"] == "FlowMod Messages Sent"
    # both FlowMods travel as one msg_out event: Kytos writes them in one send
    (queued,) = sent_flow_mods(napp)
    assert queued.name == "kytos/flow_manager.messages.out.ofpt_flow_mod"
    switch = napp.controller.switches[DPID]
    assert queued.content["destination"] is switch.connection
    batch = queued.content["message"]
    assert batch.count == 2
    first, second = split_messages(batch.pack())
    assert first.command == FlowModCommand.OFPFC_ADD
    assert flow_mod_to_dict(first)["instructions"] == TCP_CLIENT["instructions"]
    assert flow_mod_to_dict(second)["priority"] == 1
    assert batch.command == FlowModCommand.OFPFC_ADD  # pyof fields: the first message's
    announced = app_events(napp)
    assert [e.name for e in announced] == ["kytos/flow_manager.flow.added"] * 2
    assert announced[0].content["datapath"] is switch
    assert announced[0].content["flow"]["match"] == TCP_CLIENT["match"]


def test_post_without_dpid_goes_to_enabled_connected_switches_only(napp, api):
    napp.controller.switches["00:00:00:00:00:00:00:03"] = make_switch("03", enabled=False)
    napp.controller.switches["00:00:00:00:00:00:00:04"] = make_switch("04", connected=False)
    response = api.post(f"{URL}/flows", json={"flows": [{"priority": 1}]})
    assert response.status_code == 200
    assert sorted(response.json["switches"]) == [DPID, DPID2]
    destinations = {id(e.content["destination"]) for e in sent_flow_mods(napp)}
    assert destinations == {id(napp.controller.switches[d].connection) for d in (DPID, DPID2)}


@pytest.mark.parametrize(
    ("method", "path"),
    [("delete", f"{URL}/flows/{DPID}"), ("post", f"{URL}/delete/{DPID}")],
)
def test_delete_spellings_send_non_strict_deletes(napp, api, method, path):
    response = getattr(api, method)(
        path, json={"flows": [{"cookie": 7, "cookie_mask": OTHERS["cookie_mask"] | 255}]}
    )
    assert response.status_code == 200
    (queued,) = sent_flow_mods(napp)
    assert queued.content["message"].command == FlowModCommand.OFPFC_DELETE
    assert [e.name for e in app_events(napp)] == ["kytos/flow_manager.flow.removed"]


def test_delete_on_a_disabled_switch_is_allowed(napp, api):
    napp.controller.switches[DPID].is_enabled.return_value = False
    assert api.delete(f"{URL}/flows/{DPID}", json={"flows": [OTHERS]}).status_code == 200
    assert len(sent_flow_mods(napp)) == 1


# --- REST: the guard on the controller's own flows (issue 13) ------------------------

#: Flows whose cookie's high nibble is 0: never one of the bundle's (0xa...).
OTHERS = {"cookie": 0, "cookie_mask": 0xF << 60}
OURS = 0xA1 << 56  # the dispatcher's table-miss owner byte


@pytest.mark.parametrize(
    "flow",
    [
        {"table_id": 255},  # the wipe: every table, cookie_mask 0
        {},  # table 0, every cookie
        {"table_id": 1, "match": {"in_port": 1}},  # the match does not matter
        {"cookie": OURS, "cookie_mask": 0xFF << 56},  # exactly the dispatcher's flows
        {"cookie": 0xA0 << 56, "cookie_mask": 0xF0 << 56},  # the whole namespace
        {"cookie": 0, "cookie_mask": 0x0F << 56},  # low nibble 0: 0xa0.. still matches
    ],
)
@pytest.mark.parametrize(("method", "path"), [("delete", "flows"), ("post", "delete")])
def test_a_delete_that_reaches_our_flows_is_refused_without_force(napp, api, flow, method, path):
    for url in (f"{URL}/{path}/{DPID}", f"{URL}/{path}"):
        response = getattr(api, method)(url, json={"flows": [OTHERS, flow]})
        assert response.status_code == 409, response.json
        message = response.json["response"]
        assert "flows[1] would delete the controller's own flows" in message
        assert '"force": true' in message
    assert sent_flow_mods(napp) == []
    assert app_events(napp) == []


@pytest.mark.parametrize(
    "flow",
    [
        OTHERS,
        {"table_id": 5},  # no flow of ours lives there
        {"table_id": 255, "cookie": 0xB0 << 56, "cookie_mask": 0xF0 << 56},
        {"cookie": 0xA1 << 56, "cookie_mask": 0xFF << 56, "table_id": 7},
    ],
)
def test_a_delete_that_spares_our_flows_runs(napp, api, flow):
    response = api.delete(f"{URL}/flows/{DPID}", json={"flows": [flow]})
    assert response.status_code == 200, response.json
    (queued,) = sent_flow_mods(napp)
    assert queued.content["message"].command == FlowModCommand.OFPFC_DELETE


def test_force_deletes_our_flows_and_is_logged(napp, api, caplog):
    body = {"flows": [{"table_id": 255}], "force": True}
    response = api.delete(f"{URL}/flows/{DPID}", json=body)
    assert response.status_code == 200, response.json
    (queued,) = sent_flow_mods(napp)
    assert queued.content["message"].table_id == 255
    assert "forced REST delete of the controller's own flows" in caplog.text


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"flows": [{"table_id": 255}], "force": False}, 409),
        ({"flows": [{"table_id": 255}], "force": "yes"}, 400),
    ],
)
def test_force_must_be_true(napp, api, body, status):
    assert api.delete(f"{URL}/flows/{DPID}", json=body).status_code == status
    assert sent_flow_mods(napp) == []


def test_force_is_not_a_key_of_an_add(napp, api):
    response = api.post(f"{URL}/flows/{DPID}", json={"flows": [{"priority": 1}], "force": True})
    assert response.status_code == 400
    assert "force" in response.json["response"]


def test_install_and_delete_events_are_not_guarded(napp):
    napp.on_flows_event(
        event(
            "kytos.flow_manager.flows.delete",
            dpid=DPID,
            flow_dict={"flows": [{"table_id": 255, "cookie": OURS, "cookie_mask": 0xFF << 56}]},
        )
    )
    assert len(sent_flow_mods(napp)) == 1


# --- REST: every refusal sends nothing and stores nothing -----------------------------


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({}, 400, "The request body is empty"),
        ({"data": "{}", "content_type": "text/plain"}, 415, "application/json"),
        ({"data": "{nope", "content_type": "application/json"}, 400, "not valid JSON"),
        ({"data": "[" * 5000, "content_type": "application/json"}, 400, "nested too deeply"),
        ({"data": " " * (MAX_BODY_BYTES + 1), "content_type": "application/json"}, 413, "bytes"),
        ({"json": {}}, 400, "'flows' must be a non-empty JSON array"),
        ({"json": {"flows": []}}, 400, "non-empty"),
        ({"json": {"flows": "all"}}, 400, "non-empty"),
        ({"json": {"flows": [{"priority": 1}, {"priority": 70000}]}}, 400, "flows[1].priority"),
        (
            {"json": {"flows": [{"match": {"dl_type": 2048, "nw_src": "10.0.0.300"}}]}},
            400,
            "flows[0].match.nw_src: '10.0.0.300' is not an IPv4 address",
        ),
        (
            {"json": {"flows": [{"match": {"dl_type": 2048, "nw_src": "10.0.0.0/\u00b2"}}]}},
            400,
            "flows[0].match.nw_src: '10.0.0.0/\u00b2' has an invalid prefix length",
        ),
        ({"json": {"flows": [{"match": {"tp_dst": 80}}]}}, 400, "BAD_PREREQ"),
        ({"json": {"flows": [{"actions": [{"action_type": "teleport"}]}]}}, 400, "teleport"),
        ({"json": {"flows": [{"actions": [], "instructions": []}]}}, 400, "not both"),
    ],
)
def test_bad_requests_send_nothing(napp, api, kwargs, status, message):
    for path in (f"{URL}/flows/{DPID}", f"{URL}/flows"):
        response = api.post(path, **kwargs)
        assert response.status_code == status
        assert message in response.json["response"]
    assert sent_flow_mods(napp) == []
    assert app_events(napp) == []
    assert napp._store.dpids() == []


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({}, 400, "The request body is empty"),
        ({"data": "{}", "content_type": "text/plain"}, 415, "application/json"),
        ({"data": "[" * 5000, "content_type": "application/json"}, 400, "nested too deeply"),
        ({"data": " " * (MAX_BODY_BYTES + 1), "content_type": "application/json"}, 413, "bytes"),
    ],
)
@pytest.mark.parametrize("method_path", [("delete", "flows"), ("post", "delete")])
def test_bad_delete_bodies_send_nothing(napp, api, kwargs, status, message, method_path):
    method, path = method_path
    for url in (f"{URL}/{path}/{DPID}", f"{URL}/{path}"):
        response = getattr(api, method)(url, **kwargs)
        assert response.status_code == status
        assert message in response.json["response"]
    assert sent_flow_mods(napp) == []
    assert app_events(napp) == []


@pytest.mark.parametrize(
    ("switch_state", "status", "message"),
    [
        (None, 404, "dpid not found"),
        ({"enabled": False}, 404, "is disabled"),
        ({"connected": False}, 409, "is not connected"),
    ],
)
def test_switch_problems_send_nothing(napp, api, switch_state, status, message):
    dpid = "00:00:00:00:00:00:00:09"
    if switch_state is not None:
        napp.controller.switches[dpid] = make_switch(dpid, **switch_state)
    response = api.post(f"{URL}/flows/{dpid}", json={"flows": [{"priority": 1}]})
    assert response.status_code == status
    assert message in response.json["response"]
    assert sent_flow_mods(napp) == []
    assert napp._store.dpids() == []


# --- REST: GET ------------------------------------------------------------------------


def test_get_lists_last_poll_in_upstream_shape(napp, api):
    listed = {"switch": DPID, "priority": 5, "id": "x", "stats": {}}
    napp.controller.switches[DPID].flows = [SimpleNamespace(as_dict=lambda: listed)]
    everything = api.get(f"{URL}/flows").json
    assert everything == {DPID: {"flows": [listed]}, DPID2: {"flows": []}}
    assert api.get(f"{URL}/flows/{DPID}").json == {DPID: {"flows": [listed]}}


def test_get_unknown_dpid_is_json_404(api):
    response = api.get(f"{URL}/flows/00:00:00:00:00:00:00:99")
    assert response.status_code == 404
    # upstream raised werkzeug's NotFound: its JSON shape, not {"response": ...}
    assert response.json == {"code": 404, "name": "Not Found", "description": "Switch not found"}


# --- events -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["kytos.flow_manager.flows.install", "kytos/flow_manager.flows.install"],
)
def test_install_event_both_spellings(napp, name):
    napp.on_flows_event(event(name, dpid=DPID, flow_dict={"flows": [TCP_CLIENT]}))
    (queued,) = sent_flow_mods(napp)
    assert queued.content["message"].command == FlowModCommand.OFPFC_ADD
    assert napp._store.flows(DPID)[0]["match"] == TCP_CLIENT["match"]


def test_the_listener_pattern_matches_both_spellings_once(main_module):
    import re

    (pattern,) = main_module.Main.on_flows_event.events
    for name in (
        "kytos.flow_manager.flows.install",
        "kytos/flow_manager.flows.delete",
    ):
        assert re.match(pattern + "$", name)
    assert not re.match(pattern + "$", "kytos/flow_manager.flows.installed")


def test_delete_event_removes_from_store(napp):
    napp.on_flows_event(
        event("kytos.flow_manager.flows.install", dpid=DPID, flow_dict={"flows": [TCP_CLIENT]})
    )
    napp.on_flows_event(
        event(
            "kytos.flow_manager.flows.delete",
            dpid=DPID,
            flow_dict={"flows": [{"cookie": 7, "cookie_mask": 7}]},
        )
    )
    commands = [e.content["message"].command for e in sent_flow_mods(napp)]
    assert commands == [FlowModCommand.OFPFC_ADD, FlowModCommand.OFPFC_DELETE]
    assert napp._store.flows(DPID) == []


@pytest.mark.parametrize(
    "content",
    [
        {"dpid": "00:00:00:00:00:00:00:99", "flow_dict": {"flows": [{}]}},
        {"dpid": DPID, "flow_dict": {"flows": [{"priority": "high"}]}},
        {"dpid": DPID, "flows": [{}]},
        {},
    ],
)
def test_bad_events_are_logged_and_send_nothing(napp, content, caplog):
    napp.on_flows_event(event("kytos.flow_manager.flows.install", **content))
    assert sent_flow_mods(napp) == []
    assert napp._store.dpids() == []


# --- OFPT_ERROR mapping ------------------------------------------------------------------


def error_event(napp, xid: int, dpid: str = DPID):
    message = ErrorMsg(
        xid=xid, error_type=ErrorType.OFPET_BAD_MATCH, code=BadMatchCode.OFPBMC_BAD_PREREQ
    )
    source = SimpleNamespace(switch=napp.controller.switches[dpid])
    return event("kytos/of_core.v0x04.messages.in.ofpt_error", message=message, source=source)


def test_error_for_our_flow_mod_is_announced_and_forgotten(napp):
    napp.on_flows_event(
        event("kytos.flow_manager.flows.install", dpid=DPID, flow_dict={"flows": [TCP_CLIENT]})
    )
    (queued,) = sent_flow_mods(napp)
    app_events(napp)
    napp.on_error(error_event(napp, queued.content["message"].header.xid))
    (announced,) = app_events(napp)
    assert announced.name == "kytos/flow_manager.flow.error"
    assert announced.content["datapath"] is napp.controller.switches[DPID]
    assert announced.content["flow"]["match"] == TCP_CLIENT["match"]
    assert announced.content["error_command"] == "add"
    assert announced.content["error_type"] == ErrorType.OFPET_BAD_MATCH
    assert announced.content["error_code"] == BadMatchCode.OFPBMC_BAD_PREREQ
    assert announced.content["error_code_name"] == "OFPBMC_BAD_PREREQ"
    assert napp._store.flows(DPID) == []  # a refused flow is never replayed


def test_error_for_someone_elses_xid_is_ignored(napp):
    napp.on_error(error_event(napp, 12345))
    assert app_events(napp) == []


# --- replay and flow removed ----------------------------------------------------------------


def test_handshake_completed_replays_stored_flows(napp):
    napp.on_flows_event(
        event("kytos.flow_manager.flows.install", dpid=DPID, flow_dict={"flows": [TCP_CLIENT]})
    )
    sent_flow_mods(napp)
    switch = napp.controller.switches[DPID]
    napp.on_handshake_completed(event("kytos/of_core.handshake.completed", switch=switch))
    (replayed,) = sent_flow_mods(napp)
    assert replayed.content["destination"] is switch.connection
    replayed_flow = flow_mod_to_dict(replayed.content["message"])
    assert replayed_flow["match"] == TCP_CLIENT["match"]
    assert replayed_flow["instructions"] == TCP_CLIENT["instructions"]
    napp.on_handshake_completed(
        event("kytos/of_core.handshake.completed", switch=napp.controller.switches[DPID2])
    )
    assert sent_flow_mods(napp) == []


def test_flows_survive_a_restart(napp, main_module):
    napp.on_flows_event(
        event("kytos.flow_manager.flows.install", dpid=DPID, flow_dict={"flows": [TCP_CLIENT]})
    )
    napp.shutdown()
    controller = mocked_controller(make_switch(DPID))
    restarted = main_module.Main(controller)
    restarted.on_handshake_completed(
        event("kytos/of_core.handshake.completed", switch=controller.switches[DPID])
    )
    (replayed,) = drain(controller.buffers.msg_out)
    assert flow_mod_to_dict(replayed.content["message"])["match"] == TCP_CLIENT["match"]


def test_flow_removed_by_the_switch_is_not_replayed(napp):
    napp.on_flows_event(
        event("kytos.flow_manager.flows.install", dpid=DPID, flow_dict={"flows": [TCP_CLIENT]})
    )
    queued = sent_flow_mods(napp)[0].content["message"]
    removed = FlowRemoved(cookie=7, priority=200, reason=0, table_id=0, match=queued.match)
    source = SimpleNamespace(switch=napp.controller.switches[DPID])
    napp.on_flow_removed(
        event("kytos/of_core.v0x04.messages.in.ofpt_flow_removed", message=removed, source=source)
    )
    assert napp._store.flows(DPID) == []


def test_a_struct_decoded_flow_removed_is_not_replayed_either(napp):
    """of_core's FlowRemovedMessage (plain record, no pyof) forgets the flow too."""
    from napps.kytos.of_core.inbound import parse_message

    napp.on_flows_event(
        event("kytos.flow_manager.flows.install", dpid=DPID, flow_dict={"flows": [TCP_CLIENT]})
    )
    queued = split_messages(sent_flow_mods(napp)[0].content["message"].pack())[0]
    counters = dict.fromkeys(
        ("duration_sec", "duration_nsec", "idle_timeout", "hard_timeout", "packet_count"), 0
    )
    frame = FlowRemoved(
        cookie=7, priority=200, reason=0, table_id=0, match=queued.match, byte_count=0, **counters
    ).pack()
    message = parse_message(frame)
    source = SimpleNamespace(switch=napp.controller.switches[DPID])
    napp.on_flow_removed(
        event("kytos/of_core.v0x04.messages.in.ofpt_flow_removed", message=message, source=source)
    )
    assert napp._store.flows(DPID) == []
    assert message._pyof is None  # nothing read through pyof


def test_a_broken_store_file_is_moved_aside(main_module, tmp_path):
    (tmp_path / "flows.json").write_text("{broken")
    napp = main_module.Main(mocked_controller())
    assert napp._store.dpids() == []
    assert [p.name.startswith("flows.json.broken-") for p in tmp_path.iterdir()] == [True]


def test_flow_events_are_handled_in_order_on_the_calling_thread(tmp_path, monkeypatch):
    """delete-then-install from one NApp must leave in that order: no thread per event."""
    import threading

    from kytos.core import KytosEvent

    from napps.kytos.flow_manager import settings

    monkeypatch.setattr(settings, "STORE_FILE", str(tmp_path / "flows.json"))
    module = importlib.reload(importlib.import_module("napps.kytos.flow_manager.main"))
    napp = module.Main(mocked_controller(make_switch(DPID)))
    threads = []
    original_send = napp._send
    monkeypatch.setattr(
        napp,
        "_send",
        lambda *args: (threads.append(threading.current_thread()), original_send(*args)),
    )
    for name, flow in (
        ("kytos.flow_manager.flows.delete", {"cookie": 7, "cookie_mask": 0xFF, "table_id": 255}),
        ("kytos.flow_manager.flows.install", TCP_CLIENT),
    ):
        napp.on_flows_event(
            KytosEvent(name=name, content={"dpid": DPID, "flow_dict": {"flows": [flow]}})
        )
    assert threads == [threading.current_thread()] * 2
    commands = [event.content["message"].command for event in sent_flow_mods(napp)]
    assert commands == [FlowModCommand.OFPFC_DELETE, FlowModCommand.OFPFC_ADD]


def test_store_path_is_in_the_venv_even_when_not_activated(main_module, monkeypatch):
    monkeypatch.setenv("VIRTUAL_ENV", "/opt/venv")
    assert main_module.store_path() == Path("/opt/venv", main_module.settings.STORE_FILE)
    monkeypatch.delenv("VIRTUAL_ENV")  # .venv/bin/kytosd run without activating the venv
    assert main_module.store_path() == Path(sys.prefix, main_module.settings.STORE_FILE)


# --- consistency check ----------------------------------------------------------

OUR_BLOCK = {
    **TCP_CLIENT,
    "priority": 300,
    "cookie": 0xA305000000000009,
    "hard_timeout": 600,
    "instructions": [],
}


def install(napp, *flows):
    napp.on_flows_event(
        event("kytos.flow_manager.flows.install", dpid=DPID, flow_dict={"flows": list(flows)})
    )
    return sent_flow_mods(napp)


def run_consistency_round(napp, main_module):
    """Make the round due, run the timer; the flow-stats requests it queued."""
    napp._next_check = 0
    napp.execute()
    return [e.content["message"] for e in drain(napp.controller.buffers.msg_out)]


def answer(napp, request, entries):
    napp.on_multipart_reply(
        event(
            "kytos/of_core.multipart_reply.received",
            switch=napp.controller.switches[DPID],
            xid=int(request.header.xid),
            multipart_type=1,
            body=entries,
        )
    )
    return [
        flow_mod_to_dict(flow_mod)
        for e in sent_flow_mods(napp)
        for flow_mod in split_messages(e.content["message"].pack())
    ]


def test_consistency_round_asks_only_for_our_stored_kinds(napp, main_module):
    install(napp, TCP_CLIENT, OUR_BLOCK)  # cookie 7 is not ours: never checked
    requests = [r for r in run_consistency_round(napp, main_module) if int(r.header.xid)]
    selected = [(int(r.body.cookie), int(r.body.cookie_mask)) for r in requests]
    assert selected == [(0xA305000000000000, 0xFFFF000000000000)]


def test_a_flow_deleted_behind_our_back_is_re_added_with_its_time_left(napp, main_module):
    install(napp, OUR_BLOCK)
    [request] = run_consistency_round(napp, main_module)
    [readded] = answer(napp, request, [])  # the switch no longer has it
    assert readded["cookie"] == OUR_BLOCK["cookie"]
    assert readded["match"] == OUR_BLOCK["match"]
    assert 0 < readded["hard_timeout"] <= 600
    assert napp._store.flows(DPID)  # still believed


def test_a_flow_the_switch_holds_is_not_re_added(napp, main_module):
    from xmpp_ofc.openflow.flow_stats_codec import FlowStatsRecord

    install(napp, OUR_BLOCK)
    [request] = run_consistency_round(napp, main_module)
    held = FlowStatsRecord(
        table_id=0, duration_sec=1, duration_nsec=0, priority=300, idle_timeout=0,
        hard_timeout=600, flags=0, cookie=OUR_BLOCK["cookie"], packet_count=0, byte_count=0,
        match=napp._store.flows(DPID)[0]["match"], instructions_raw=b"",
    )  # fmt: skip
    assert answer(napp, request, [held]) == []


def test_foreign_delete_of_our_flow_keeps_it_and_checks_at_once(napp, main_module):
    [queued] = install(napp, OUR_BLOCK)
    removed = FlowRemoved(
        cookie=OUR_BLOCK["cookie"], priority=300, reason=2, table_id=0,
        match=queued.content["message"].match,
    )  # fmt: skip
    source = SimpleNamespace(switch=napp.controller.switches[DPID])
    napp.on_flow_removed(
        event("kytos/of_core.v0x04.messages.in.ofpt_flow_removed", message=removed, source=source)
    )
    assert napp._store.flows(DPID)  # not forgotten
    napp.execute()  # not periodic yet: the foreign delete made this switch due
    [request] = [e.content["message"] for e in drain(napp.controller.buffers.msg_out)]
    assert [f["cookie"] for f in answer(napp, request, [])] == [OUR_BLOCK["cookie"]]


def test_foreign_delete_of_another_owners_flow_is_forgotten(napp):
    [queued] = install(napp, TCP_CLIENT)
    removed = FlowRemoved(
        cookie=7, priority=200, reason=2, table_id=0, match=queued.content["message"].match
    )
    source = SimpleNamespace(switch=napp.controller.switches[DPID])
    napp.on_flow_removed(
        event("kytos/of_core.v0x04.messages.in.ofpt_flow_removed", message=removed, source=source)
    )
    assert napp._store.flows(DPID) == []


def test_no_round_before_the_interval_and_none_when_disabled(napp, main_module, monkeypatch):
    from napps.kytos.flow_manager import settings

    install(napp, OUR_BLOCK)
    napp.execute()
    assert drain(napp.controller.buffers.msg_out) == []
    monkeypatch.setattr(settings, "CONSISTENCY_CHECK_INTERVAL", 0)
    assert run_consistency_round(napp, main_module) == []
