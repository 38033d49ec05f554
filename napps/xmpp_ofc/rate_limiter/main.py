"""Kytos shell of xmpp_ofc/rate_limiter: routed events and timers in, commands out, REST.

The decisions are :class:`.limiter.RateLimiter`'s; this file feeds it what the
dispatcher routes to ``rate_limiter`` (capture packet-ins, flow-stats replies,
flow-removed, switch down, RESTORE/STOP) and the switches' meter features, sends
what it returns, polls on a timer and serves the REST API (README.md, openapi.yml).
The scaffolding shared with the other module NApps (active switches, lock, sender,
flow errors) is :class:`xmpp_ofc.module_shell.ModuleShell`.

Threads:

* packet-in, flow-removed, RESTORE/STOP, switch-down and the meter-features reply
  run inline on the event loop (``listen_on_loop``): ordered, no thread per packet;
* flow-stats replies, which can hold tens of thousands of clients, are evaluated
  on a Kytos handler thread (``listen_to``), so the loop is never held by a
  parse; the limiter's lock serialises them with everything else;
* the poll/sweep timer and REST run on their own threads.

Every "ask the limiter, send what it returned" happens under one short lock, so
commands leave in the order they were decided, whichever thread decided them.
Sending only puts events on buffers (it never blocks). Meter mods keep their
place among the flow commands through the app buffer (see ``kytos_commands``);
``forward_meter_mod`` is the on-loop listener that moves them to msg_out.

Metrics: monitored/blocked clients, block/unblock totals and per-client rates are
read from the limiter when Prometheus scrapes (:data:`xmpp_ofc.metrics.RATE_LIMITER`);
packet-in handling time and the evaluation time of each poll reply are observed as
they happen.

Flow-stats replies are used only when they answer one of our own cookie-filtered
polls (matched by xid): of_core's periodic full poll arrives at other times, and
a window shorter than the poll interval would make a login burst look like a
flood (see ``settings_model``).
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import jsonify, request
from kytos.core import KytosEvent, KytosNApp, log, rest
from kytos.core.helpers import listen_to

from napps.xmpp_ofc.rate_limiter import listing, settings
from napps.xmpp_ofc.rate_limiter.capture_bounds import CaptureBounds
from napps.xmpp_ofc.rate_limiter.limiter import (
    Instant,
    InvalidRequestError,
    LimiterError,
    MeterSupport,
    NotBlockedError,
    RateLimiter,
    UnknownSwitchError,
    WhitelistedError,
)
from napps.xmpp_ofc.rate_limiter.settings_model import (
    FORCE,
    RETIRED_SETTINGS,
    SETTING_NAMES,
    LimiterSettings,
    SettingsError,
    too_wide,
)
from napps.xmpp_ofc.rate_limiter.store import default_path, open_store
from xmpp_ofc import metrics
from xmpp_ofc.ascii_int import parse_decimal
from xmpp_ofc.commands import AnyCommand
from xmpp_ofc.cookies import Owner
from xmpp_ofc.flow_errors import FlowError
from xmpp_ofc.kytos_events import listen_on_loop
from xmpp_ofc.messages import Control, MessageType
from xmpp_ofc.module_shell import ModuleShell, listen_routed, routed_pattern
from xmpp_ofc.openflow.validation import as_int
from xmpp_ofc.rest_body import RequestError, json_object, read_body

MODULE = "rate_limiter"
OFPMP_METER_FEATURES = 11
#: ofp_meter_band_type DROP, as a bit of meter features' ``band_types``.
OFPMBT_DROP_BIT = 1 << 1
#: ofp_meter_flags PKTPS, as a bit of meter features' ``capabilities``.
OFPMF_PKTPS = 1 << 1
#: Unanswered polls remembered per switch (a reply may come after the next poll).
POLLS_REMEMBERED = 4
BLOCK_KEYS = ("dpid", "ip", "port", "duration", "reason")
EVENTS = listing.events_spec(settings.HISTORY_LIMIT)


def now() -> Instant:
    """The current time on both clocks (tests replace this)."""
    return Instant.now()


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _is_net(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False  # LimiterSettings reports it, naming the setting
    return True


def startup_settings() -> LimiterSettings:
    """The validated start-up defaults from settings.py (and their environment overrides)."""
    try:
        ports = [int(port) for port in _csv(settings.XMPP_PORTS)]
    except ValueError:
        raise SettingsError(
            "xmpp_ports", f"{settings.ENV_PREFIX}XMPP_PORTS={settings.XMPP_PORTS!r}"
        ) from None
    whitelist = tuple(_csv(settings.WHITELIST))
    wide = too_wide(str(ipaddress.ip_network(e, strict=False)) for e in whitelist if _is_net(e))
    if wide is not None:
        log.warning(
            "rate_limiter: %sWHITELIST has %s, wider than a PATCH accepts without force: "
            "every address in it is never blocked",
            settings.ENV_PREFIX,
            wide,
        )
    return LimiterSettings(
        payload_rate_bps=settings.PAYLOAD_RATE_BPS,
        payload_burst_bytes=settings.PAYLOAD_BURST_BYTES,
        message_rate_per_s=settings.MESSAGE_RATE_PER_S,
        message_burst=settings.MESSAGE_BURST,
        sustain_s=settings.SUSTAIN,
        poll_interval_s=settings.POLL_INTERVAL,
        block_duration_s=settings.BLOCK_DURATION,
        block_max_s=settings.BLOCK_MAX,
        offence_window_s=settings.OFFENCE_WINDOW,
        address_block_after=settings.ADDRESS_BLOCK_AFTER,
        monitor_idle_timeout_s=settings.MONITOR_IDLE_TIMEOUT,
        xmpp_ports=tuple(ports),
        whitelist=whitelist,
        protected_addresses=tuple(_csv(settings.PROTECTED_ADDRESSES)),
        mode=settings.MODE,
        per_ip_aggregate=settings.PER_IP_AGGREGATE,
        aggregate_messages_per_s=settings.AGGREGATE_MESSAGES_PER_S,
        meter_rate_pps=settings.METER_RATE_PPS,
        meter_burst_packets=settings.METER_BURST_PACKETS,
    )


def capture_bounds() -> CaptureBounds:
    """The capture path's bounds from settings.py (README "Capture-path bounds")."""
    try:
        return CaptureBounds(
            meter_rate_pps=settings.CAPTURE_METER_RATE_PPS,
            meter_burst=settings.CAPTURE_METER_BURST,
            max_per_switch=settings.MAX_MONITORED_PER_SWITCH,
            max_per_address=settings.MAX_MONITORED_PER_ADDRESS,
        )
    except ValueError as error:
        raise SettingsError("capture", str(error)) from None


