"""Request validation: shared body parser with upstream status codes, flows, event content."""

from __future__ import annotations

import pytest

from napps.kytos.flow_manager.flow_requests import flows_from_event, prepare_flows
from xmpp_ofc.rest_body import MAX_BODY_BYTES, RequestError, parse_json


@pytest.mark.parametrize(
    ("data", "mimetype", "status", "message"),
    [
        (b"", None, 400, "The request body is empty"),
        (b"", "application/json", 400, "The request body is empty"),
        (b'{"flows": []}', "text/plain", 415, "must be application/json"),
        (b'{"flows": []}', None, 415, "must be application/json"),
        (b"{flows", "application/json", 400, "The request body is not valid JSON"),
        (b"\xff\xfe", "application/json", 400, "not valid JSON"),
        (b"[" * 5000, "application/json", 400, "JSON nested too deeply"),
        (b"[" * (MAX_BODY_BYTES + 1), "application/json", 413, "at most 1048576"),
    ],
)
def test_http_body_errors(data, mimetype, status, message):
    with pytest.raises(RequestError) as error:
        parse_json(data, mimetype)
    assert error.value.status == status
    assert message in error.value.message


def test_http_body_ok():
    assert parse_json(b'{"flows": [{}]}', "application/json") == {"flows": [{}]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "must be a JSON object"),
        ({}, "'flows' must be a non-empty JSON array"),
        ({"flows": []}, "non-empty"),
        ({"flows": {}}, "non-empty"),
        ({"flows": [{}], "dpid": "x"}, "Unknown key(s) in the request body: dpid"),
        ({"flows": [{}, {"priority": -1}]}, "flows[1].priority: -1 is out of range"),
    ],
)
def test_flow_list_errors(body, message):
    with pytest.raises(RequestError) as error:
        prepare_flows(body, "add")
    assert error.value.status == 400
    assert message in error.value.message


def test_prepared_flow_keeps_buffer_id_for_the_wire_only():
    (flow,) = prepare_flows({"flows": [{"buffer_id": 7, "priority": 3}]}, "add")
    assert flow.flow_mod().buffer_id == 7
    assert "buffer_id" not in flow.canonical
    assert flow.flow_mod() is not flow.flow_mod()  # a fresh message (and xid) per switch


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not a dict"),
        ({"flow_dict": {"flows": [{}]}}, "'dpid' must be a dpid string"),
        ({"dpid": 1, "flow_dict": {"flows": [{}]}}, "'dpid'"),
        ({"dpid": "00:01", "flow_dict": None}, "must be a JSON object"),
        ({"dpid": "00:01", "flow_dict": {"flows": [{"match": {"tp_dst": 1}}]}}, "needs nw_proto 6"),
    ],
)
def test_event_content_errors(content, message):
    with pytest.raises(RequestError) as error:
        flows_from_event(content, "add")
    assert message in error.value.message


def test_event_content_ok():
    dpid, flows = flows_from_event(
        {"dpid": "00:01", "flow_dict": {"flows": [{"priority": 9}]}}, "delete"
    )
    assert dpid == "00:01"
    assert flows[0].canonical["priority"] == 9
    assert flows[0].command == "delete"


def test_common_flows_are_packed_with_struct_and_others_with_pyof():
    """issue 9: the fast codec packs what it covers; pyof the rest, same canonical form."""
    from pyof.v0x04.controller2switch.flow_mod import FlowMod

    from napps.kytos.flow_manager.flow_requests import flow_mod_message, message_xid
    from xmpp_ofc.openflow.flow_json import canonical_flow
    from xmpp_ofc.openflow.packed import PackedMessage

    forward = {"match": {"in_port": 1}, "actions": [{"action_type": "output", "port": 2}]}
    named = {"actions": [{"action_type": "output", "port": "FLOOD"}]}
    fast, slow = prepare_flows({"flows": [forward, named]}, "add")
    assert (fast.fast, slow.fast) == (True, False)
    assert fast.canonical == canonical_flow(forward, "add")
    assert slow.canonical == canonical_flow(named, "add")
    packed, built = fast.flow_mod(xid=5), slow.flow_mod(xid=6)
    assert isinstance(packed, PackedMessage) and isinstance(built, FlowMod)
    assert packed.pack() == fast.flow_mod(xid=5).pack()
    assert (message_xid(packed), message_xid(built)) == (5, 6)
    assert isinstance(flow_mod_message(forward, "add"), PackedMessage)
    assert isinstance(flow_mod_message(named, "add"), FlowMod)
