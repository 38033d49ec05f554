"""The kytos/of_core NApp shell, driven with kytos.lib.helpers' real controller.

Handlers are called directly with the events Kytos would deliver; what the
NApp publishes is read back from the controller's buffers.
"""

import logging

import pytest
from kytos.core import KytosEvent
from kytos.core.connection import Connection, ConnectionState
from pyof.v0x04.asynchronous.packet_in import PacketIn, PacketInReason
from pyof.v0x04.asynchronous.port_status import PortReason, PortStatus
from pyof.v0x04.common.flow_match import Match, OxmOfbMatchField, OxmTLV
from pyof.v0x04.common.utils import unpack_message
from pyof.v0x04.controller2switch.common import MultipartType
from pyof.v0x04.controller2switch.features_reply import FeaturesReply

from napps.kytos.of_core.v0x04.flow import Flow
from tests.kytos_helpers import drain, mocked_controller
from xmpp_ofc.openflow.flow_stats_codec import FlowStatsRecord
from xmpp_ofc.testing import frames
from xmpp_ofc.testing.fake_switch import flow_stats, hello_bytes, make_port, multipart_parts

DPID = "00:00:00:00:00:00:00:0a"
OUTPUT_3 = {"action_type": "output", "port": 3}


def names(events):
    return [event.name for event in events]


@pytest.fixture
def napp():
    from napps.kytos.of_core.main import Main

    return Main(mocked_controller())


@pytest.fixture
def buffers(napp):
    return napp.controller.buffers


def raw_in(napp, connection, data):
    napp.on_raw_in(
        KytosEvent(
            name="kytos/core.openflow.raw.in", content={"source": connection, "new_data": data}
        )
    )


def new_connection(port=40000):
    return Connection("127.0.0.1", port, socket=None)


def features_reply(xid=2, dpid=DPID):
    return FeaturesReply(
        xid=xid,
        datapath_id=dpid,
        n_buffers=0,
        n_tables=254,
        auxiliary_id=0,
        capabilities=0,
        reserved=0,
    ).pack()


def handshake(napp, connection, dpid=DPID):
    raw_in(napp, connection, hello_bytes(4) + features_reply(dpid=dpid))
    drain(napp.controller.buffers.msg_out)
    drain(napp.controller.buffers.msg_in)
    drain(napp.controller.buffers.app)
    return connection.switch


def handshake_with_port_one(napp, connection):
    """:func:`handshake`, then a port-desc reply listing port 1 (its app events drained)."""
    switch = handshake(napp, connection)
    raw_in(
        napp,
        connection,
        multipart_parts(3, MultipartType.OFPMP_PORT_DESC, [make_port(1)], 9)[0].pack(),
    )
    drain(napp.controller.buffers.app)
    return switch


def sent(buffers):
    """(name, message) of every msg_out event; each must be addressed to a connection."""
    events = drain(buffers.msg_out)
    assert all(isinstance(event.destination, Connection) for event in events)
    return [(event.name, event.content["message"]) for event in events]


def test_handshake_publishes_switch_and_upstream_events(napp, buffers):
    connection = new_connection()
    raw_in(napp, connection, hello_bytes(4, bitmap=[1, 4]))
    assert [name for name, _ in sent(buffers)] == [
        "kytos/of_core.v0x04.messages.out.ofpt_hello",
        "kytos/of_core.v0x04.messages.out.ofpt_features_request",
    ]
    assert connection.state is ConnectionState.SETUP
    assert connection.protocol.version == 4

    raw_in(napp, connection, features_reply())
    switch = napp.controller.switches[DPID]
    assert switch.connection is connection
    assert connection.state is ConnectionState.ESTABLISHED
    assert switch.features.n_tables.value == 254
    out = sent(buffers)
    assert [name.rsplit(".", 1)[1] for name, _ in out] == [
        "ofpt_multipart_request",
        "ofpt_multipart_request",
        "ofpt_set_config",
    ]
    app = drain(buffers.app)
    assert names(app) == ["kytos/core.switch.new", "kytos/of_core.handshake.completed"]
    assert app[1].content == {"switch": switch}
    [features_event] = drain(buffers.msg_in)
    assert features_event.name == "kytos/of_core.v0x04.messages.in.ofpt_features_reply"
    assert features_event.content["source"] is connection


