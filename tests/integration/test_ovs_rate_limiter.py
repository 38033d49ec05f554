"""The rate limiter end to end: real Open vSwitch, a server host, a fast and a slow client.

Issue 4's acceptance tests. The clients are paced TCP senders towards port 5222
(:func:`xmpp_ofc.lab.probe.start_paced_sender`) and the server is a sink that
counts the payload-bearing segments ARRIVING on its interface per client
(:func:`xmpp_ofc.lab.probe.serve_sink`), so "its traffic stops" and "policed to
about the rate" are measured where the server sees them. Polls run every 2 s
and blocks last 10 s (environment overrides), so each phase takes seconds.

* block mode: the fast client gets a monitor flow, then a drop flow (table 0,
  priority 300, our cookie, hard timeout) within two polls, and its segments
  stop arriving; the slow client on the same switch is never blocked; a REST
  DELETE lifts the block; the hard timeout lifts the next one by itself
  (FLOW_REMOVED), counted as an expired unblock.
* meter mode (userspace datapath, OpenFlow 1.3 meters): the fast client is
  policed to about the meter rate, the slow one untouched.
"""

from __future__ import annotations

import sys
import time

import pytest

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.flows import Client
from tests.waiting import wait_for
from xmpp_ofc import cookies
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.lab import FlowEntry
from xmpp_ofc.lab.probe import serve_sink, sink_counts, start_paced_sender

pytestmark = pytest.mark.ovs

API = "xmpp_ofc/rate_limiter/v1"
XMPP_PORT = 5222
FAST_PORT = 41001
SLOW_PORT = 41002
POLL_INTERVAL = 1  # the shipped default
BLOCK_DURATION = 10
#: Fast: 50 messages/s of 200 bytes: 10x the message allowance (5/s), 3x the payload one.
FAST_RATE = 50
#: Slow: one message every 2 s (allowance 5/s).
SLOW_RATE = 0.5
METER_PPS = 20
METER_BURST = 20


def controller_env(tmp_path, **extra: str) -> dict[str, str]:
    return {
        "XMPP_OFC_RATE_LIMITER_BLOCK_DURATION": str(BLOCK_DURATION),
        "XMPP_OFC_RATE_LIMITER_TIMER_INTERVAL": "0.5",
        "XMPP_OFC_RATE_LIMITER_SWEEP_INTERVAL": "2",
        "XMPP_OFC_RATE_LIMITER_DB_PATH": str(tmp_path / "rate_limiter.sqlite"),
        **extra,
    }


def ours(kind: Kind, flow_list: list[FlowEntry]) -> list[FlowEntry]:
    selector = cookies.select_kind(Owner.RATE_LIMITER, kind)
    return [flow for flow in flow_list if cookies.selects(selector, flow.cookie)]


def of_client(client: Client, flow_list: list[FlowEntry]) -> list[FlowEntry]:
    return [
        flow
        for flow in flow_list
        if flow.match.get("nw_src") == client.ip and flow.match.get("tp_src") == str(client.port)
    ]


def arrived(stats_path: str, client: Client) -> int:
    """Payload-bearing segments of ``client`` that reached the server so far."""
    return sink_counts(stats_path).get(f"{client.ip}:{client.port}", {}).get("packets", 0)


def build(lab, controller):
    topology = lab()
    switch = topology.add_switch("s1", dpid=0x4C, controller_port=controller.of_port)
    server = topology.add_host("server")
    fast = topology.add_host("fast")
    slow = topology.add_host("slow")
    topology.start()
    assert switch.ovs.wait_connected(timeout=30), "OVS never connected to the controller"
    assert wait_for(lambda: len(ours(Kind.CAPTURE, switch.ovs.dump_flows(table=0))) == 2, 20), (
        switch.ovs.dump_flows()
    )
    return switch, server, fast, slow


