"""Kytos shell of xmpp_ofc/l2_switch: the dispatcher's routed events in, commands out.

The decisions are :class:`.learning.LearningSwitch`'s; this file feeds it the
messages the dispatcher routes to ``l2_switch`` (packet-ins of our table-1 flows,
port status, switch down, RESTORE/STOP), sends what it returns (flows via
flow_manager's events, packet-outs straight to the switch), ages the table on a
timer and serves the MAC table over REST.  The scaffolding shared with the other
module NApps (active switches, lock, sender, flow errors) is
:class:`xmpp_ofc.module_shell.ModuleShell`.

The routed-event listeners run inline on the event loop (ordered, no thread per
packet).  The timer and REST run on their own threads, so every use of the
learning table, and the send of what it returned, happens under one short lock:
commands leave in the order they were decided.

Metrics: the learned MACs and learning bans are read from the table when
Prometheus scrapes (:data:`xmpp_ofc.metrics.L2_SWITCH`); the packet-in handling
time is observed per packet-in.
"""

from __future__ import annotations

import time

from flask import jsonify
from kytos.core import KytosEvent, KytosNApp, log, rest

from napps.xmpp_ofc.l2_switch import settings
from napps.xmpp_ofc.l2_switch.learning import LearningSettings, LearningSwitch
from xmpp_ofc import metrics
from xmpp_ofc.commands import AnyCommand
from xmpp_ofc.cookies import Owner
from xmpp_ofc.flow_errors import FlowError
from xmpp_ofc.messages import Control, MessageType
from xmpp_ofc.module_shell import ModuleShell, listen_routed

MODULE = "l2_switch"


def learning_settings() -> LearningSettings:
    """The validated tunables from settings.py (and their environment overrides)."""
    return LearningSettings(
        idle_timeout=settings.IDLE_TIMEOUT,
        hard_timeout=settings.HARD_TIMEOUT,
        mac_aging=settings.MAC_AGING,
        max_macs_per_switch=settings.MAX_MACS_PER_SWITCH,
        max_macs_per_port=settings.MAX_MACS_PER_PORT,
        priority=settings.FLOW_PRIORITY,
    )


class Main(ModuleShell, KytosNApp):
    """The xmpp_ofc/l2_switch NApp."""

    MODULE = MODULE
    OWNER = Owner.L2_SWITCH

    def setup(self) -> None:
        self.learning = LearningSwitch(learning_settings())
        self.start_shell()
        metrics.L2_SWITCH.bind(self.metrics_snapshot)
        self.execute_as_loop(settings.AGING_INTERVAL)

    def execute(self) -> None:
        """Age out MAC entries (the switch ages the flows by their own timeouts)."""
        self.decide(lambda: self.learning.expire(time.monotonic()))

    def shutdown(self) -> None:
        metrics.L2_SWITCH.unbind()
        log.info("xmpp_ofc/l2_switch stopped")

    def metrics_snapshot(self) -> metrics.Samples:
        """Learned MACs and bans of the switches l2_switch runs on (at scrape time)."""
        with self._lock:
            stats = {dpid: self.learning.stats(dpid) for dpid in sorted(self._active)}
        return metrics.l2_switch_samples(stats)

    # --- routed events (inline on the event loop) ----------------------------------------

    @listen_routed(MODULE, Control.RESTORE)
    def on_restore(self, event: KytosEvent) -> None:
        """Start afresh on a switch: empty table, table-1 miss flow."""
        dpid = event.content["dpid"]
        self.activate(dpid, lambda: self.learning.restore(dpid))
        log.info("l2_switch: active on %s", dpid)

    @listen_routed(MODULE, Control.STOP, MessageType.SWITCH_DOWN)
    def on_stop(self, event: KytosEvent) -> None:
        """Disabled on the switch, or the switch is gone: forget it.

        Its flows are the dispatcher's to delete (disable) or gone with the switch.
        """
        dpid = event.content["dpid"]
        self.deactivate(dpid, lambda: self.learning.forget_switch(dpid))
        self.forget_packet_in_timing(dpid)

    @listen_routed(MODULE, MessageType.PACKET_IN)
    def on_packet_in(self, event: KytosEvent) -> None:
        packet_in = event.content["message"]
        self.decide_packet_in(
            packet_in.dpid, lambda: self.learning.handle_packet_in(packet_in, time.monotonic())
        )

    @listen_routed(MODULE, MessageType.PORT_STATUS)
    def on_port_status(self, event: KytosEvent) -> None:
        status = event.content["message"]
        self.decide_if_active(status.dpid, lambda: self.learning.handle_port_status(status))

    def own_flow_error(self, error: FlowError) -> list[AnyCommand]:
        """A switch refused one of our flows (table full...): logged and counted."""
        self.learning.flow_refused(error)
        return []

    # --- REST ------------------------------------------------------------------------------

    def _table_view(self, dpid: str, now: float) -> dict[str, object]:
        stats = self.learning.stats(dpid)
        return {
            "dpid": dpid,
            "entries": self.learning.mac_table(dpid, now),
            "stats": {
                "learned": stats.learned,
                "refused": stats.refused,
                "refused_per_port": {str(port): n for port, n in stats.refused_per_port.items()},
                "moves": stats.moves,
                "refused_flows": stats.refused_flows,
            },
        }

    @rest("v1/mac_table", methods=["GET"])
    def list_mac_tables(self):
        """The MAC table of every switch l2_switch runs on."""
        now = time.monotonic()
        with self._lock:
            tables = {dpid: self._table_view(dpid, now) for dpid in sorted(self._active)}
        return jsonify({"switches": tables})

    @rest("v1/mac_table/<dpid>", methods=["GET"])
    def get_mac_table(self, dpid: str):
        """One switch's learned MACs (``mac``, ``port``, ``age`` in s) and counters."""
        now = time.monotonic()
        with self._lock:
            if dpid not in self._active:
                return self._not_active(dpid)
            return jsonify(self._table_view(dpid, now))

    @rest("v1/mac_table/<dpid>", methods=["DELETE"])
    def flush_mac_table(self, dpid: str):
        """Forget a switch's MACs and delete its forwarding flows (the miss flow stays)."""
        with self._lock:
            if dpid not in self._active:
                return self._not_active(dpid)
            flushed = len(self.learning.mac_table(dpid, time.monotonic()))
            self.sender.send(self.learning.flush(dpid))
        log.info("l2_switch: flushed %d MAC(s) of %s", flushed, dpid)
        return jsonify({"dpid": dpid, "flushed": flushed})

    @staticmethod
    def _not_active(dpid: str):
        message = (
            f"l2_switch is not running on switch {dpid} "
            "(unknown, disconnected, or the module is disabled there)"
        )
        return jsonify({"response": message}), 404
