"""The rate limiter's flow dicts: table plan, cookies, and the shared codec accepts each."""

from __future__ import annotations

import pytest

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.flows import Client
from xmpp_ofc import cookies, pipeline
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.openflow.flow_json import flow_mod_from_dict, flow_mod_to_dict

V4 = Client.of("10.0.0.7", 12345)
V6 = Client.of("2001:db8::7", 40000)


def all_adds() -> list[dict]:
    return [
        *flows.capture_flows([5222, 5269]),
        flows.monitor_flow(V4, 5222, idle_timeout=120),
        flows.monitor_flow(V6, 5222, idle_timeout=120, meter_id=9),
        *flows.block_flows(V4, [5222], 60),
        *flows.block_flows(Client.of("10.0.0.8", None), [5222, 5269], 30),
        *flows.block_flows(V6, [5222], 1),
    ]


def all_deletes() -> list[dict]:
    return [
        flows.delete_capture(),
        flows.delete_monitor(V4, 5222),
        flows.delete_monitor(V6, 5222),
        flows.delete_monitors_of_ip(V6),
        flows.delete_block(V4),
        flows.delete_block(Client.of("10.0.0.8", None)),
    ]


@pytest.mark.parametrize("flow", all_adds())
def test_every_add_passes_the_shared_codec(flow: dict) -> None:
    flow_mod_from_dict(flow, "add")


@pytest.mark.parametrize("flow", all_deletes())
def test_every_delete_passes_the_shared_codec(flow: dict) -> None:
    flow_mod_from_dict(flow, "delete")


def test_capture_copies_to_controller_and_forwards_for_v4_and_v6() -> None:
    capture = flows.capture_flows([5222])
    assert [f["match"]["dl_type"] for f in capture] == [0x0800, 0x86DD]
    for flow in capture:
        assert flow["table_id"] == 0 and flow["priority"] == pipeline.PRIORITY_CAPTURE
        assert flow["match"]["tp_dst"] == 5222 and flow["match"]["nw_proto"] == 6
        assert flow["instructions"][0]["actions"][0]["port"] == pipeline.OFPP_CONTROLLER
        assert flow["instructions"][1] == pipeline.goto_table(1)
        assert cookies.decode(flow["cookie"]).kind is Kind.CAPTURE


def test_monitor_flow_identity_timeouts_and_meter() -> None:
    flow = flows.monitor_flow(V4, 5222, idle_timeout=77, meter_id=3)
    assert flow["priority"] == 200 and flow["idle_timeout"] == 77
    assert flow["flags"] == ["send_flow_rem"]
    assert flow["match"] == {
        "dl_type": 0x0800,
        "nw_src": "10.0.0.7",
        "nw_proto": 6,
        "tp_src": 12345,
        "tp_dst": 5222,
    }
    assert flow["instructions"] == [
        {"instruction_type": "meter", "meter_id": 3},
        {"instruction_type": "goto_table", "table_id": 1},
    ]
    # Round trip through the codec keeps the meter instruction.
    read_back = flow_mod_to_dict(flow_mod_from_dict(flow, "add"))
    assert read_back["instructions"][0] == {"instruction_type": "meter", "meter_id": 3}


def test_block_flow_drops_and_expires() -> None:
    [flow] = flows.block_flows(V4, [5222], 42)
    assert flow["priority"] == 300 and flow["instructions"] == []
    assert flow["hard_timeout"] == 42 and flow["idle_timeout"] == 0
    assert flow["flags"] == ["send_flow_rem"]
    with pytest.raises(ValueError, match="hard_timeout"):
        flows.block_flows(V4, [5222], 0)


def test_aggregate_block_has_no_source_port_and_one_flow_per_xmpp_port() -> None:
    blocks = flows.block_flows(Client.of("10.0.0.8", None), [5269, 5222], 30)
    assert [f["match"]["tp_dst"] for f in blocks] == [5222, 5269]
    assert all("tp_src" not in f["match"] for f in blocks)


def test_ipv4_cookie_id_is_the_address_and_port() -> None:
    assert V4.cookie_id == (0x0A000007 << 16) | 12345
    assert flows.monitor_cookie(V4) == 0xA3040A0000073039
    assert cookies.decode(flows.block_cookie(V4)) == cookies.Cookie(
        Owner.RATE_LIMITER, Kind.BLOCK, V4.cookie_id
    )
    assert Client.of("10.0.0.7", None).cookie_id == 0x0A000007 << 16


def test_ipv6_cookie_id_fits_48_bits_and_differs_per_port() -> None:
    assert 0 <= V6.cookie_id <= cookies.MAX_ID
    assert V6.cookie_id != Client.of("2001:db8::7", 40001).cookie_id


def test_client_read_back_from_the_switch_match() -> None:
    flow = flows.monitor_flow(V6, 5222, idle_timeout=10)
    echoed = flow_mod_to_dict(flow_mod_from_dict(flow, "add"))["match"]
    assert echoed["ipv6_src"] != V6.ip  # switches echo the expanded form
    assert flows.client_from_match(echoed) == (V6, 5222)
    assert flows.client_from_match({"dl_type": 0x0800}) is None
    assert flows.client_from_match({"nw_src": "10.0.0.0/8", "tp_dst": 5222}) is None


def test_client_of_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"^ip: '10.0.0.300' is not an IPv4 or IPv6 address$"):
        Client.of("10.0.0.300", 1)
    with pytest.raises(ValueError, match="port"):
        Client.of("10.0.0.1", 0)
    assert Client.of("2001:DB8:0::1", 5).ip == "2001:db8::1"