def test_fast_client_is_blocked_slow_client_is_not_unblock_and_expiry(
    controller_factory, lab, tmp_path
):
    controller = controller_factory(env=controller_env(tmp_path))
    switch, server, fast, slow = build(lab, controller)
    stats_path = str(tmp_path / "sink.json")
    serve_sink(server, XMPP_PORT, stats_path)
    fast_client = Client(fast.ip, FAST_PORT)
    slow_client = Client(slow.ip, SLOW_PORT)
    start_paced_sender(slow, server.ip, XMPP_PORT, src_port=SLOW_PORT, rate=SLOW_RATE)
    fast_sender = start_paced_sender(fast, server.ip, XMPP_PORT, src_port=FAST_PORT, rate=FAST_RATE)

    # Both are monitored (priority 200, idle timeout, our monitor cookie).
    def monitors():
        found = ours(Kind.MONITOR, switch.ovs.dump_flows(table=0))
        return of_client(fast_client, found) and of_client(slow_client, found) and found

    found = wait_for(monitors, 15)
    assert found, switch.ovs.dump_flows()
    for flow in found:
        assert (flow.priority, flow.idle_timeout) == (200, 120), flow
        assert "send_flow_rem" in flow.flags, flow
    (fast_monitor,) = of_client(fast_client, found)
    assert fast_monitor.cookie == flows.monitor_cookie(fast_client)

    # Within two polls (+ slack for the first, baseline, poll) the fast one is dropped.
    def drop_flow():
        return of_client(fast_client, ours(Kind.BLOCK, switch.ovs.dump_flows(table=0)))

    dropped = wait_for(drop_flow, 3 * POLL_INTERVAL + 4, interval=0.2)
    assert dropped, switch.ovs.dump_flows()
    (drop,) = dropped
    assert drop.priority == 300 and drop.cookie == flows.block_cookie(fast_client), drop
    assert drop.hard_timeout == BLOCK_DURATION and drop.actions == "drop", drop
    assert not of_client(fast_client, ours(Kind.MONITOR, switch.ovs.dump_flows(table=0)))

    # Its segments stop reaching the server; the slow client's keep arriving.
    time.sleep(0.5)
    fast_before, slow_before = arrived(stats_path, fast_client), arrived(stats_path, slow_client)
    time.sleep(3)
    assert arrived(stats_path, fast_client) == fast_before
    assert arrived(stats_path, slow_client) > slow_before

    status, body = controller.get(f"{API}/blocked")
    assert status == 200
    (block,) = body["blocked"]
    assert (block["ip"], block["port"], block["manual"]) == (fast.ip, FAST_PORT, False)
    assert 0 < block["remaining"] <= BLOCK_DURATION

    # REST unblock: the drop flow goes and the client's traffic comes back.
    status, body = controller.delete(f"{API}/blocked/{switch.dpid}/{fast.ip}/{FAST_PORT}")
    assert status == 200, body
    assert wait_for(lambda: not drop_flow(), 5), switch.ovs.dump_flows()
    resumed_from = arrived(stats_path, fast_client)
    assert wait_for(lambda: arrived(stats_path, fast_client) > resumed_from, 20), (
        "no traffic from the fast client after the unblock"
    )

    # Still flooding: blocked again; stopped, the block then ends by its hard timeout.
    assert wait_for(drop_flow, 3 * POLL_INTERVAL + 4, interval=0.2), switch.ovs.dump_flows()
    fast_sender.terminate()
    fast_sender.wait(5)
    assert wait_for(
        lambda: controller.get(f"{API}/blocked")[1]["blocked"] == [], BLOCK_DURATION + 8
    ), controller.get(f"{API}/blocked")
    assert not drop_flow()
    _, status = controller.get(f"{API}/status")
    assert status["unblocks_total"].get("manual") == 1, status
    assert status["unblocks_total"].get("expired") == 1, status
    _, events = controller.get(f"{API}/events")
    blocks = [(e["kind"], e["ip"]) for e in events["events"] if e["kind"] != "flag"]
    assert blocks == [
        ("block", fast.ip),
        ("unblock", fast.ip),
        ("block", fast.ip),
        ("unblock", fast.ip),
    ]
    assert "hard_timeout" in events["events"][-1]["reason"]

    # The slow client was monitored throughout with a rate under the threshold.
    _, body = controller.get(f"{API}/monitored")
    (entry,) = [m for m in body["monitored"] if m["ip"] == slow.ip]
    assert entry["packets_per_min"] is not None and entry["packets_per_min"] < 100
    assert "Traceback" not in controller.log_text()