def test_port_desc_and_desc_fill_the_switch(napp, buffers):
    connection = new_connection()
    switch = handshake(napp, connection)
    ports = [make_port(1, "veth1"), make_port(2, "veth2", link_down=True)]
    data = b"".join(p.pack() for p in multipart_parts(3, MultipartType.OFPMP_PORT_DESC, ports, 1))
    raw_in(napp, connection, data)
    assert sorted(switch.interfaces) == [1, 2]
    assert switch.interfaces[2].name == "veth2"
    assert switch.interfaces[2].address == "02:00:00:00:00:02"
    app = drain(buffers.app)
    assert names(app).count("kytos/of_core.switch.interface.created") == 2
    created = [e for e in app if e.name == "kytos/of_core.switch.port.created"]
    assert created[0].content == {
        "switch": DPID,
        "port": 1,
        "port_description": {"alias": "veth1", "mac": "02:00:00:00:00:01", "state": 4},
    }
    [multipart] = [e for e in app if e.name == "kytos/of_core.multipart_reply.received"]
    assert multipart.content["multipart_type"] == MultipartType.OFPMP_PORT_DESC
    assert len(multipart.content["body"]) == 2
    assert multipart.content["xid"] == 3
    assert len(drain(buffers.msg_in)) == 2  # one event per part


def test_flow_poll_replaces_switch_flows_and_emits_flow_stats_received(napp, buffers):
    connection = new_connection()
    switch = handshake(napp, connection)
    switch.enable()
    napp.on_tick(KytosEvent(name="kytos/of_core.internal.tick"))
    requests = {
        message.multipart_type: message.header.xid
        for name, message in sent(buffers)
        if name.endswith("ofpt_multipart_request")
    }
    flows = [flow_stats({"priority": p, "cookie": p, "table_id": 1}) for p in range(5)]
    parts = multipart_parts(requests[MultipartType.OFPMP_FLOW], MultipartType.OFPMP_FLOW, flows, 2)
    for part in parts:  # one chunk per part
        raw_in(napp, connection, part.pack())
    assert [flow.priority for flow in switch.flows] == [0, 1, 2, 3, 4]
    assert switch.flows[0].as_dict()["switch"] == DPID
    assert switch.flows[0].as_dict()["table_id"] == 1
    app = drain(buffers.app)
    assert names(app) == [
        "kytos/of_core.multipart_reply.received",
        "kytos/of_core.flow_stats.received",
    ]
    assert app[1].content == {"switch": switch}

    [port_stats_part] = multipart_parts(
        requests[MultipartType.OFPMP_PORT_STATS], MultipartType.OFPMP_PORT_STATS, [], 1
    )
    raw_in(napp, connection, port_stats_part.pack())
    app = drain(buffers.app)
    assert names(app)[-1] == "kytos/of_core.port_stats"
    assert app[-1].content == {"switch": switch, "port_stats": []}


def test_foreign_flow_reply_is_assembled_but_leaves_switch_flows_alone(napp, buffers):
    connection = new_connection()
    switch = handshake(napp, connection)
    switch.flows = ["untouched"]
    flows = [flow_stats({"priority": p}) for p in range(3)]
    for part in multipart_parts(0xBEEF, MultipartType.OFPMP_FLOW, flows, 1):
        raw_in(napp, connection, part.pack())
    app = drain(buffers.app)
    assert names(app) == ["kytos/of_core.multipart_reply.received"]
    assert app[0].content["xid"] == 0xBEEF
    body = app[0].content["body"]  # decoded without pyof (see of_core README)
    assert [type(s) for s in body] == [FlowStatsRecord] * 3
    assert [s.priority for s in body] == [0, 1, 2]
    assert switch.flows == ["untouched"]


