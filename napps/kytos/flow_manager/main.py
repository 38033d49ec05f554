"""Kytos shell of kytos/flow_manager: REST v2, install/delete events, replay.

The logic lives in plain modules: ``flow_requests`` validates what arrives,
``flow_store`` remembers what was installed, ``consistency`` compares it with the
switch and says what to restore, ``sent_flow_mods`` maps errors back to flows,
and ``xmpp_ofc.openflow`` builds the OpenFlow messages.  This
file only wires them to Kytos events, REST routes and the outgoing buffer.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from flask import jsonify, request
from werkzeug.exceptions import NotFound

from kytos.core import KytosEvent, KytosNApp, log, rest
from kytos.core.helpers import listen_to
from napps.kytos.flow_manager import delete_guard, settings
from napps.kytos.flow_manager.consistency import ConsistencyCheck, Verdict, selectors, to_check
from napps.kytos.flow_manager.flow_requests import (
    PreparedFlow,
    flow_mod_message,
    flows_from_event,
    message_xid,
    prepare_flows,
)
from napps.kytos.flow_manager.flow_store import FlowStore, FlowStoreError
from napps.kytos.flow_manager.sent_flow_mods import RecentFlowMods, SentFlowMod
from xmpp_ofc import metrics
from xmpp_ofc.commands import RequestFlowStats
from xmpp_ofc.kytos_commands import flow_stats_request
from xmpp_ofc.kytos_events import listen_on_loop
from xmpp_ofc.napp_layout import kytos_base_dir
from xmpp_ofc.openflow.errors import error_names
from xmpp_ofc.openflow.flow_removed_codec import FlowRemovedRecord
from xmpp_ofc.openflow.match import match_to_dict
from xmpp_ofc.openflow.packed import PackedMessage
from xmpp_ofc.openflow.validation import as_int
from xmpp_ofc.rest_body import RequestError, parse_json, read_body

NAPP_EVENT_BY_COMMAND = {
    "add": "kytos/flow_manager.flow.added",
    "delete": "kytos/flow_manager.flow.removed",
    "delete_strict": "kytos/flow_manager.flow.removed",
}
SUCCESS = {"response": "FlowMod Messages Sent"}
#: xids of our consistency-check requests (CommandSender's start at 0x80000000).
FIRST_CHECK_XID = 0x70000000
OFPMP_FLOW = 1
OFPRR_DELETE = 2


class Main(KytosNApp):
    """The kytos/flow_manager NApp (OpenFlow 1.3)."""

    def setup(self) -> None:
        self._store = open_store(store_path())
        self._sent = RecentFlowMods(settings.FLOW_MODS_SENT_MAX_SIZE)
        # One lock around "build, record, queue" keeps the msg_out order and the
        # store in step when REST, events and replays race on their threads.
        self._send_lock = threading.Lock()
        interval = settings.CONSISTENCY_CHECK_INTERVAL
        self._consistency = ConsistencyCheck(round_timeout_s=max(5.0, 2 * interval))
        self._next_check = time.monotonic() + interval
        self._check_now: set[str] = set()
        self._check_xid = FIRST_CHECK_XID
        self.execute_as_loop(settings.STORE_FLUSH_INTERVAL)

    def execute(self) -> None:
        """Write the store file if flows changed; start consistency rounds when due."""
        self._flush_store()
        self._start_consistency_rounds(time.monotonic())

    def shutdown(self) -> None:
        self._flush_store()

    def _flush_store(self) -> None:
        try:
            self._store.flush()
        except OSError as error:
            log.error("flow_manager: cannot write the flow store: %s", error)

    # --- REST -----------------------------------------------------------------

    @rest("v2/flows", methods=["GET"])
    @rest("v2/flows/<dpid>", methods=["GET"])
    def list_flows(self, dpid: str | None = None):
        """Flows of the last flow-stats poll, per switch (upstream shape)."""
        switches = self.controller.switches
        if dpid is not None and dpid not in switches:
            # Upstream's shape, kept on purpose: {"code": 404, "name", "description"}.
            raise NotFound("Switch not found")
        selected = [switches[dpid]] if dpid is not None else list(switches.values())
        return jsonify(
            {
                switch.dpid: {"flows": [flow.as_dict() for flow in getattr(switch, "flows", [])]}
                for switch in selected
            }
        )

    @rest("v2/flows", methods=["POST"])
    @rest("v2/flows/<dpid>", methods=["POST"])
    def add_flows(self, dpid: str | None = None):
        """Install flows on one switch or on every enabled, connected switch."""
        return self._rest_flow_mods("add", dpid)

    @rest("v2/flows", methods=["DELETE"])
    @rest("v2/flows/<dpid>", methods=["DELETE"])
    @rest("v2/delete", methods=["POST"])
    @rest("v2/delete/<dpid>", methods=["POST"])
    def delete_flows(self, dpid: str | None = None):
        """Non-strict delete (POST v2/delete is upstream's deprecated spelling)."""
        return self._rest_flow_mods("delete", dpid)

    def _rest_flow_mods(self, command: str, dpid: str | None):
        force = False
        try:
            body = parse_json(read_body(request), request.mimetype)
            if command == "delete":
                body, force = delete_guard.parse_force(body)
            flows = prepare_flows(body, command)
            if command == "delete" and not force:
                refusal = delete_guard.refusal([flow.canonical for flow in flows])
                if refusal is not None:
                    raise RequestError(409, refusal)
            switches = self._target_switches(dpid, command)
        except RequestError as error:
            return jsonify({"response": error.message}), error.status
        if force and delete_guard.refusal([flow.canonical for flow in flows]):
            log.warning(
                "flow_manager: forced REST delete of the controller's own flows on %s: %s",
                [switch.dpid for switch in switches],
                [flow.canonical for flow in flows],
            )
        self._send(switches, command, flows)
        return jsonify({**SUCCESS, "switches": [switch.dpid for switch in switches]})

    def _target_switches(self, dpid: str | None, command: str) -> list[Any]:
        switches = self.controller.switches
        if dpid is None:
            return [
                switch
                for switch in list(switches.values())
                if switch.is_enabled() and switch.is_connected()
            ]
        switch = switches.get(dpid)
        if switch is None:
            raise RequestError(404, f"dpid not found: {dpid}")
        if command == "add" and not switch.is_enabled():
            raise RequestError(404, f"switch {dpid} is disabled.")
        if not switch.is_connected():
            raise RequestError(409, f"switch {dpid} is not connected; nothing was sent")
        return [switch]

    # --- events ------------------------------------------------------------------

    @listen_on_loop("kytos.flow_manager.flows.(install|delete)")
    def on_flows_event(self, event: KytosEvent) -> None:
        """Install/delete flows for another NApp.

        The pattern is upstream's: its dots are regex wildcards, so both
        ``kytos.flow_manager.flows.install`` and ``kytos/flow_manager.flows.install``
        arrive here once; the command comes from the name's last word.

        Runs on the event loop, not on a thread per event: a NApp that emits
        "delete my flows" then "install these" must see the FlowMods leave in
        that order (a thread per event could swap them).  Validation and
        packing are quick; the store is written by the periodic flush.
        """
        command = "add" if event.name.endswith("install") else "delete"
        try:
            dpid, flows = flows_from_event(event.content, command)
            switch = self.controller.switches.get(dpid)
            if switch is None:
                raise RequestError(404, f"dpid not found: {dpid}")
            if not switch.is_connected():
                raise RequestError(409, f"switch {dpid} is not connected")
        except RequestError as error:
            log.error("flow_manager: %s refused, nothing sent: %s", event.name, error.message)
            return
        self._send([switch], command, flows)

    @listen_to("kytos/of_core.handshake.completed")
    def on_handshake_completed(self, event: KytosEvent) -> None:
        """Re-send the flows flow_manager installed on this switch before."""
        if not settings.REPLAY_ON_HANDSHAKE:
            return
        switch = event.content["switch"]
        with self._send_lock:
            flows = self._store.flows_to_replay(switch.dpid)
            for flow in flows:
                self._queue_flow_mod(switch, "add", flow, flow_mod_message(flow, "add"))
        if flows:
            log.info("flow_manager: replayed %d flow(s) on %s", len(flows), switch.dpid)

    @listen_to("kytos/of_core.v0x04.messages.in.ofpt_error")
    def on_error(self, event: KytosEvent) -> None:
        """Map an OFPT_ERROR to the FlowMod that caused it, log and announce it."""
        message = event.content["message"]
        sent = self._sent.pop(as_int(message.header.xid))
        if sent is None:
            return  # not ours
        error_type = as_int(getattr(message, "error_type", 0))
        error_code = as_int(getattr(message, "code", 0))
        type_name, code_name = error_names(error_type, error_code)
        log.error(
            "flow_manager: switch %s refused %s of flow %s: %s %s",
            sent.dpid,
            sent.command,
            sent.flow,
            type_name,
            code_name,
        )
        if sent.command == "add":
            flow = sent.flow
            self._store.forget(
                sent.dpid, flow["table_id"], flow["priority"], flow["match"], flow["cookie"]
            )
        source = event.content.get("source")
        switch = getattr(source, "switch", None) or self.controller.switches.get(sent.dpid)
        self._emit(
            "kytos/flow_manager.flow.error",
            datapath=switch,
            flow=sent.flow,
            error_command=sent.command,
            error_type=error_type,
            error_code=error_code,
            error_type_name=type_name,
            error_code_name=code_name,
        )

    @listen_to("kytos/of_core.v0x04.messages.in.ofpt_flow_removed")
    def on_flow_removed(self, event: KytosEvent) -> None:
        """A flow that timed out is not replayed; one of ours deleted elsewhere is restored.

        Our own deletes leave the store before they are sent, so a DELETE removal
        of a flow still stored was someone else's: the next consistency round on
        that switch (within a second) puts it back. Other owners' flows are forgotten.
        """
        message = event.content["message"]
        switch = getattr(event.content.get("source"), "switch", None)
        if switch is None:
            return
        record = getattr(message, "record", None)  # of_core's struct-decoded FLOW_REMOVED
        if isinstance(record, FlowRemovedRecord):
            flow = {
                "table_id": record.table_id,
                "priority": record.priority,
                "match": dict(record.match),
                "cookie": record.cookie,
            }
            reason = record.reason
        else:
            flow = {
                "table_id": as_int(message.table_id),
                "priority": as_int(message.priority),
                "match": match_to_dict(message.match),
                "cookie": as_int(message.cookie),
            }
            reason = as_int(message.reason)
        if (
            reason == OFPRR_DELETE
            and settings.CONSISTENCY_CHECK_INTERVAL > 0
            and to_check([flow])
            and self._store.holds(switch.dpid, flow)
        ):
            self._check_now.add(switch.dpid)
            return
        self._store.forget(
            switch.dpid, flow["table_id"], flow["priority"], flow["match"], flow["cookie"]
        )

    # --- consistency check -------------------------------------------------------

    def _start_consistency_rounds(self, now: float) -> None:
        """Every CONSISTENCY_CHECK_INTERVAL (and at once after a foreign delete)."""
        if settings.CONSISTENCY_CHECK_INTERVAL <= 0:
            return
        periodic = now >= self._next_check
        if periodic:
            self._next_check = now + settings.CONSISTENCY_CHECK_INTERVAL
        due, self._check_now = self._check_now, set()
        for dpid, switch in list(self.controller.switches.items()):
            if not (periodic or dpid in due):
                continue
            if not switch.is_connected():
                self._consistency.forget(dpid)
            elif not self._consistency.busy(dpid, now):
                self._start_round(switch, now)

    def _start_round(self, switch: Any, now: float) -> None:
        """Snapshot and requests under the send lock: see ``consistency``'s docstring."""
        with self._send_lock:
            expected = to_check(self._store.flows_to_replay(switch.dpid))
            xids = []
            for cookie, mask in selectors(expected):
                xid = self._next_check_xid()
                request = flow_stats_request(RequestFlowStats(switch.dpid, cookie, mask), xid)
                self.controller.buffers.msg_out.put(
                    KytosEvent(
                        name="kytos/flow_manager.messages.out.ofpt_multipart_request",
                        content={"destination": switch.connection, "message": request},
                    )
                )
                xids.append(xid)
            self._consistency.begin(switch.dpid, expected, xids, now)

    def _next_check_xid(self) -> int:
        xid = self._check_xid
        self._check_xid = xid + 1 if xid + 1 < 0x80000000 else FIRST_CHECK_XID
        return xid

    @listen_on_loop("kytos/of_core.multipart_reply.received")
    def on_multipart_reply(self, event: KytosEvent) -> None:
        """A reply to one of our consistency requests: restore what the switch lacks."""
        content = event.content
        if as_int(content.get("multipart_type", 0)) != OFPMP_FLOW:
            return
        xid = as_int(content.get("xid", 0))
        if not FIRST_CHECK_XID <= xid < 0x80000000:
            return
        switch = content["switch"]
        with self._send_lock:
            verdict = self._consistency.reply(
                switch.dpid,
                xid,
                content.get("body") or [],
                lambda flow: self._store.holds(switch.dpid, flow),
            )
            if verdict is not None:
                self._restore(switch, verdict)

    def _restore(self, switch: Any, verdict: Verdict) -> None:
        for flow in verdict.conflicts:
            log.warning(
                "flow_manager: %s holds another cookie where ours (cookie %#x, table %d,"
                " priority %d) should be; left alone",
                verdict.dpid,
                flow["cookie"],
                flow["table_id"],
                flow["priority"],
            )
        if not verdict.missing:
            return
        for flow in verdict.missing:
            self._queue_flow_mod(switch, "add", flow, flow_mod_message(flow, "add"))
        metrics.FLOWS_RESTORED.labels(verdict.dpid).inc(len(verdict.missing))
        log.warning(
            "flow_manager: consistency check: %d of %d checked flow(s) were missing on %s"
            " (deleted outside the controller); re-added them",
            len(verdict.missing),
            verdict.checked,
            verdict.dpid,
        )

    # --- sending -----------------------------------------------------------------

    def _send(self, switches: list[Any], command: str, flows: list[PreparedFlow]) -> None:
        """Queue the FlowMods of ``flows`` for every switch.

        FlowMods packed by the fast codec travel as one msg_out event per switch
        (one ``PackedMessage`` batch, so Kytos writes them in one send); a flow
        the codec does not cover is its own pyof message, in its place in the order.
        """
        with self._send_lock:
            for switch in switches:
                batch: list[PackedMessage] = []
                for flow in flows:
                    flow_mod = flow.flow_mod()
                    self._sent.remember(
                        message_xid(flow_mod),
                        SentFlowMod(switch.dpid, command, dict(flow.canonical)),
                    )
                    if isinstance(flow_mod, PackedMessage):
                        batch.append(flow_mod)
                        continue
                    self._put_flow_mods(switch, batch)
                    batch = []
                    self._put_flow_mods(switch, [flow_mod])
                self._put_flow_mods(switch, batch)
                self._store.record(switch.dpid, command, [flow.canonical for flow in flows])
                event_name = NAPP_EVENT_BY_COMMAND.get(command)
                for flow in flows:
                    self._emit(event_name, datapath=switch, flow=dict(flow.canonical))

    def _queue_flow_mod(self, switch: Any, command: str, flow: Any, flow_mod: Any) -> None:
        self._sent.remember(message_xid(flow_mod), SentFlowMod(switch.dpid, command, dict(flow)))
        self._put_flow_mods(switch, [flow_mod])

    def _put_flow_mods(self, switch: Any, flow_mods: list[Any]) -> None:
        """One msg_out event: a pyof FlowMod, or PackedMessages joined into one send."""
        if not flow_mods:
            return
        message = flow_mods[0] if len(flow_mods) == 1 else PackedMessage.join(flow_mods)
        self.controller.buffers.msg_out.put(
            KytosEvent(
                name="kytos/flow_manager.messages.out.ofpt_flow_mod",
                content={"destination": switch.connection, "message": message},
            )
        )

    def _emit(self, name: str, **content: Any) -> None:
        self.controller.buffers.app.put(KytosEvent(name=name, content=content))


def store_path() -> Path | None:
    """The store file under Kytos' base directory ($VIRTUAL_ENV, else sys.prefix)."""
    if not settings.STORE_FILE:
        return None
    return kytos_base_dir() / settings.STORE_FILE


def open_store(path: Path | None) -> FlowStore:
    """Open the store; a broken file is moved aside (kept for the operator)."""
    try:
        return FlowStore(path, keep_idle_flows=settings.KEEP_IDLE_TIMEOUT_FLOWS)
    except FlowStoreError as error:
        if path is None:  # only a file can be broken
            raise
        broken = path.with_name(f"{path.name}.broken-{int(time.time())}")
        path.rename(broken)
        log.error("flow_manager: %s; moved it to %s and started empty", error, broken)
        return FlowStore(path, keep_idle_flows=settings.KEEP_IDLE_TIMEOUT_FLOWS)
