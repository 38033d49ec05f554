"""Kytos shell of xmpp_ofc/dispatcher: the seed's gen_switch on the Kytos event bus.

It wires of_core's events to :mod:`.routing` (which module gets what, what to do
when a switch connects or a module is enabled) and REST to :mod:`.module_config`.
Each switch message is decoded once (:mod:`xmpp_ofc.pyof_decode`) and routed to
the one module that owns the cookie of the flow that produced it, as
``xmpp_ofc/dispatcher.<module>.<type>`` ``{"dpid", "message"}``; see README.md.

Threads: the per-message listeners run inline on the event loop
(``listen_on_loop``): they are ordered and cost no thread, so they only decode,
route, count and put events on buffers (never block).  Flow-stats replies, which
can hold 50k entries, are decoded on a Kytos handler thread.  REST handlers run on
werkzeug threads; the router and counters lock for themselves.

Metrics: the dispatcher updates the OpenFlow and switch metrics of
:mod:`xmpp_ofc.metrics` as events pass, and exposes the whole registry (every
NApp's metrics: they share the process) at ``v1/metrics``, optionally on its own
port and pushed to Graphite.  It also serves the web dashboard (``v1/dashboard/``).
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Response, jsonify, request
from kytos.core import KytosEvent, KytosNApp, log, rest
from kytos.core.helpers import listen_to
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, generate_latest, start_http_server

from napps.xmpp_ofc.dispatcher import settings
from napps.xmpp_ofc.dispatcher.message_history import MessageHistory
from napps.xmpp_ofc.dispatcher.module_config import (
    DEFAULT_MODULES,
    ModuleConfig,
    ModuleSpec,
    UnknownModuleError,
)
from napps.xmpp_ofc.dispatcher.packet_in_budget import Budget, PacketInBudgets
from napps.xmpp_ofc.dispatcher.routing import Direction, NotifyModule, Router, Step
from napps.xmpp_ofc.dispatcher.staleness import StalePacketIns
from xmpp_ofc import graphite, metrics, pyof_decode
from xmpp_ofc.commands import DeleteFlows, InstallFlow
from xmpp_ofc.kytos_commands import CommandSender
from xmpp_ofc.kytos_events import listen_on_loop
from xmpp_ofc.messages import (
    DISPATCHER_NAPP,
    Control,
    FlowStatsReply,
    MessageType,
    SwitchChange,
    module_event_name,
)
from xmpp_ofc.rest_body import RequestError, json_object, read_body, require_bool

OF_IN = "kytos/of_core.v0x04.messages.in"
OFPMP_FLOW = 1
#: Counter key of messages on a connection whose switch is not known yet (hello, features).
UNIDENTIFIED = "unidentified"
#: A module's routed STOP events; the dispatcher hears them too (see ``on_module_stop``).
#: The ``napp`` label of packet-ins shed for their age (``staleness.py``).
STALE = "stale"
STOP_EVENTS = re.escape(f"{DISPATCHER_NAPP}.") + r"\w+" + re.escape(f".{Control.STOP.value}")
LOADED_EVENTS = r"xmpp_ofc/(\w+)\.loaded"
PATCH_KEYS = ("enabled", "subscriptions")
#: The module whose packet-ins (capture copies of new XMPP connections) are budgeted.
CAPTURE_MODULE = "rate_limiter"
DASHBOARD_DIR = Path(__file__).with_name("dashboard")
#: The dashboard's files and their types: nothing else under v1/dashboard/ is served.
DASHBOARD_FILES = {
    "index.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}


def module_specs(disabled: str) -> list[ModuleSpec]:
    """The bundle's modules, with those named in ``disabled`` (comma-separated) off."""
    names = {name.strip() for name in disabled.split(",") if name.strip()}
    unknown = names - {spec.name for spec in DEFAULT_MODULES}
    if unknown:
        raise ValueError(f"{settings.ENV_PREFIX}DISABLED_MODULES names unknown {sorted(unknown)}")
    return [
        ModuleSpec(spec.name, spec.owner, spec.subscriptions, spec.name not in names)
        for spec in DEFAULT_MODULES
    ]