def own_flow_poll_xid(napp, buffers, connection):
    connection.switch.enable()
    napp.on_tick(KytosEvent(name="kytos/of_core.internal.tick"))
    [xid] = [
        message.header.xid
        for name, message in sent(buffers)
        if name.endswith("ofpt_multipart_request")
        and message.multipart_type == MultipartType.OFPMP_FLOW
    ]
    return xid


def test_switch_flows_from_the_struct_codec_equal_upstream_flows_built_from_pyof(napp, buffers):
    connection = new_connection()
    switch = handshake(napp, connection)
    xid = own_flow_poll_xid(napp, buffers, connection)
    flows = [
        flow_stats({"table_id": 2, "priority": 7, "cookie": 9, "match": {"dl_vlan": 10}}),
        flow_stats(
            {
                "match": {"dl_type": 0x0800, "nw_proto": 6, "nw_src": "10.0.0.0/8", "tp_dst": 80},
                "instructions": [
                    {"instruction_type": "meter", "meter_id": 1},
                    {"instruction_type": "apply_actions", "actions": [OUTPUT_3]},
                    {"instruction_type": "goto_table", "table_id": 4},
                ],
            },
            packet_count=12,
            byte_count=3400,
            duration_sec=5,
        ),
    ]  # fmt: skip
    [part] = multipart_parts(xid, MultipartType.OFPMP_FLOW, flows, 10)
    raw_in(napp, connection, part.pack())
    from_pyof = [Flow(switch, stats) for stats in unpack_message(part.pack()).body]
    assert [flow.as_dict() for flow in switch.flows] == [flow.as_dict() for flow in from_pyof]
    assert switch.flows == from_pyof
    assert [flow.priority for flow in switch.flows] == [7, 0x8000]
    [event] = drain(buffers.msg_in)
    assert event.name == "kytos/of_core.v0x04.messages.in.ofpt_multipart_reply"
    assert event.content["source"] is connection
    message = event.content["message"]  # read like pyof's MultipartReply
    assert (message.header.xid.value, message.multipart_type, message.flags.value) == (xid, 1, 0)
    assert [stats.cookie.value for stats in message.body] == [9, 0]


def test_a_malformed_flow_stats_reply_is_logged_and_the_connection_survives(napp, buffers, caplog):
    connection = new_connection()
    switch = handshake(napp, connection)
    xid = own_flow_poll_xid(napp, buffers, connection)
    [part] = multipart_parts(xid, MultipartType.OFPMP_FLOW, [flow_stats({})], 10)
    broken = bytearray(part.pack())
    broken[16:18] = (500).to_bytes(2, "big")  # the entry claims more than the message holds
    with caplog.at_level(logging.WARNING):
        raw_in(napp, connection, bytes(broken) + part.pack())
    assert "cannot be parsed" in caplog.text
    assert "length 500 does not fit" in caplog.text
    assert connection.state is ConnectionState.ESTABLISHED
    assert len(switch.flows) == 1  # the good copy that followed was handled
    assert "kytos/of_core.flow_stats.received" in names(drain(buffers.app))


def test_packet_in_is_published_with_reachable_mac(napp, buffers):
    connection = new_connection()
    switch = handshake_with_port_one(napp, connection)
    drain(buffers.msg_in)
    frame = frames.ethernet(
        dst="00:00:00:00:00:0b", src="00:00:00:00:00:0a", eth_type=0x0806, payload=b"\0" * 28
    )
    in_port = OxmTLV(
        oxm_field=OxmOfbMatchField.OFPXMT_OFB_IN_PORT, oxm_value=(1).to_bytes(4, "big")
    )
    packet_in = PacketIn(
        xid=0,
        buffer_id=0xFFFFFFFF,
        total_len=len(frame),
        reason=PacketInReason.OFPR_NO_MATCH,
        table_id=0,
        cookie=0,
        match=Match(oxm_match_fields=[in_port]),
        data=frame,
    )
    raw_in(napp, connection, packet_in.pack())
    [event] = drain(buffers.msg_in)
    assert event.name == "kytos/of_core.v0x04.messages.in.ofpt_packet_in"
    assert event.content["message"].data.value == frame
    [reachable] = drain(buffers.app)
    assert reachable.name == "kytos/of_core.reachable.mac"
    assert reachable.content == {
        "switch": switch,
        "port": switch.interfaces[1],
        "reachable_mac": "00:00:00:00:00:0a",
    }


