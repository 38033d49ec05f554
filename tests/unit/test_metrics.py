"""xmpp_ofc.metrics: event metrics, series removal, state snapshots, exposition."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from xmpp_ofc import metrics

DPID = "00:00:00:00:00:00:00:71"
OTHER = "00:00:00:00:00:00:00:72"


@pytest.fixture(autouse=True)
def clean_metrics():
    metrics.reset_event_metrics()
    yield
    metrics.reset_event_metrics()
    metrics.L2_SWITCH.unbind()
    metrics.RATE_LIMITER.unbind()


def samples(name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample ``name`` in the default registry's exposition, keyed by its labels."""
    text = generate_latest().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(name: str, **labels: str) -> float | None:
    return samples(name).get(tuple(sorted(labels.items())))


def test_messages_are_counted_by_switch_direction_and_type():
    metrics.count_of_message(DPID, "in", "ofpt_packet_in")
    metrics.count_of_message(DPID, "in", "ofpt_packet_in")
    metrics.count_of_message(DPID, "in", "ofpt_error")
    metrics.count_of_message(DPID, "out", "ofpt_flow_mod")
    metrics.count_of_message(DPID, "out", "ofpt_packet_out")
    metrics.count_of_message(DPID, "out", "ofpt_echo_reply")

    received = "xmpp_ofc_of_messages_received_total"
    assert value(received, dp_id=DPID, type="ofpt_packet_in") == 2
    assert value(received, dp_id=DPID, type="ofpt_error") == 1
    assert value("xmpp_ofc_of_messages_sent_total", dp_id=DPID, type="ofpt_echo_reply") == 1
    assert value("of_packet_ins_total", dp_id=DPID) == 2
    assert value("of_errors_total", dp_id=DPID) == 1
    # Faucet's "flow messages (and packet outs)": not the echo reply.
    assert value("of_flowmsgs_sent_total", dp_id=DPID) == 2


def test_direction_is_checked():
    with pytest.raises(ValueError, match="direction"):
        metrics.count_of_message(DPID, "sideways", "ofpt_hello")


def test_connect_and_disconnect_update_status_and_remove_the_switch_series():
    metrics.switch_connected(DPID)
    metrics.switch_connected(OTHER)
    metrics.count_of_message(DPID, "in", "ofpt_packet_in")
    metrics.count_of_message(OTHER, "in", "ofpt_packet_in")
    metrics.PACKET_IN_SECS.labels(DPID, "dispatcher").observe(0.0002)
    metrics.POLL_SECS.labels(DPID).observe(0.01)
    assert value("dp_status", dp_id=DPID) == 1
    assert value("xmpp_ofc_switches_connected") == 2

    metrics.switch_disconnected(DPID)

    assert value("xmpp_ofc_switches_connected") == 1
    assert value("xmpp_ofc_dp_disconnections_total") >= 1
    text = generate_latest().decode()
    assert DPID not in text  # every series of the gone switch is removed
    assert value("of_packet_ins_total", dp_id=OTHER) == 1
    assert value("dp_status", dp_id=OTHER) == 1


def test_disconnect_of_an_unknown_switch_counts_nothing():
    before = value("xmpp_ofc_dp_disconnections_total")
    metrics.switch_disconnected("00:00:00:00:00:00:00:99")
    assert value("xmpp_ofc_dp_disconnections_total") == before
    assert value("xmpp_ofc_switches_connected") == 0


def test_reconnect_counts_the_switch_once():
    metrics.switch_connected(DPID)
    metrics.switch_connected(DPID)
    assert value("xmpp_ofc_switches_connected") == 1


@dataclass
class Stats:
    learned: int
    refused: int = 0
    refused_per_port: dict[int, int] = field(default_factory=dict)


