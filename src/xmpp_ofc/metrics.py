"""The bundle's Prometheus metrics: every name, label and help text lives here.

Names follow Faucet (``of_packet_ins``, ``of_flowmsgs_sent``, ``of_errors``,
``dp_status``, ``port_learn_bans``; label ``dp_id``) where Faucet has a metric
that means the same thing, and carry the ``xmpp_ofc_`` prefix where it has none.
``dp_id`` is the datapath id as Kytos and our REST API write it
(``00:00:00:00:00:00:00:01``), so a series joins the REST views without a lookup.

Two kinds of metrics, chosen by where the truth lives:

* **Event metrics** (counters and histograms of things that happen: messages,
  packet-in handling time, poll duration, connections) are module-level
  prometheus_client objects the NApp shells update as events pass.  A switch that
  disconnects loses its series (:func:`switch_disconnected`).
* **State metrics** (learned MACs, learning bans, monitored and blocked clients,
  per-client rates, block/unblock totals) are read from the NApp's own state at
  scrape time through a snapshot function the NApp binds (:class:`StateMetrics`).
  The value is exact when scraped, costs nothing on the packet path, and a gone
  client or switch has no series by construction: nothing to remove, and no
  update racing a removal can bring a stale series back.

All metrics are in prometheus_client's default registry: the NApps share one
process, and the dispatcher exposes that registry (REST, optional HTTP port,
optional Graphite push).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

log = logging.getLogger(__name__)

DP_ID = "dp_id"
#: Per-client rate series at most (the fastest clients first): a scrape of 50k
#: monitored clients would cost Prometheus more than it tells an operator.
CLIENT_SERIES_LIMIT = 1000

# Packet-in handling is tens of microseconds; a slow one is milliseconds.
PACKET_IN_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1, 1.0)
# Evaluating one flow-stats reply: ~1 ms for a few clients, ~1 s for 50k.
POLL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

# --- event metrics: dispatcher ----------------------------------------------------------

OF_MESSAGES_RECEIVED = Counter(
    "xmpp_ofc_of_messages_received",
    "OpenFlow messages received from a switch, by type (e.g. ofpt_packet_in)",
    [DP_ID, "type"],
)
OF_MESSAGES_SENT = Counter(
    "xmpp_ofc_of_messages_sent",
    "OpenFlow messages sent to a switch by any NApp, by type (e.g. ofpt_flow_mod)",
    [DP_ID, "type"],
)
OF_PACKET_INS = Counter("of_packet_ins", "OpenFlow packet-ins received from a switch", [DP_ID])
OF_FLOWMSGS_SENT = Counter(
    "of_flowmsgs_sent", "OpenFlow flow-mods and packet-outs sent to a switch", [DP_ID]
)
OF_ERRORS = Counter("of_errors", "OpenFlow error messages received from a switch", [DP_ID])
DP_STATUS = Gauge(
    "dp_status", "1 while the switch is connected (the series goes when it disconnects)", [DP_ID]
)
SWITCHES_CONNECTED = Gauge("xmpp_ofc_switches_connected", "Switches connected now")
DP_CONNECTIONS = Counter("xmpp_ofc_dp_connections", "Switch handshakes completed")
DP_DISCONNECTIONS = Counter("xmpp_ofc_dp_disconnections", "Switch connections lost")
MESSAGES_NOT_PACKED = Counter(
    "xmpp_ofc_of_messages_not_packed",
    "Outgoing OpenFlow messages dropped because python-openflow could not pack them",
    [DP_ID, "type"],
)
CORE_TASK_FAILURES = Counter(
    "xmpp_ofc_core_task_failures",
    "Errors raised in Kytos core event loops (raw, msg_in, msg_out, app); the loop went on",
    ["task"],
)
FLOWS_RESTORED = Counter(
    "xmpp_ofc_flows_restored",
    "Flows of the bundle that flow_manager's consistency check found missing on a switch"
    " (deleted outside the controller) and re-added",
    [DP_ID],
)
CORE_TASK_UP = Gauge(
    "xmpp_ofc_core_task_up",
    "1 while a Kytos core event loop (raw, msg_in, msg_out, app) runs; 0 after it ended "
    "until the watchdog restarted it (see GET /api/kytos/of_core/v1/health)",
    ["task"],
)
CORE_TASK_RESTARTS = Counter(
    "xmpp_ofc_core_task_restarts",
    "Kytos core event loops that ended unexpectedly and were restarted by the watchdog",
    ["task"],
)
DP_CLAIMS_REFUSED = Counter(
    "xmpp_ofc_dp_claims_refused",
    "Connections refused because they claimed the dpid of a switch that answered an echo",
)
OF_OUTPUT_OVERFLOWS = Counter(
    "xmpp_ofc_of_output_overflows",
    "Connections closed because their output queue was full (the peer does not read); "
    "the message that did not fit was dropped",
)
OF_INPUT_PAUSES = Counter(
    "xmpp_ofc_of_input_pauses",
    "Times reading from a connection was paused because more than its input budget "
    "waited unhandled (TCP pushes back on the peer until the controller catches up)",
)
PACKET_IN_SECS = Histogram(
    "xmpp_ofc_packet_in_secs",
    "Seconds a NApp spent on one packet-in (dispatcher: route and decode; module: decide and send)",
    [DP_ID, "napp"],
    buckets=PACKET_IN_BUCKETS,
)

PACKET_INS_SHED = Counter(
    "xmpp_ofc_packet_ins_shed",
    "Packet-ins the dispatcher dropped unhandled because the module's per-switch budget "
    "was spent (a capture flood; see the README's capture-path bounds)",
    [DP_ID, "napp"],
)

# --- event metrics: rate limiter -----------------------------------------------------------

POLL_SECS = Histogram(
    "xmpp_ofc_poll_secs",
    "Seconds the rate limiter spent evaluating one flow-stats poll reply of a switch "
    "(rates, thresholds, blocks)",
    [DP_ID],
    buckets=POLL_BUCKETS,
)

#: Every event metric with a ``dp_id`` label: a switch that goes away leaves them all.
PER_SWITCH_EVENT_METRICS = (
    OF_MESSAGES_RECEIVED,
    OF_MESSAGES_SENT,
    OF_PACKET_INS,
    OF_FLOWMSGS_SENT,
    OF_ERRORS,
    DP_STATUS,
    PACKET_IN_SECS,
    PACKET_INS_SHED,
    FLOWS_RESTORED,
    POLL_SECS,
)

_FLOW_MESSAGES = frozenset({"ofpt_flow_mod", "ofpt_packet_out"})


def count_of_message(dpid: str, direction: str, msg_type: str, amount: int = 1) -> None:
    """Count ``amount`` OpenFlow messages, e.g. ``("00:..:01", "in", "ofpt_packet_in")``.

    ``direction`` is ``"in"`` (from the switch) or ``"out"``.  Also feeds Faucet's
    per-kind counters (packet-ins, errors, flow messages sent).  ``amount`` > 1 is
    a batch written in one send (flow_manager's FlowMods of one event).
    """
    if direction not in ("in", "out"):
        raise ValueError(f"direction must be 'in' or 'out', got {direction!r}")
    if direction == "in":
        OF_MESSAGES_RECEIVED.labels(dpid, msg_type).inc()
        if msg_type == "ofpt_packet_in":
            OF_PACKET_INS.labels(dpid).inc()
        elif msg_type == "ofpt_error":
            OF_ERRORS.labels(dpid).inc()
    else:
        OF_MESSAGES_SENT.labels(dpid, msg_type).inc(amount)
        if msg_type in _FLOW_MESSAGES:
            OF_FLOWMSGS_SENT.labels(dpid).inc(amount)


_switch_lock = threading.Lock()
_connected: set[str] = set()


def switch_connected(dpid: str) -> None:
    """A switch completed its handshake (again: a reconnect counts once more)."""
    with _switch_lock:
        _connected.add(dpid)
        SWITCHES_CONNECTED.set(len(_connected))
    DP_STATUS.labels(dpid).set(1)
    DP_CONNECTIONS.inc()


def switch_disconnected(dpid: str) -> None:
    """A switch's connection was lost: count it and remove every series of the switch.

    Counters restart from zero if it comes back, which Prometheus' ``rate()`` and
    ``increase()`` treat as a counter reset.
    """
    with _switch_lock:
        was_connected = dpid in _connected
        _connected.discard(dpid)
        SWITCHES_CONNECTED.set(len(_connected))
    if was_connected:
        DP_DISCONNECTIONS.inc()
    forget_switch(dpid)


def forget_switch(dpid: str) -> None:
    """Remove every event-metric series labelled with ``dpid``."""
    for metric in PER_SWITCH_EVENT_METRICS:
        metric.remove_by_labels({DP_ID: dpid})


def reset_event_metrics() -> None:
    """Drop every event-metric series (tests; a dispatcher that starts afresh)."""
    with _switch_lock:
        _connected.clear()
        SWITCHES_CONNECTED.set(0)
    for metric in PER_SWITCH_EVENT_METRICS:
        metric.clear()


# --- state metrics ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StateFamily:
    """One metric a :class:`StateMetrics` produces from its NApp's state."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    kind: str = "gauge"  # "gauge" | "counter" (name without _total)

    def empty(self) -> Metric:
        """The family without samples (HELP and TYPE only)."""
        family_type = CounterMetricFamily if self.kind == "counter" else GaugeMetricFamily
        return family_type(self.name, self.documentation, labels=list(self.labels))


#: ``{family name: [(label values, value), ...]}``, what a snapshot function returns.
Samples = Mapping[str, Iterable[tuple[tuple[str, ...], float]]]


class StateMetrics(Collector):
    """Families read at scrape time from whatever snapshot function is bound.

    The NApp shell binds in ``setup()`` and unbinds in ``shutdown()``; a reloaded
    NApp rebinds.  Unbound (NApp not loaded), the families are exposed empty.  A
    snapshot that raises is logged and exposed empty: a broken NApp must not break
    the metrics of the others.
    """

    def __init__(
        self, families: Iterable[StateFamily], registry: CollectorRegistry | None = REGISTRY
    ) -> None:
        self.families = {family.name: family for family in families}
        self._snapshot: Callable[[], Samples] | None = None
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def bind(self, snapshot: Callable[[], Samples]) -> None:
        with self._lock:
            self._snapshot = snapshot

    def unbind(self) -> None:
        with self._lock:
            self._snapshot = None

    def describe(self) -> Iterator[Metric]:
        for family in self.families.values():
            yield family.empty()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snapshot = self._snapshot
        samples: Samples = {}
        if snapshot is not None:
            try:
                samples = snapshot()
            except Exception:
                log.exception("metrics snapshot %r failed", snapshot)
        for name, family in self.families.items():
            metric = family.empty()
            for label_values, value in samples.get(name, ()):
                metric.add_metric(list(label_values), value)
            yield metric


class LearningStats(Protocol):
    """What l2_switch's ``LearningSwitch.stats(dpid)`` returns (duck-typed)."""

    learned: int
    refused: int
    refused_per_port: Mapping[int, int]


L2_SWITCH = StateMetrics(
    (
        StateFamily("xmpp_ofc_learned_macs", "MAC addresses learned on a switch", (DP_ID,)),
        StateFamily(
            "port_learn_bans",
            "New MACs refused on a port because the port's or switch's table was full",
            (DP_ID, "port"),
        ),
        StateFamily(
            "xmpp_ofc_learn_bans",
            "New MACs refused on a switch since it (re)connected (table full: MAC flooding?)",
            (DP_ID,),
        ),
    )
)


def l2_switch_samples(stats: Mapping[str, LearningStats]) -> Samples:
    """State metrics of l2_switch from ``{dpid: LearningSwitch.stats(dpid)}``."""
    return {
        "xmpp_ofc_learned_macs": [((dpid,), s.learned) for dpid, s in stats.items()],
        "port_learn_bans": [
            ((dpid, str(port)), n)
            for dpid, s in stats.items()
            for port, n in sorted(s.refused_per_port.items())
        ],
        "xmpp_ofc_learn_bans": [((dpid,), s.refused) for dpid, s in stats.items()],
    }


RATE_LIMITER = StateMetrics(
    (
        StateFamily("xmpp_ofc_monitored_clients", "XMPP client connections monitored", (DP_ID,)),
        StateFamily("xmpp_ofc_blocked_clients", "Active blocks (clients or addresses)", (DP_ID,)),
        StateFamily(
            "xmpp_ofc_blocks", "Blocks started, automatic or manual", ("kind",), kind="counter"
        ),
        StateFamily(
            "xmpp_ofc_unblocks",
            "Blocks ended, by reason (expired, manual, whitelisted, module_stopped)",
            ("reason",),
            kind="counter",
        ),
        StateFamily(
            "xmpp_ofc_flags",
            "Clients found over the threshold but not blocked (monitor-only, whitelisted, metered)",
            (),
            kind="counter",
        ),
        StateFamily(
            "xmpp_ofc_refused_flows",
            "Flows of the rate limiter a switch refused (OFPT_ERROR, e.g. table full), "
            "by flow kind (block, monitor, capture)",
            ("kind",),
            kind="counter",
        ),
        StateFamily(
            "xmpp_ofc_unmonitored_connections",
            "Capture packet-ins whose connection was not monitored because a bound was "
            "reached (switch_bound, address_bound)",
            ("reason",),
            kind="counter",
        ),
        StateFamily(
            "xmpp_ofc_client_packets_per_minute",
            f"Packets per minute of a monitored client over the last poll "
            f"(the {CLIENT_SERIES_LIMIT} fastest)",
            (DP_ID, "ip", "port"),
        ),
        StateFamily(
            "xmpp_ofc_client_payload_bytes_per_minute",
            f"Payload bytes per minute of a monitored client over the last poll "
            f"(the {CLIENT_SERIES_LIMIT} fastest by packets)",
            (DP_ID, "ip", "port"),
        ),
    )
)


def rate_limiter_samples(
    status: Mapping[str, Any], monitored: Iterable[Mapping[str, Any]]
) -> Samples:
    """State metrics of the rate limiter from its REST views.

    ``status`` is ``RateLimiter.status()`` (``switches`` with ``monitored`` and
    ``blocked`` counts, ``blocks_total``, ``unblocks_total``, ``flags_total``) and
    ``monitored`` is ``RateLimiter.monitored()``.  Clients without a rate yet
    (fewer than two polls) have no rate series.
    """
    switches = status.get("switches", {})
    rated = [c for c in monitored if c.get("packets_per_min") is not None]
    rated.sort(key=lambda c: c["packets_per_min"], reverse=True)
    rated = rated[:CLIENT_SERIES_LIMIT]

    def client_labels(client: Mapping[str, Any]) -> tuple[str, ...]:
        return (client["dpid"], client["ip"], str(client["port"]))

    return {
        "xmpp_ofc_monitored_clients": [
            ((dpid,), view.get("monitored", 0)) for dpid, view in switches.items()
        ],
        "xmpp_ofc_blocked_clients": [
            ((dpid,), view.get("blocked", 0)) for dpid, view in switches.items()
        ],
        "xmpp_ofc_blocks": [((kind,), n) for kind, n in status.get("blocks_total", {}).items()],
        "xmpp_ofc_unblocks": [
            ((reason,), n) for reason, n in status.get("unblocks_total", {}).items()
        ],
        "xmpp_ofc_flags": [((), status.get("flags_total", 0))],
        "xmpp_ofc_refused_flows": [
            ((kind,), n) for kind, n in status.get("flow_errors_total", {}).items()
        ],
        "xmpp_ofc_unmonitored_connections": [
            ((reason,), n) for reason, n in status.get("unmonitored_total", {}).items()
        ],
        "xmpp_ofc_client_packets_per_minute": [
            (client_labels(c), c["packets_per_min"]) for c in rated
        ],
        "xmpp_ofc_client_payload_bytes_per_minute": [
            (client_labels(c), c["payload_bytes_per_min"])
            for c in rated
            if c.get("payload_bytes_per_min") is not None
        ],
    }


# --- what is exported -----------------------------------------------------------------------

ALL_COLLECTORS: tuple[Collector, ...] = (
    *PER_SWITCH_EVENT_METRICS,
    SWITCHES_CONNECTED,
    DP_CONNECTIONS,
    DP_DISCONNECTIONS,
    L2_SWITCH,
    RATE_LIMITER,
)

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}


def exported_sample_names() -> frozenset[str]:
    """Every sample name the bundle exposes (``of_packet_ins_total``, ``..._bucket``...).

    The Grafana dashboard test checks each query against this set.
    """
    names = set()
    for collector in ALL_COLLECTORS:
        for family in collector.describe():
            names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return frozenset(names)
