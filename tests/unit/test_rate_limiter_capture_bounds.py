"""The capture path's bounds (issue 14 item 5): capture meter, monitor bounds, spoofed floods."""

from __future__ import annotations

import ipaddress

import pytest
from test_rate_limiter_helpers import DPID, at, packet_in, removed

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.capture_bounds import CaptureBounds
from napps.xmpp_ofc.rate_limiter.connection_guard import ConnectionGuard
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.limiter import MeterSupport, RateLimiter
from napps.xmpp_ofc.rate_limiter.settings_model import LimiterSettings
from xmpp_ofc import cookies, metrics
from xmpp_ofc.commands import DeleteFlows, InstallFlow, ModifyMeter
from xmpp_ofc.cookies import Kind
from xmpp_ofc.messages import FlowRemovedReason
from xmpp_ofc.packet import TCP_ACK

METERS = MeterSupport(max_meter=100, band_drop=True, pps=True)
METER_OFF = {"instruction_type": "meter", "meter_id": 100}


def capture_installs(commands: list) -> list[dict]:
    return [
        c.flow
        for c in commands
        if isinstance(c, InstallFlow) and cookies.decode(c.flow["cookie"]).kind is Kind.CAPTURE
    ]


def monitor_installs(commands: list) -> list[dict]:
    return [
        c.flow
        for c in commands
        if isinstance(c, InstallFlow) and cookies.decode(c.flow["cookie"]).kind is Kind.MONITOR
    ]


def limiter_with(**bounds) -> RateLimiter:
    limiter = RateLimiter(LimiterSettings(), capture=CaptureBounds(**bounds))
    limiter.restore(DPID, at(0))
    return limiter


# --- the capture meter -------------------------------------------------------------


def test_capture_flows_are_unmetered_until_the_switch_reports_meters() -> None:
    limiter = RateLimiter()
    captures = capture_installs(limiter.restore(DPID, at(0)))
    assert len(captures) == 2
    assert all(f["instructions"][0]["instruction_type"] == "apply_actions" for f in captures)


def test_meter_support_puts_the_capture_flows_behind_the_capture_meter() -> None:
    limiter = limiter_with(meter_rate_pps=150, meter_burst=80)
    commands = limiter.set_meter_support(DPID, METERS, at(1))
    assert commands[:2] == [
        ModifyMeter(DPID, "delete", 100),
        ModifyMeter(DPID, "add", 100, rate_pps=150, burst=80),
    ]
    captures = capture_installs(commands)
    assert len(captures) == 2 == len(commands) - 2
    for flow in captures:
        assert flow["instructions"][0] == METER_OFF
        assert flow["instructions"][1]["actions"][0]["port"] == flows.pipeline.OFPP_CONTROLLER
        assert flow["instructions"][2] == {"instruction_type": "goto_table", "table_id": 1}
    assert limiter.status()["switches"][DPID]["capture_meter_id"] == 100


def test_without_usable_meters_the_capture_stays_unmetered() -> None:
    limiter = limiter_with()
    assert limiter.set_meter_support(DPID, MeterSupport(0, True, True), at(1)) == []
    assert limiter.set_meter_support(DPID, MeterSupport(10, False, True), at(1)) == []
    assert limiter.status()["switches"][DPID]["capture_meter_id"] is None


def test_restore_and_port_changes_keep_the_capture_meter() -> None:
    limiter = limiter_with()
    limiter.set_meter_support(DPID, METERS, at(1))
    # RESTORE on a live switch (module re-enabled): meter recreated, flows through it.
    restored = limiter.restore(DPID, at(2))
    assert [c for c in restored if isinstance(c, ModifyMeter)][-1].command == "add"
    assert all(f["instructions"][0] == METER_OFF for f in capture_installs(restored))
    _, commands = limiter.update_settings({"xmpp_ports": [5222, 5223]}, at(3))
    assert isinstance(commands[0], DeleteFlows)
    assert not any(isinstance(c, ModifyMeter) for c in commands)
    captures = capture_installs(commands)
    assert len(captures) == 4 and all(f["instructions"][0] == METER_OFF for f in captures)


def test_meter_mode_clients_never_get_the_capture_meter_id() -> None:
    limiter = RateLimiter(LimiterSettings(mode="meter"))
    limiter.restore(DPID, at(0))
    limiter.set_meter_support(DPID, MeterSupport(3, True, True), at(0))
    ids = []
    for port in range(40001, 40005):
        for command in limiter.handle_packet_in(packet_in("10.0.0.7", port), at(1)):
            if isinstance(command, ModifyMeter):
                ids.append(command.meter_id)
    assert ids == [1, 2]  # 3 is the capture meter; the other two clients fall back
    assert limiter.status()["meter_fallbacks"] == 2