def _dpid_of(connection: Any) -> str | None:
    switch = getattr(connection, "switch", None)
    return None if switch is None else switch.dpid


class Main(KytosNApp):
    """The xmpp_ofc/dispatcher NApp."""

    def setup(self) -> None:
        self.router = Router(ModuleConfig(module_specs(settings.DISABLED_MODULES)))
        self.sender = CommandSender(self.controller, DISPATCHER_NAPP)
        # Steps held until a STOP event is delivered: {id(event): (event, steps)}.
        self._after_stop: dict[int, tuple[KytosEvent, list[Step]]] = {}
        self._after_stop_lock = threading.Lock()
        self.budgets = PacketInBudgets(
            {
                CAPTURE_MODULE: Budget(
                    settings.CAPTURE_PACKET_IN_RATE, settings.CAPTURE_PACKET_IN_BURST
                )
            }
        )
        self.stale = StalePacketIns(settings.PACKET_IN_MAX_AGE_S)
        self.history = MessageHistory(settings.HISTORY_INTERVAL, settings.HISTORY_SIZE)
        self._metrics_server = None
        if settings.METRICS_PORT:
            self._metrics_server, _ = start_http_server(
                settings.METRICS_PORT, settings.METRICS_ADDRESS
            )
        self.graphite = graphite.pusher_from_settings(
            settings.GRAPHITE_HOST,
            settings.GRAPHITE_PORT,
            settings.GRAPHITE_PREFIX,
            settings.GRAPHITE_INTERVAL,
        )
        # A dispatcher (re)loaded while switches are connected takes them over.
        for switch in list(self.controller.switches.values()):
            if switch.is_connected():
                metrics.switch_connected(switch.dpid)
                self._run(self.router.switch_up(switch.dpid))
        self.execute_as_loop(settings.HISTORY_INTERVAL)

    def execute(self) -> None:
        """Sample the message totals for the dashboard's chart (everything else reacts)."""
        counters = self.router.counters
        self.history.sample(
            time.time(), counters.total(Direction.IN), counters.total(Direction.OUT)
        )

    def shutdown(self) -> None:
        if self.graphite is not None:
            self.graphite.stop()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        log.info("xmpp_ofc/dispatcher stopped")

    # --- steps -> events ---------------------------------------------------------

    def _run(self, steps: list[Step] | tuple[Step, ...]) -> None:
        """Send ``steps`` in order; a STOP holds the rest until it is delivered."""
        for index, step in enumerate(steps):
            if isinstance(step, DeleteFlows | InstallFlow):
                self.sender.send([step])
                continue
            event = self._module_event(step.module, step.kind, step.dpid, self._notice(step))
            held = list(steps[index + 1 :]) if step.kind is Control.STOP else []
            if held:
                # Registered before the put: the loop may deliver the STOP at once.
                with self._after_stop_lock:
                    self._after_stop[id(event)] = (event, held)
            self.controller.buffers.app.put(event)
            if held:
                return

    @staticmethod
    def _notice(step: NotifyModule) -> Any:
        if step.kind in (MessageType.SWITCH_UP, MessageType.SWITCH_DOWN):
            return SwitchChange(step.dpid, up=step.kind is MessageType.SWITCH_UP)
        return step.kind

    @staticmethod
    def _module_event(
        module: str, kind: MessageType | Control, dpid: str, message: Any
    ) -> KytosEvent:
        return KytosEvent(
            name=module_event_name(module, kind), content={"dpid": dpid, "message": message}
        )

    def _notify(self, module: str, kind: MessageType | Control, dpid: str, message: Any) -> None:
        self.controller.buffers.app.put(self._module_event(module, kind, dpid, message))

    @listen_on_loop(STOP_EVENTS)
    def on_module_stop(self, event: KytosEvent) -> None:
        """Send what a disable held back, now that the module's STOP is being delivered.

        Everything routed to the module before the disable was delivered before this
        STOP, and the flows the module queued in answer are on the app buffer ahead
        of what we queue now: the delete by owner removes them too.
        """
        with self._after_stop_lock:
            held = self._after_stop.pop(id(event), None)
        if held is not None:
            self._run(held[1])

    # --- switch lifecycle ----------------------------------------------------------

    @listen_on_loop("kytos/of_core.handshake.completed")
    def on_handshake_completed(self, event: KytosEvent) -> None:
        """Delete our flows, install the base pipeline, restore each enabled module."""
        dpid = event.content["switch"].dpid
        log.info("dispatcher: switch %s up; installing base pipeline", dpid)
        metrics.switch_connected(dpid)
        self._run(self.router.switch_up(dpid))

    @listen_on_loop("kytos/of_core.switch.disconnected")
    def on_switch_disconnected(self, event: KytosEvent) -> None:
        """Tell the subscribers, and drop the switch's metric series."""
        dpid = event.content["switch"].dpid
        metrics.switch_disconnected(dpid)
        self.budgets.forget_switch(dpid)
        self.stale.forget(dpid)
        self._run(self.router.switch_down(dpid))

    @listen_on_loop(LOADED_EVENTS)
    def on_napp_loaded(self, event: KytosEvent) -> None:
        """A module that starts after a switch connected still gets its RESTORE."""
        found = re.match(LOADED_EVENTS, event.name)
        if found is not None:
            self._run(self.router.module_loaded(found.group(1)))

    # --- routed messages -------------------------------------------------------------

    @listen_on_loop(f"{OF_IN}.ofpt_packet_in")
    def on_packet_in(self, event: KytosEvent) -> None:
        """Route by cookie first: a packet-in no module gets is never decoded."""
        started = time.perf_counter()
        dpid = _dpid_of(event.source)
        message = event.message
        if dpid is None or self._shed_if_stale(dpid, event):
            return
        module = self.router.route(dpid, MessageType.PACKET_IN, pyof_decode.cookie_of(message))
        if module is not None and not self._admit(dpid, module):
            module = None
        if module is not None:
            decoded = pyof_decode.packet_in(dpid, message)
            if decoded is not None:
                self._notify(module, MessageType.PACKET_IN, dpid, decoded)
        metrics.PACKET_IN_SECS.labels(dpid, DISPATCHER_NAPP).observe(time.perf_counter() - started)

    def _shed_if_stale(self, dpid: str, event: KytosEvent) -> bool:
        """Drop a packet-in that waited longer than PACKET_IN_MAX_AGE_S (``staleness.py``)."""
        age = (datetime.now(UTC) - event.timestamp).total_seconds()
        if not self.stale.is_stale(age):
            return False
        metrics.PACKET_INS_SHED.labels(dpid, STALE).inc()
        if due := self.stale.shed(dpid, time.monotonic()):
            log.warning(
                "dpid %s: shed %d packet-ins that waited more than %s s (%.1f s): the controller"
                ' is behind a flood (xmpp_ofc_packet_ins_shed_total{napp="%s"})',
                dpid,
                due,
                settings.PACKET_IN_MAX_AGE_S,
                age,
                STALE,
            )
        return True

    def _admit(self, dpid: str, module: str) -> bool:
        """Within ``module``'s packet-in budget on ``dpid``; shed ones are counted and logged."""
        admission = self.budgets.admit(dpid, module, time.monotonic())
        if admission.admitted:
            return True
        metrics.PACKET_INS_SHED.labels(dpid, f"xmpp_ofc/{module}").inc()
        if admission.log_shed:
            log.warning(
                "dpid %s: shed %d %s packet-ins over its budget (%s/s, burst %s): "
                "capture flood? (xmpp_ofc_packet_ins_shed_total)",
                dpid,
                admission.log_shed,
                module,
                settings.CAPTURE_PACKET_IN_RATE,
                settings.CAPTURE_PACKET_IN_BURST,
            )
        return False

    @listen_on_loop(f"{OF_IN}.ofpt_flow_removed")
    def on_flow_removed(self, event: KytosEvent) -> None:
        dpid = _dpid_of(event.source)
        message = event.message
        if dpid is None:
            return
        module = self.router.route(dpid, MessageType.FLOW_REMOVED, pyof_decode.cookie_of(message))
        if module is not None:
            self._notify(
                module, MessageType.FLOW_REMOVED, dpid, pyof_decode.flow_removed(dpid, message)
            )

    @listen_on_loop(f"{OF_IN}.ofpt_port_status")
    def on_port_status(self, event: KytosEvent) -> None:
        """Port status has no cookie: every subscribed, enabled module hears it."""
        dpid = _dpid_of(event.source)
        if dpid is None:
            return
        subscribers = self.router.subscribers(dpid, MessageType.PORT_STATUS)
        if subscribers:
            status = pyof_decode.port_status(dpid, event.message)
            for module in subscribers:
                self._notify(module, MessageType.PORT_STATUS, dpid, status)

    @listen_to("kytos/of_core.multipart_reply.received")
    def on_multipart_reply(self, event: KytosEvent) -> None:
        """Split a flow-stats reply (any requester's) among the owners of its entries.

        On a handler thread: a reply can hold tens of thousands of entries.  The
        routed content carries the reply's ``xid`` so a module can tell the replies
        to its own cookie-filtered polls from of_core's periodic full poll.
        """
        if int(event.content["multipart_type"]) != OFPMP_FLOW:
            return
        dpid = event.content["switch"].dpid
        entries = pyof_decode.flow_stats_entries(dpid, event.content["body"])
        for module, owned in self.router.route_flow_stats(dpid, entries).items():
            self.controller.buffers.app.put(
                KytosEvent(
                    name=module_event_name(module, MessageType.FLOW_STATS),
                    content={
                        "dpid": dpid,
                        "message": FlowStatsReply(dpid, owned),
                        "xid": int(event.content["xid"]),
                    },
                )
            )

    # --- counters ------------------------------------------------------------------------

    @listen_on_loop(r"kytos/of_core\.v0x04\.messages\.in\..+")
    def count_message_in(self, event: KytosEvent) -> None:
        if settings.COUNT_MESSAGES:
            dpid = _dpid_of(event.source) or UNIDENTIFIED
            msg_type = event.name.rsplit(".", 1)[1]
            self.router.counters.count(dpid, Direction.IN, msg_type)
            metrics.count_of_message(dpid, Direction.IN, msg_type)

    @listen_on_loop(r".+\.messages\.out\..+")
    def count_message_out(self, event: KytosEvent) -> None:
        """Every NApp's sent message (Kytos notifies msg_out listeners after the send).

        A batch (flow_manager's FlowMods of one event, written in one send) counts
        as the messages it holds (``PackedMessage.count``).
        """
        if settings.COUNT_MESSAGES:
            dpid = _dpid_of(event.destination) or UNIDENTIFIED
            msg_type = event.name.rsplit(".", 1)[1]
            amount = getattr(event.content.get("message"), "count", 1)
            amount = amount if isinstance(amount, int) and amount > 0 else 1
            self.router.counters.count(dpid, Direction.OUT, msg_type, amount)
            metrics.count_of_message(dpid, Direction.OUT, msg_type, amount)

    # --- REST ------------------------------------------------------------------------------

    def _known(self, dpid: str) -> bool:
        return dpid in self.controller.switches or dpid in self.router.config.known_switches()

    def _switch_view(self, dpid: str, counters: dict[str, Any]) -> dict[str, Any]:
        return {
            "dpid": dpid,
            "connected": self.router.is_connected(dpid),
            "modules": self.router.config.describe(dpid),
            "messages": counters.get(dpid, {"in": {}, "out": {}}),
            "unrouted": self.router.unrouted_counts(dpid),
        }

    @rest("v1/switches", methods=["GET"])
    def list_switches(self):
        """Every switch the controller or the dispatcher knows, with modules and counters."""
        counters = self.router.counters.snapshot()
        dpids = set(self.controller.switches) | set(self.router.config.known_switches())
        return jsonify(
            {"switches": {dpid: self._switch_view(dpid, counters) for dpid in sorted(dpids)}}
        )

    @rest("v1/switches/<dpid>", methods=["GET"])
    def get_switch(self, dpid: str):
        if not self._known(dpid):
            return jsonify({"response": f"switch {dpid} not found"}), 404
        return jsonify(self._switch_view(dpid, self.router.counters.snapshot()))

    @rest("v1/switches/<dpid>/modules/<module>", methods=["PATCH"])
    def patch_module(self, dpid: str, module: str):
        """Enable or disable one module on one switch, and/or change its subscriptions.

        Everything is validated before anything changes.  Disabling deletes the
        module's flows on the switch; enabling makes the module restore them.
        """
        try:
            if not self._known(dpid):
                raise RequestError(404, f"switch {dpid} not found")
            try:
                self.router.config.spec(module)
            except UnknownModuleError as error:
                raise RequestError(404, str(error)) from None
            body = json_object(read_body(request), request.mimetype, PATCH_KEYS)
            enabled = require_bool(body, "enabled") if "enabled" in body else None
            subscriptions = None
            if "subscriptions" in body:
                subscriptions = _parse_subscriptions(body["subscriptions"])
        except RequestError as error:
            return jsonify({"response": error.message}), error.status
        changed = False
        if subscriptions is not None:
            changed = subscriptions != self.router.config.subscriptions(dpid, module)
            self.router.config.set_subscriptions(dpid, module, subscriptions)
        if enabled is not None:
            change = (self.router.enable if enabled else self.router.disable)(dpid, module)
            changed = changed or change.changed
            self._run(change.steps)
            if change.changed:
                log.info(
                    "dispatcher: %s %s on %s", module, "enabled" if enabled else "disabled", dpid
                )
        return jsonify(
            {
                "dpid": dpid,
                "module": module,
                "changed": changed,
                **self.router.config.describe(dpid)[module],
            }
        )

    # --- metrics and dashboard -------------------------------------------------------------------

    @rest("v1/metrics", methods=["GET"])
    def get_metrics(self):
        """Every NApp's metrics in the Prometheus text format (0.0.4)."""
        return Response(generate_latest(REGISTRY), content_type=CONTENT_TYPE_PLAIN_0_0_4)

    @rest("v1/messages/history", methods=["GET"])
    def get_message_history(self):
        """OpenFlow messages in and out per interval (all switches), oldest first."""
        return jsonify(self.history.to_json())

    @rest("v1/dashboard/", methods=["GET"])
    def get_dashboard(self):
        """The web dashboard (static, no CDN: it works offline)."""
        return self._dashboard_file("index.html")

    @rest("v1/dashboard/<name>", methods=["GET"])
    def get_dashboard_file(self, name: str):
        """One of the dashboard's files (only those in ``DASHBOARD_FILES``)."""
        return self._dashboard_file(name)

    @staticmethod
    def _dashboard_file(name: str):
        content_type = DASHBOARD_FILES.get(name)
        if content_type is None:
            return jsonify({"response": f"dashboard has no file {name!r}"}), 404
        body = (DASHBOARD_DIR / name).read_bytes()
        response = Response(body, content_type=content_type)
        response.headers["Cache-Control"] = "no-cache"
        return response


def _parse_subscriptions(value: Any) -> frozenset[MessageType]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RequestError(400, "subscriptions: expected a list of message types")
    known = [str(kind) for kind in MessageType]
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise RequestError(400, f"subscriptions: unknown type(s) {unknown}; known: {known}")
    return frozenset(MessageType(item) for item in value)
