"""The l2_switch shell's metrics: learned MACs read at scrape time, gone with the switch."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.napps import test_l2_switch_main as base
from tests.napps.test_l2_switch_main import (
    BROADCAST,
    DPID,
    MAC_A,
    MAC_B,
    packet_in,
    restore,
    routed,
)
from xmpp_ofc import metrics
from xmpp_ofc.messages import Control

# The l2_switch shell's fixtures, shared with its main tests.
clock = base.clock
napp = base.napp


@pytest.fixture(autouse=True)
def clean_metrics():
    metrics.reset_event_metrics()
    yield
    metrics.reset_event_metrics()


def scrape() -> dict[str, dict[tuple, float]]:
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(generate_latest().decode()):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_learned_macs_and_handling_time_follow_the_table(napp):
    restore(napp)
    packet_in(napp, MAC_A, BROADCAST, 1)
    packet_in(napp, MAC_B, MAC_A, 2)
    found = scrape()
    assert found["xmpp_ofc_learned_macs"] == {(("dp_id", DPID),): 2}
    assert found["xmpp_ofc_learn_bans"] == {(("dp_id", DPID),): 0}
    key = (("dp_id", DPID), ("napp", "xmpp_ofc/l2_switch"))
    assert found["xmpp_ofc_packet_in_secs_count"][key] == 2


def test_refusals_show_per_port(napp):
    napp.learning.settings = dataclasses.replace(napp.learning.settings, max_macs_per_port=1)
    restore(napp)
    packet_in(napp, MAC_A, BROADCAST, 1)
    packet_in(napp, MAC_B, BROADCAST, 1)
    found = scrape()
    assert found["port_learn_bans"] == {(("dp_id", DPID), ("port", "1")): 1}
    assert found["xmpp_ofc_learn_bans"] == {(("dp_id", DPID),): 1}


def test_a_stopped_switch_has_no_series(napp):
    restore(napp)
    packet_in(napp, MAC_A, BROADCAST, 1)
    napp.on_stop(routed(Control.STOP, Control.STOP))
    found = scrape()
    assert found.get("xmpp_ofc_learned_macs", {}) == {}
    assert DPID not in generate_latest().decode()


def test_shutdown_unbinds_the_snapshot(napp):
    restore(napp)
    packet_in(napp, MAC_A, BROADCAST, 1)
    napp.shutdown()
    assert scrape().get("xmpp_ofc_learned_macs", {}) == {}