# --- monitor bounds ------------------------------------------------------------------


def test_per_address_bound_counts_and_leaves_other_addresses_alone() -> None:
    limiter = limiter_with(max_per_address=3)
    for port in range(40001, 40004):
        assert monitor_installs(limiter.handle_packet_in(packet_in("10.0.0.7", port), at(1)))
    # The 4th connection of the address stays on the capture path: no flow, counted.
    assert limiter.handle_packet_in(packet_in("10.0.0.7", 40004), at(1)) == []
    assert limiter.handle_packet_in(packet_in("10.0.0.7", 40004, flags=TCP_ACK), at(1)) == []
    assert limiter.status()["unmonitored_total"] == {"address_bound": 2}
    assert monitor_installs(limiter.handle_packet_in(packet_in("10.0.0.8", 40001), at(1)))
    # One of its connections idles out: the next new one is monitored.
    flow = flows.monitor_flow(Client.of("10.0.0.7", 40001), 5222, idle_timeout=120)
    limiter.handle_flow_removed(removed(flow, FlowRemovedReason.IDLE_TIMEOUT, 130), at(130))
    assert monitor_installs(limiter.handle_packet_in(packet_in("10.0.0.7", 40004), at(131)))


def test_a_whitelisted_address_has_no_per_address_bound() -> None:
    limiter = RateLimiter(
        LimiterSettings(whitelist=("10.0.0.0/24",)), capture=CaptureBounds(max_per_address=2)
    )
    limiter.restore(DPID, at(0))
    for port in range(40001, 40011):
        assert monitor_installs(limiter.handle_packet_in(packet_in("10.0.0.7", port), at(1)))


def test_per_switch_bound_counts_and_logs_once_per_interval(caplog) -> None:
    limiter = limiter_with(max_per_switch=5)
    for host in range(1, 6):
        limiter.handle_packet_in(packet_in(f"10.0.1.{host}", 40001), at(1))
    with caplog.at_level("WARNING"):
        for host in range(6, 26):
            assert limiter.handle_packet_in(packet_in(f"10.0.1.{host}", 40001), at(1)) == []
        limiter.handle_packet_in(packet_in("10.0.1.99", 40001), at(12))
    assert limiter.status()["unmonitored_total"] == {"switch_bound": 21}
    assert sum("switch_bound" in r.getMessage() for r in caplog.records) == 2
    samples = dict(metrics.rate_limiter_samples(limiter.status(), limiter.monitored()))
    assert samples["xmpp_ofc_unmonitored_connections"] == [(("switch_bound",), 21)]


def test_bad_bounds_are_refused() -> None:
    for bad in ({"max_per_address": 0}, {"meter_rate_pps": -1}, {"meter_burst": True}):
        with pytest.raises(ValueError):
            CaptureBounds(**bad)


# --- many spoofed sources ------------------------------------------------------------


def test_syn_flood_from_thousands_of_spoofed_sources_grows_no_unbounded_state() -> None:
    """6,000 sources in 6,000 /24s, 3 SYNs each: clients, guard tables, flows stay bounded.

    One source per /24, so no prefix trips the guard (a flood from one /24 is a
    prefix block: test_rate_limiter_prefix_blocks.py) and the switch bound holds.
    """
    limiter = RateLimiter(
        LimiterSettings(),
        capture=CaptureBounds(max_per_switch=1000),
        connection_guard=ConnectionGuard(max_entries=1024),
    )
    limiter.restore(DPID, at(0))
    base = int(ipaddress.ip_address("10.64.0.0"))
    installs = 0
    for n in range(6000):
        ip = str(ipaddress.ip_address(base + (n << 8) + 1))
        for port in (40001, 40002, 40003):
            commands = limiter.handle_packet_in(packet_in(ip, port), at(1 + n / 1000))
            installs += len(monitor_installs(commands))
    clients = limiter.monitors.clients(DPID)
    assert len(clients) == 1000 == installs
    assert len(clients.per_address) <= 1000
    guard = limiter.connection_guard
    assert len(guard.addresses.entries) <= 1024 and len(guard.prefixes.entries) <= 1024
    assert guard.evicted > 0
    assert limiter.status()["unmonitored_total"]["switch_bound"] == 18_000 - 1000