def meter_support_of(features: Any) -> MeterSupport:
    """What a pyof OFPMP_METER_FEATURES body says about per-client drop meters."""
    return MeterSupport(
        max_meter=as_int(features.max_meter),
        band_drop=bool(as_int(features.band_types) & OFPMBT_DROP_BIT),
        pps=bool(as_int(features.capabilities) & OFPMF_PKTPS),
    )


def _error(status: int, message: str):
    return jsonify({"response": message}), status


class Main(ModuleShell, KytosNApp):
    """The xmpp_ofc/rate_limiter NApp."""

    MODULE = MODULE
    OWNER = Owner.RATE_LIMITER

    def setup(self) -> None:
        path = Path(settings.DB_PATH) if settings.DB_PATH else default_path()
        self.store = open_store(settings.STORE_URL, path, history_limit=settings.HISTORY_LIMIT)
        self.limiter = RateLimiter(
            startup_settings(),
            store=self.store,
            history_limit=settings.HISTORY_LIMIT,
            capture=capture_bounds(),
            poll_cpu_budget=settings.POLL_CPU_BUDGET,
        )
        self.limiter.load_persisted(now())
        self.start_shell()
        # xids of our unanswered flow-stats polls, per switch.
        self._polls: dict[str, deque[int]] = {}
        self._next_sweep = time.monotonic() + settings.SWEEP_INTERVAL
        metrics.RATE_LIMITER.bind(self.metrics_snapshot)
        log.info("xmpp_ofc/rate_limiter: state in %s", "PostgreSQL" if settings.STORE_URL else path)
        self.execute_as_loop(settings.TIMER_INTERVAL)

    def execute(self) -> None:
        """Poll the switches that are due; now and then end what was missed."""
        instant = now()
        with self._lock:
            for poll in self.limiter.poll_requests(instant):
                xids = self.sender.send([poll])
                if xids:
                    self._polls.setdefault(poll.dpid, deque(maxlen=POLLS_REMEMBERED)).extend(xids)
            if instant.mono >= self._next_sweep:
                self._next_sweep = instant.mono + settings.SWEEP_INTERVAL
                self.sender.send(self.limiter.tick(instant))

    def shutdown(self) -> None:
        metrics.RATE_LIMITER.unbind()
        self.store.close()
        log.info("xmpp_ofc/rate_limiter stopped")

    def metrics_snapshot(self) -> metrics.Samples:
        """Counts, totals and the fastest clients' rates (at scrape time)."""
        return metrics.rate_limiter_samples(self.limiter.status(), self.limiter.monitored())

    # --- routed events -------------------------------------------------------------------

    @listen_routed(MODULE, Control.RESTORE)
    def on_restore(self, event: KytosEvent) -> None:
        """Install capture flows, monitors and blocks (remaining time); ask for meters."""
        dpid = event.content["dpid"]

        def restore() -> list[AnyCommand]:
            self._polls.pop(dpid, None)
            return self.limiter.restore(dpid, now())

        self.activate(dpid, restore)
        self.sender.request_meter_features(dpid)
        log.info("rate_limiter: active on %s", dpid)

    @listen_routed(MODULE, Control.STOP)
    def on_stop(self, event: KytosEvent) -> None:
        """Disabled on the switch: forget it (the dispatcher deletes our flows)."""
        dpid = event.content["dpid"]
        self._leave(dpid, lambda: self.limiter.stop(dpid, now()))
        self.forget_packet_in_timing(dpid)
        metrics.POLL_SECS.remove_by_labels({metrics.DP_ID: dpid})

    @listen_routed(MODULE, MessageType.SWITCH_DOWN)
    def on_switch_down(self, event: KytosEvent) -> None:
        """Gone: keep clients and blocks for its return; RESTORE brings it back."""
        dpid = event.content["dpid"]
        self._leave(dpid, lambda: self.limiter.switch_down(dpid))

    def _leave(self, dpid: str, forget_in_limiter: Callable[[], object]) -> None:
        """Stop running on ``dpid``; replies to our unanswered polls of it are stale now."""

        def forget() -> None:
            self._polls.pop(dpid, None)
            forget_in_limiter()

        self.deactivate(dpid, forget)

    @listen_routed(MODULE, MessageType.PACKET_IN)
    def on_packet_in(self, event: KytosEvent) -> None:
        """A capture packet-in: a new client connection to monitor."""
        packet_in = event.content["message"]
        self.decide_packet_in(
            packet_in.dpid, lambda: self.limiter.handle_packet_in(packet_in, now())
        )

    @listen_routed(MODULE, MessageType.FLOW_REMOVED)
    def on_flow_removed(self, event: KytosEvent) -> None:
        """A monitor idled out or a block expired."""
        removed = event.content["message"]
        self.decide_if_active(
            removed.dpid, lambda: self.limiter.handle_flow_removed(removed, now())
        )

    def own_flow_error(self, error: FlowError) -> list[AnyCommand]:
        """A switch refused one of our flows (table full...): roll back what it means."""
        return self.limiter.handle_flow_error(error, now())

    @listen_to(routed_pattern(MODULE, MessageType.FLOW_STATS))
    def on_flow_stats(self, event: KytosEvent) -> None:
        """On a handler thread: a reply may hold tens of thousands of clients."""
        self.evaluate_flow_stats(event)

    def evaluate_flow_stats(self, event: KytosEvent) -> None:
        """Rates from the reply to one of our polls; blocks for the floods among them."""
        reply = event.content["message"]
        xid = event.content.get("xid")
        with self._lock:
            pending = self._polls.get(reply.dpid)
            if reply.dpid not in self._active or pending is None or xid not in pending:
                return
            pending.remove(xid)
            started = time.perf_counter()
            self.sender.send(self.limiter.handle_flow_stats(reply, now()))
            cost = time.perf_counter() - started
            self.limiter.record_poll_cost(reply.dpid, cost)
        metrics.POLL_SECS.labels(reply.dpid).observe(cost)

    @listen_on_loop("kytos/of_core.multipart_reply.received")
    def on_multipart_reply(self, event: KytosEvent) -> None:
        """The switch's meter features (asked at RESTORE); other replies are not ours."""
        if int(event.content["multipart_type"]) != OFPMP_METER_FEATURES:
            return
        dpid = event.content["switch"].dpid
        body = event.content["body"]
        if not body:
            return
        support = meter_support_of(body[0])
        log.info("rate_limiter: %s meter features %s", dpid, support)
        self.decide_if_active(dpid, lambda: self.limiter.set_meter_support(dpid, support, now()))

    @listen_on_loop(re.escape(f"xmpp_ofc/{MODULE}.internal.ordered_msg_out"))
    def forward_meter_mod(self, event: KytosEvent) -> None:
        """A meter mod whose turn came on the app buffer goes to the switch now."""
        self.sender.forward_ordered(event)

    # --- REST ----------------------------------------------------------------------------

    @rest("v1/monitored", methods=["GET"])
    def list_monitored(self):
        """A page of monitored clients with their last rates (``listing``: limit, sort, filters)."""
        return self._page(listing.MONITORED, self.limiter.monitored)

    @rest("v1/blocked", methods=["GET"])
    def list_blocked(self):
        """A page of active blocks with since, expires, remaining seconds and reason."""

        def blocks(dpid: str | None) -> list[dict[str, Any]]:
            wall = now().wall
            found = self.limiter.blocked(dpid)
            for block in found:
                block["remaining"] = max(0.0, round(block["expires"] - wall, 3))
            return found

        return self._page(listing.BLOCKED, blocks)

    @staticmethod
    def _page(spec: listing.ListSpec, records: Callable[[str | None], list[dict[str, Any]]]):
        """``records(dpid)`` cut to the page the query string asks for (400, 404 refused)."""
        try:
            query = listing.parse_query(request.args.to_dict(flat=False), spec)
            found = records(query.dpid)
        except listing.ListingError as error:
            return _error(400, str(error))
        except UnknownSwitchError as error:
            return _error(404, str(error))
        return jsonify(listing.page(found, query, spec).to_json(spec.name))

    @rest("v1/blocked", methods=["POST"])
    def block(self):
        """Block a client (``port``) or a whole address (no ``port``) by hand.

        Blocking what is already blocked extends that block (200, ``"replaced": true``).
        """
        try:
            body = json_object(read_body(request), request.mimetype, BLOCK_KEYS)
            for key in ("dpid", "ip"):
                if not isinstance(body.get(key), str):
                    raise RequestError(400, f"{key}: required, a string")
            reason = body.get("reason", "manual")
            with self._lock:
                record, commands, replaced = self.limiter.block(
                    body["dpid"],
                    body["ip"],
                    body.get("port"),
                    duration=body.get("duration"),
                    reason=reason,
                    now=now(),
                )
                self.sender.send(commands)
        except RequestError as error:
            return _error(error.status, error.message)
        except LimiterError as error:
            return _limiter_error(error)
        # 201 for a new block; 200 when an active block was extended (same block, new expiry).
        return jsonify({"block": record.to_json(), "replaced": replaced}), 200 if replaced else 201

    @rest("v1/blocked/<dpid>/<ip>", methods=["DELETE"])
    def unblock_address(self, dpid: str, ip: str):
        """Lift the block of a whole address (one blocked with no port)."""
        return self._unblock(dpid, ip, None)

    @rest("v1/blocked/<dpid>/<ip>/<port>", methods=["DELETE"])
    def unblock_client(self, dpid: str, ip: str, port: str):
        """Lift the block of one client connection (address and source port)."""
        number = parse_decimal(port)
        if number is None or not 1 <= number <= 0xFFFF:
            return _error(400, f"port: must be an integer in 1..65535, got {port!r}")
        return self._unblock(dpid, ip, number)

    def _unblock(self, dpid: str, ip: str, port: int | None):
        try:
            with self._lock:
                self.sender.send(self.limiter.unblock(dpid, ip, port, now()))
        except LimiterError as error:
            return _limiter_error(error)
        return jsonify({"dpid": dpid, "ip": ip, "port": port, "unblocked": True})

    @rest("v1/settings", methods=["GET"])
    def get_settings(self):
        """The current settings (what PATCH changes)."""
        return jsonify(self.limiter.settings.to_json())

    @rest("v1/settings", methods=["PATCH"])
    def patch_settings(self):
        """Change settings at runtime; flows on the switches follow (README.md)."""
        try:
            body = json_object(
                read_body(request), request.mimetype, (*SETTING_NAMES, *RETIRED_SETTINGS, FORCE)
            )
            force = body.pop(FORCE, False)
            if not isinstance(force, bool):
                raise RequestError(400, f"{FORCE}: must be true or false, got {force!r}")
            with self._lock:
                update, commands = self.limiter.update_settings(body, now(), force=force)
                self.sender.send(commands)
        except RequestError as error:
            return _error(error.status, error.message)
        except SettingsError as error:
            return _error(400, str(error))
        if update.changed:
            log.info("rate_limiter: settings changed: %s", sorted(update.changed))
        return jsonify({"settings": update.settings.to_json(), "changed": sorted(update.changed)})

    @rest("v1/events", methods=["GET"])
    def list_events(self):
        """A page of block, unblock and flag events, oldest first (the newest page by default)."""
        return self._page(EVENTS, lambda _dpid: self.limiter.history())

    @rest("v1/status", methods=["GET"])
    def get_status(self):
        """Per switch: connected, effective mode (and why), meter support, counts."""
        status = self.limiter.status()
        status["messages_not_sent"] = self.sender.messages_not_sent
        return jsonify(status)


def _limiter_error(error: LimiterError):
    if isinstance(error, UnknownSwitchError | NotBlockedError):
        return _error(404, str(error))
    if isinstance(error, WhitelistedError):
        return _error(409, str(error))
    if isinstance(error, InvalidRequestError):
        return _error(400, str(error))
    return _error(400, str(error))