def test_l2_state_is_read_at_scrape_time_and_gone_switches_vanish():
    tables = {DPID: Stats(3, 5, {2: 5}), OTHER: Stats(1)}
    metrics.L2_SWITCH.bind(lambda: metrics.l2_switch_samples(tables))

    assert value("xmpp_ofc_learned_macs", dp_id=DPID) == 3
    assert value("port_learn_bans", dp_id=DPID, port="2") == 5
    assert value("xmpp_ofc_learn_bans", dp_id=DPID) == 5

    tables[DPID].learned = 4
    del tables[OTHER]
    assert value("xmpp_ofc_learned_macs", dp_id=DPID) == 4
    assert samples("xmpp_ofc_learned_macs") == {(("dp_id", DPID),): 4}


def test_unbound_or_broken_snapshots_expose_empty_families():
    assert samples("xmpp_ofc_learned_macs") == {}

    def broken():
        raise RuntimeError("boom")

    metrics.L2_SWITCH.bind(broken)
    text = generate_latest().decode()
    assert "# TYPE xmpp_ofc_learned_macs gauge" in text
    assert samples("xmpp_ofc_learned_macs") == {}


STATUS = {
    "switches": {DPID: {"monitored": 3, "blocked": 1}, OTHER: {"monitored": 0, "blocked": 0}},
    "blocks_total": {"auto": 2, "manual": 1},
    "unblocks_total": {"expired": 1, "manual": 1},
    "flags_total": 4,
    "flow_errors_total": {"block": 2},
}


def client(port: int, ppm: float | None, payload: float | None = 100.0) -> dict:
    return {
        "dpid": DPID,
        "ip": "10.0.0.5",
        "port": port,
        "packets_per_min": ppm,
        "payload_bytes_per_min": payload,
    }


def test_rate_limiter_state():
    monitored = [client(40001, 600.0), client(40002, None), client(40003, 5.0, None)]
    metrics.RATE_LIMITER.bind(lambda: metrics.rate_limiter_samples(STATUS, monitored))

    assert value("xmpp_ofc_monitored_clients", dp_id=DPID) == 3
    assert value("xmpp_ofc_blocked_clients", dp_id=DPID) == 1
    assert value("xmpp_ofc_blocked_clients", dp_id=OTHER) == 0
    assert value("xmpp_ofc_blocks_total", kind="manual") == 1
    assert value("xmpp_ofc_unblocks_total", reason="expired") == 1
    assert value("xmpp_ofc_flags_total") == 4
    assert value("xmpp_ofc_refused_flows_total", kind="block") == 2
    rates = samples("xmpp_ofc_client_packets_per_minute")
    # A client without a rate yet has no series; gone clients have none either.
    assert rates == {
        (("dp_id", DPID), ("ip", "10.0.0.5"), ("port", "40001")): 600.0,
        (("dp_id", DPID), ("ip", "10.0.0.5"), ("port", "40003")): 5.0,
    }
    assert len(samples("xmpp_ofc_client_payload_bytes_per_minute")) == 1


def test_per_client_series_are_capped_to_the_fastest(monkeypatch):
    monkeypatch.setattr(metrics, "CLIENT_SERIES_LIMIT", 2)
    monitored = [client(40000 + n, float(n)) for n in range(5)]
    result = metrics.rate_limiter_samples(STATUS, monitored)
    ports = [labels[2] for labels, _ in result["xmpp_ofc_client_packets_per_minute"]]
    assert ports == ["40004", "40003"]


def test_state_metrics_register_in_the_given_registry_only():
    registry = CollectorRegistry()
    collector = metrics.StateMetrics(
        [metrics.StateFamily("test_things", "things", ("dp_id",))], registry=registry
    )
    collector.bind(lambda: {"test_things": [((DPID,), 7)]})
    text = generate_latest(registry).decode()
    assert f'test_things{{dp_id="{DPID}"}} 7.0' in text


def test_exported_sample_names_follow_the_metric_types():
    names = metrics.exported_sample_names()
    assert {"of_packet_ins_total", "dp_status", "xmpp_ofc_packet_in_secs_bucket"} <= names
    assert {"xmpp_ofc_blocks_total", "port_learn_bans", "xmpp_ofc_poll_secs_count"} <= names
    assert "of_packet_ins" not in names  # a counter is only exposed with _total