def test_meter_mode_polices_the_flood_to_the_meter_rate(controller_factory, lab, tmp_path):
    controller = controller_factory(
        env=controller_env(
            tmp_path,
            XMPP_OFC_RATE_LIMITER_MODE="meter",
            XMPP_OFC_RATE_LIMITER_METER_RATE_PPS=str(METER_PPS),
            XMPP_OFC_RATE_LIMITER_METER_BURST_PACKETS=str(METER_BURST),
        )
    )
    switch, server, fast, slow = build(lab, controller)
    features = switch.ovs.ofctl("meter-features")
    if "max_meter:0" in features.replace(" ", "") or "drop" not in features:
        pytest.skip(f"this OVS has no usable OpenFlow 1.3 meters: {features}")
    assert wait_for(
        lambda: (
            controller.get(f"{API}/status")[1]["switches"].get(switch.dpid, {}).get("mode")
            == "meter"
        ),
        10,
    ), controller.get(f"{API}/status")

    stats_path = str(tmp_path / "sink.json")
    serve_sink(server, XMPP_PORT, stats_path)
    fast_client = Client(fast.ip, FAST_PORT)
    slow_client = Client(slow.ip, SLOW_PORT)
    start_paced_sender(slow, server.ip, XMPP_PORT, src_port=SLOW_PORT, rate=SLOW_RATE)
    start_paced_sender(fast, server.ip, XMPP_PORT, src_port=FAST_PORT, rate=200)

    def metered_monitor():
        found = of_client(fast_client, ours(Kind.MONITOR, switch.ovs.dump_flows(table=0)))
        return [flow for flow in found if "meter:" in flow.actions]

    found = wait_for(metered_monitor, 15)
    assert found, switch.ovs.dump_flows()
    meters = switch.ovs.ofctl("dump-meters")
    assert "pktps" in meters and f"rate={METER_PPS}" in meters, meters

    # Let the burst go and TCP settle, then count what reaches the server over a window.
    time.sleep(4)
    window = 6.0
    fast_start, slow_start = arrived(stats_path, fast_client), arrived(stats_path, slow_client)
    time.sleep(window)
    fast_rate = (arrived(stats_path, fast_client) - fast_start) / window
    slow_count = arrived(stats_path, slow_client) - slow_start
    assert 0 < fast_rate <= METER_PPS * 1.5 + METER_BURST / window, fast_rate
    assert slow_count >= SLOW_RATE * window - 2, slow_count

    # Policed, not blocked: no drop flow, the client is flagged as metered.
    assert not ours(Kind.BLOCK, switch.ovs.dump_flows(table=0))
    _, body = controller.get(f"{API}/monitored")
    (entry,) = [m for m in body["monitored"] if m["ip"] == fast.ip]
    assert entry["meter_id"] is not None
    assert "Traceback" not in controller.log_text()


#: A bounded connection flood: COUNT new TCP connections at RATE/s, then exit.
CONNECT_FLOOD = """
import socket, sys, time
dst, port, rate, count = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
start = time.monotonic()
for i in range(count):
    s = socket.socket(); s.setblocking(False)
    try: s.connect_ex((dst, port))
    finally: s.close()
    time.sleep(max(0.0, start + (i + 1) / rate - time.monotonic()))
"""


def test_connection_flood_is_blocked_per_address_at_defaults(controller_factory, lab, tmp_path):
    """200 new connections/s from one address: an address drop flow within 10 s, at defaults."""
    controller = controller_factory(
        env={"XMPP_OFC_RATE_LIMITER_DB_PATH": str(tmp_path / "rate_limiter.sqlite")}
    )
    switch, server, fast, _slow = build(lab, controller)
    serve_sink(server, XMPP_PORT, str(tmp_path / "sink.json"))
    started = time.monotonic()
    fast.spawn([sys.executable, "-c", CONNECT_FLOOD, server.ip, str(XMPP_PORT), "200", "1000"])

    def address_block():
        return [
            flow
            for flow in ours(Kind.BLOCK, switch.ovs.dump_flows(table=0))
            if flow.match.get("nw_src") == fast.ip and "tp_src" not in flow.match
        ]

    blocked = wait_for(address_block, 10, interval=0.2)
    assert blocked, switch.ovs.dump_flows()
    assert time.monotonic() - started <= 10
    assert blocked[0].priority == 300 and blocked[0].actions == "drop", blocked[0]
    # The flood's later connections add no monitor flows: table 0 stays bounded.
    time.sleep(2)
    assert len(switch.ovs.dump_flows(table=0)) < 100, switch.ovs.dump_flows(table=0)