def test_port_status_link_down(napp, buffers):
    connection = new_connection()
    switch = handshake_with_port_one(napp, connection)
    status = PortStatus(xid=0, reason=PortReason.OFPPR_MODIFY, desc=make_port(1, link_down=True))
    raw_in(napp, connection, status.pack())
    app = drain(buffers.app)
    assert names(app) == [
        "kytos/of_core.switch.interface.modified",
        "kytos/of_core.switch.interface.link_down",
    ]
    assert app[0].content["interface"] is switch.interfaces[1]
    assert switch.interfaces[1].state & 1


def test_garbage_closes_only_that_connection(napp, buffers, caplog):
    good, bad = new_connection(40001), new_connection(40002)
    handshake(napp, good, dpid="00:00:00:00:00:00:00:01")
    handshake(napp, bad, dpid="00:00:00:00:00:00:00:02")
    with caplog.at_level(logging.WARNING):
        raw_in(napp, bad, b"\xff" * 64)
    assert bad.state is ConnectionState.FINISHED
    assert "127.0.0.1:40002" in caplog.text
    assert "invalid OpenFlow stream" in caplog.text
    assert good.state is ConnectionState.ESTABLISHED
    raw_in(
        napp,
        good,
        unpack_message(multipart_parts(5, MultipartType.OFPMP_FLOW, [], 1)[0].pack()).pack(),
    )
    assert "kytos/of_core.multipart_reply.received" in names(drain(buffers.app))


def test_unparsable_message_is_skipped_without_closing(napp, buffers, caplog):
    connection = new_connection()
    handshake(napp, connection)
    bogus = bytes([4, 0x12, 0, 16, 0, 0, 0, 9]) + (99).to_bytes(2, "big") + b"\0" * 6  # no OFPMP 99
    with caplog.at_level(logging.WARNING):
        raw_in(napp, connection, bogus)
    assert "cannot be parsed" in caplog.text
    assert connection.state is ConnectionState.ESTABLISHED


def test_incompatible_hello_fails_and_closes_after_the_error_is_sent(napp, buffers):
    connection = new_connection()
    raw_in(napp, connection, hello_bytes(1) + b"more bytes that are ignored")
    [(name, error)] = sent(buffers)
    assert name == "kytos/of_core.v0x04.messages.out.ofpt_error"
    assert names(drain(buffers.app)) == ["kytos/of_core.hello_failed"]
    assert connection.state is ConnectionState.NEW  # still open so the error can go out
    napp.on_error_sent(KytosEvent(name=name, content={"destination": connection, "message": error}))
    assert connection.state is ConnectionState.FAILED


def test_connection_lost_is_handled_after_earlier_bytes_and_reports_disconnect(napp, buffers):
    connection = new_connection()
    switch = handshake(napp, connection)
    napp.on_connection_lost(
        KytosEvent(name="kytos/core.openflow.connection.lost", content={"source": connection})
    )
    [requeued] = drain(buffers.raw)
    assert requeued.name == "kytos/of_core.internal.connection_lost"
    connection.close()  # what Kytos' protocol did before emitting connection.lost
    napp.on_connection_lost_in_order(requeued)
    [event] = drain(buffers.app)
    assert event.name == "kytos/of_core.switch.disconnected"
    assert event.content["switch"] is switch
    assert event.content["reason"] == "connection closed by the switch"
    assert connection not in napp._links


def test_old_connection_lost_after_reconnect_is_not_a_disconnect(napp, buffers):
    old, new = new_connection(40001), new_connection(40002)
    handshake(napp, old)
    handshake(napp, new)  # same dpid: Kytos moves the switch to the new connection
    napp.on_connection_lost_in_order(
        KytosEvent(name="kytos/of_core.internal.connection_lost", content={"source": old})
    )
    assert "kytos/of_core.switch.disconnected" not in names(drain(buffers.app))
