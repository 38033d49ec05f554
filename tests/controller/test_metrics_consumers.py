"""The controller's metrics, read by the real consumers: Prometheus (scrape + PromQL) and carbon.

A fake switch sends packet-ins at a steady pace; Debian's Prometheus, started
here on loopback with its own data directory, scrapes the dispatcher's metrics
port and answers PromQL about them, and Debian's carbon-cache, with its own
storage directory, receives the Graphite push and writes whisper files that
the test reads back with the whisper module.  Bounded: about 10 s of traffic,
every wait has a timeout, the whole test at most 120 s.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.kytos_helpers import pyof_packet_in, running_controller
from tests.waiting import wait_until
from xmpp_ofc import cookies, graphite, pipeline
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.packet import ETH_TYPE_ARP
from xmpp_ofc.testing import frames
from xmpp_ofc.testing.controller import free_port
from xmpp_ofc.testing.fake_switch import FakeSwitch
from xmpp_ofc.testing.metrics_consumers import CarbonCache, PrometheusServer, missing_binaries

DPID = 0x4D3
DPID_STR = "00:00:00:00:00:00:04:d3"
PACKET_INS = 200
PER_SECOND = 20.0
L2_MISS = cookies.encode(Owner.L2_SWITCH, Kind.TABLE_MISS)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def consumers(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        pytest.skip(
            f"METRICS CONSUMER TESTS SKIPPED: {', '.join(missing)} not installed; "
            "`make test` as root installs them (scripts/ensure-system-deps.sh)"
        )
    base = tmp_path_factory.mktemp("metrics_consumers")
    metrics_port = free_port()
    with CarbonCache(base / "carbon") as carbon:
        env = {
            "XMPP_OFC_DISPATCHER_METRICS_PORT": str(metrics_port),
            "XMPP_OFC_DISPATCHER_GRAPHITE_HOST": "127.0.0.1",
            "XMPP_OFC_DISPATCHER_GRAPHITE_PORT": str(carbon.line_port),
            "XMPP_OFC_DISPATCHER_GRAPHITE_INTERVAL": "1",
            "XMPP_OFC_DISPATCHER_DISABLED_MODULES": "rate_limiter",
        }
        with running_controller(base / "controller", env=env) as controller:
            prometheus = PrometheusServer(base / "prometheus", [f"127.0.0.1:{metrics_port}"])
            with prometheus:
                assert wait_until(prometheus.targets_up, 30, 0.5), "scrape target never up"
                yield controller, prometheus, carbon


def arp_request(index: int) -> bytes:
    src = f"02:00:00:00:{index // 256:02x}:{index % 256:02x}"
    body = frames.arp(1, src, "10.0.0.1", "00:00:00:00:00:00", "10.0.0.2")
    return frames.ethernet("ff:ff:ff:ff:ff:ff", src, ETH_TYPE_ARP, body)


def send_packet_ins(switch: FakeSwitch, count: int, per_second: float) -> None:
    start = time.monotonic()
    for index in range(count):
        frame = arp_request(index)
        switch.send(pyof_packet_in(frame, 1, cookie=L2_MISS, table_id=pipeline.TABLE_FORWARDING))
        pause = start + (index + 1) / per_second - time.monotonic()
        if pause > 0:
            time.sleep(pause)


def scalar(prometheus: PrometheusServer, promql: str) -> float | None:
    result = prometheus.query(promql)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_and_carbon_see_the_packet_ins_of_a_fake_switch(consumers):
    controller, prometheus, carbon = consumers
    selector = f'of_packet_ins_total{{dp_id="{DPID_STR}"}}'
    with FakeSwitch("127.0.0.1", controller.of_port, dpid=DPID, ports=(1, 2)) as switch:
        switch.handshake()
        sender = threading.Thread(
            target=send_packet_ins, args=(switch, PACKET_INS, PER_SECOND), daemon=True
        )
        sender.start()

        # While the traffic runs: PromQL's rate over the scrapes, near the pace sent.
        time.sleep(5)
        rates: list[float] = []

        def rate_near_the_pace() -> bool:
            value = scalar(prometheus, f"rate({selector}[4s])")
            if value is not None:
                rates.append(value)
            return value is not None and PER_SECOND / 3 <= value <= PER_SECOND * 3

        assert wait_until(rate_near_the_pace, 4, 0.5), f"rates seen: {rates}"
        sender.join(PACKET_INS / PER_SECOND + 20)
        assert not sender.is_alive()

        # All of them, exactly, once the last scrape after the traffic is in.
        assert wait_until(lambda: scalar(prometheus, selector) == PACKET_INS, 15, 0.5), scalar(
            prometheus, selector
        )
        by_switch = prometheus.query("sum by (dp_id) (of_packet_ins_total)")
        assert {r["metric"]["dp_id"]: float(r["value"][1]) for r in by_switch}[
            DPID_STR
        ] == PACKET_INS

    # carbon: the pushed counter, from its whisper file, rising to the same total.
    metric = ".".join(["xmpp_ofc", "of_packet_ins_total", "dp_id", graphite.path_segment(DPID_STR)])
    assert wait_until(lambda: PACKET_INS in carbon.values(metric), 20, 0.5), (
        carbon.whisper_path(metric),
        carbon.values(metric)[-5:],
        carbon.log_text(),
    )
    points = carbon.values(metric)
    assert points == sorted(points)  # a counter, one point per push (1 s resolution)
    assert len(set(points)) >= 3  # several pushes saw it rise while the traffic ran
