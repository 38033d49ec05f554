"""Kytos shell of kytos/of_core (OpenFlow 1.3): wires Kytos events to the plain modules.

Everything that touches a connection's state runs inline on the event loop
(``listen_on_loop``) and in raw-buffer order: the byte stream
(``kytos/core.openflow.raw.in``), our timer tick and our in-order copy of
``connection.lost`` all travel through the raw buffer, so one connection's
bytes, timeouts and end are handled one after the other without locks.
Heavy work is left to the listeners of the events we publish, which Kytos
runs on their own threads.

Logic lives in ``stream`` (framing), ``inbound`` (bytes -> messages),
``connection_fsm`` (handshake, echo, liveness, polls), ``multipart``
(REPLY_MORE assembly), ``ports`` and ``hello``; frames of packet-ins are read by
the shared :mod:`xmpp_ofc.packet`.  See README.md for the events.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flask import jsonify
from pyof.v0x04.asynchronous.port_status import PortReason
from pyof.v0x04.common.header import Type
from pyof.v0x04.controller2switch.common import MultipartType

from kytos.core import KytosEvent, KytosNApp, log, rest
from kytos.core.connection import Connection, ConnectionState
from kytos.core.interface import Interface
from napps.kytos.of_core import settings
from napps.kytos.of_core.connection_fsm import (
    OFP_VERSION_13,
    Output,
    Phase,
    Poll,
    SwitchSession,
    Timing,
)
from napps.kytos.of_core.handshake_bound import oldest_over_limit
from napps.kytos.of_core.identity import Claim, IdentityArbiter
from napps.kytos.of_core.inbound import PacketInMessage, parse_message
from napps.kytos.of_core.multipart import CompletedReply
from napps.kytos.of_core.ports import (
    interface_attributes,
    port_description,
    port_status_events,
    value,
)
from napps.kytos.of_core.stream import MessageFramer, StreamError
from napps.kytos.of_core.v0x04.flow import Flow
from xmpp_ofc import kytos_py311, metrics
from xmpp_ofc.kytos_events import listen_on_loop
from xmpp_ofc.openflow.dpid import dpid_to_str
from xmpp_ofc.packet import ETH_TYPE_IPV6, ETH_TYPE_LLDP, parse_packet

PREFIX = "kytos/of_core"
IN_EVENT = {t.value: f"{PREFIX}.v0x04.messages.in.{t.name.lower()}" for t in Type}
OUT_EVENT = {t.value: f"{PREFIX}.v0x04.messages.out.{t.name.lower()}" for t in Type}

#: Private events on the raw buffer, so they are ordered with raw.in.
TICK_EVENT = f"{PREFIX}.internal.tick"
LOST_IN_ORDER_EVENT = f"{PREFIX}.internal.connection_lost"


@dataclass(slots=True)
class _Link:
    """What we keep per TCP connection."""

    session: SwitchSession
    framer: MessageFramer
    switch: Any = None  # set when the features reply arrives
    close_reason: str | None = None


class Main(KytosNApp):
    """OpenFlow 1.3 handshake, keepalive, multipart assembly and upstream events."""

    def setup(self) -> None:
        self._links: dict[Connection, _Link] = {}
        self._timing = Timing(
            echo_interval=settings.ECHO_INTERVAL,
            dead_after=settings.DEAD_AFTER,
            stats_interval=settings.STATS_INTERVAL,
            handshake_timeout=settings.HANDSHAKE_TIMEOUT,
            send_set_config=settings.SEND_SET_CONFIG,
            max_pending=settings.MAX_PENDING_BEFORE_FEATURES,
            echo_timeout=settings.ECHO_TIMEOUT,
        )
        self._arbiter = IdentityArbiter(
            settings.IDENTITY_ECHO_TIMEOUT, settings.MAX_PENDING_BEFORE_FEATURES
        )
        kytos_py311.bound_output_queues(settings.MAX_OUTPUT_QUEUE_BYTES)
        kytos_py311.bound_input_backlog(settings.MAX_INPUT_BACKLOG_BYTES)
        self.execute_as_loop(settings.TICK_INTERVAL)

    def execute(self) -> None:
        """Runs on the NApp thread: only asks the loop for a tick, in raw order."""
        self.controller.buffers.raw.put(KytosEvent(name=TICK_EVENT, content={}))

    def shutdown(self) -> None:
        log.info("kytos/of_core stopped (%d connections open)", len(self._links))

    @rest("v1/health", methods=["GET"])
    def health(self):
        """200 while every Kytos core event task runs, else 503 (kytos_py311 fix 15)."""
        body = kytos_py311.core_task_health()
        body["connections"] = len(self._links)
        body["identity_checks"] = len(self._arbiter)
        return jsonify(body), 200 if body["healthy"] else 503

    # --- connections and bytes ------------------------------------------------

    @listen_on_loop("kytos/core.openflow.connection.new")
    def on_connection_new(self, event: KytosEvent) -> None:
        self._link(event.source)
        limit = settings.MAX_PENDING_HANDSHAKES
        candidates = (
            (c, link.session.phase, link.session.started_at) for c, link in self._links.items()
        )
        for connection in oldest_over_limit(candidates, limit):
            reason = f"more than {limit} connections in their handshake: the oldest is closed"
            self._close(connection, self._links[connection], reason)

    @listen_on_loop("kytos/core.openflow.raw.in")
    def on_raw_in(self, event: KytosEvent) -> None:
        """Frame, parse and handle one chunk of a switch's byte stream."""
        connection: Connection = event.source
        link = self._link(connection)
        session = link.session
        if session.phase in (Phase.HELLO_FAILED, Phase.CLOSED):
            return
        now = time.monotonic()
        session.on_data(now)
        if link.switch is not None:
            link.switch.update_lastseen()
        framer = link.framer
        framer.feed(event.content["new_data"])
        try:
            while (frame := framer.next_message()) is not None:
                self._handle_frame(connection, link, frame, now)
                if session.phase in (Phase.HELLO_FAILED, Phase.CLOSED):
                    return
        except StreamError as error:
            self._close(connection, link, f"invalid OpenFlow stream: {error}")

    def _handle_frame(self, connection: Connection, link: _Link, frame: bytes, now: float) -> None:
        session = link.session
        if session.phase is Phase.AWAITING_HELLO:
            out = session.on_hello(frame, now)
            if out.hello_failed:
                log.warning(
                    "Hello from %s failed: no common OpenFlow version (it offered 0x%02x; "
                    "we speak 1.3 only); sending HELLO_FAILED and closing",
                    _peer(connection),
                    frame[0],
                )
                self.controller.buffers.app.put(
                    KytosEvent(name=f"{PREFIX}.hello_failed", content={"source": connection})
                )
            else:
                link.framer.version = OFP_VERSION_13
                connection.protocol.name = "openflow"
                connection.protocol.version = OFP_VERSION_13
                connection.protocol.state = "waiting_features_reply"
                connection.set_setup_state()
            self._apply(connection, link, out)
            return
        try:
            message = parse_message(frame)
        except Exception as error:  # pyof raises many types on bad bodies
            log.warning(
                "Skipping an OpenFlow message from %s that cannot be parsed "
                "(type %d, %d bytes): %s",
                _peer(connection),
                frame[1],
                len(frame),
                error,
            )
            return
        self._apply(connection, link, session.on_message(message, frame[1], now))

    @listen_on_loop("kytos/core.openflow.connection.lost")
    def on_connection_lost(self, event: KytosEvent) -> None:
        """Re-queue on the raw buffer: handle the end after the last bytes."""
        self.controller.buffers.raw.put(
            KytosEvent(name=LOST_IN_ORDER_EVENT, content=dict(event.content))
        )

    @listen_on_loop(LOST_IN_ORDER_EVENT)
    def on_connection_lost_in_order(self, event: KytosEvent) -> None:
        connection: Connection = event.source
        link = self._links.pop(connection, None)
        claim = self._arbiter.connection_gone(connection)
        if claim is not None:
            self._take_over(claim, "its connection ended during the identity check")
        if link is None:
            return
        link.session.on_closed()
        switch = link.switch
        if switch is None:
            return
        reason = link.close_reason or str(
            event.content.get("exception") or "connection closed by the switch"
        )
        if switch.connection is not None and switch.connection is not connection:
            log.info("Old connection of switch %s ended; it has reconnected", switch.dpid)
            return
        log.info("Switch %s disconnected: %s", switch.dpid, reason)
        self.controller.buffers.app.put(
            KytosEvent(
                name=f"{PREFIX}.switch.disconnected", content={"switch": switch, "reason": reason}
            )
        )

    @listen_on_loop(TICK_EVENT)
    def on_tick(self, event: KytosEvent) -> None:  # noqa: ARG002 - the tick carries nothing
        """Echo requests, liveness, handshake timeouts and periodic stats polls."""
        now = time.monotonic()
        for claim in self._arbiter.expired(now):
            self._take_over(
                claim,
                f"no echo reply within {self._arbiter.timeout:g} s while "
                f"{_peer(claim.newcomer)} claimed its dpid",
            )
        for connection, link in list(self._links.items()):
            if self._arbiter.waiting(connection):
                continue  # its handshake is on hold until the identity check ends
            switch = link.switch
            poll_allowed = switch is not None and switch.is_enabled()
            out = link.session.on_tick(now, poll_allowed)
            if out.close is not None or out.send:
                self._apply(connection, link, out)

    @listen_on_loop(OUT_EVENT[Type.OFPT_ERROR])
    def on_error_sent(self, event: KytosEvent) -> None:
        """Close a connection whose hello failed once its HELLO_FAILED is written."""
        connection = event.destination
        link = self._links.get(connection)
        if link is not None and link.session.phase is Phase.HELLO_FAILED:
            self._close(connection, link, "hello failed (no common OpenFlow version)")
            connection.state = ConnectionState.FAILED

    # --- outputs ---------------------------------------------------------------

    def _apply(self, connection: Connection, link: _Link, out: Output) -> None:
        if self._arbiter.waiting(connection):
            self._arbiter.hold(connection, out)  # replayed if it takes over; bounded
            return
        if out.features is not None and self._claim_checked(connection, link, out):
            return
        if out.features is not None:
            self._complete_handshake(connection, link, out.features)
        self._send(connection, out.send)
        if out.features is not None:
            self._put_app("handshake.completed", {"switch": link.switch})
        put_in = self.controller.buffers.msg_in.put
        for message in out.deliver:
            message_type = message.header.message_type
            put_in(
                KytosEvent(
                    name=IN_EVENT[message_type], content={"message": message, "source": connection}
                )
            )
            if message_type == Type.OFPT_PACKET_IN:
                self._on_packet_in(link.switch, message)
            elif message_type == Type.OFPT_PORT_STATUS:
                self._on_port_status(link.switch, message)
        for reply, poll in out.completed:
            self._on_multipart_reply(connection, link.switch, reply, poll)
        if out.echo_answered:
            claim = self._arbiter.answered(connection, out.echo_answered)
            if claim is not None:
                self._refuse(claim, f"it is live on {_peer(connection)} (it answered an echo)")
        if out.close is not None:
            self._close(connection, link, out.close)

    # --- switch identity (identity.py; README "Switch identity") ---------------------

    def _claim_checked(self, connection: Connection, link: _Link, out: Output) -> bool:
        """True when this features reply names a live switch: the handshake waits for a verdict."""
        dpid = _dpid_string(out.features.datapath_id)
        incumbent = self._live_incumbent(dpid, connection)
        if incumbent is None:
            return False
        if self._arbiter.pending_for(dpid):
            self._refuse_connection(
                connection, link, dpid, "another connection's claim on it is being checked"
            )
            return True
        now = time.monotonic()
        probe = self._links[incumbent].session.echo_request(now)
        probe_xid = int(value(probe.header.xid))
        self._arbiter.open(dpid, connection, incumbent, probe_xid=probe_xid, now=now, first=out)
        log.warning(
            "Connection %s claims dpid %s, which is connected at %s: sending that switch an "
            "echo request (%g s to answer, else the newcomer takes over)",
            _peer(connection),
            dpid,
            _peer(incumbent),
            self._arbiter.timeout,
        )
        self._send(incumbent, [probe])
        return True

    def _live_incumbent(self, dpid: str, newcomer: Connection) -> Connection | None:
        """The connection that holds ``dpid`` now, if it may still be alive."""
        switch = self.controller.switches.get(dpid)
        old = getattr(switch, "connection", None)
        if old is None or old is newcomer:
            return None
        old_link = self._links.get(old)
        if old_link is None or old_link.session.phase is not Phase.ESTABLISHED:
            return None
        return old if old.is_alive() else None

    def _refuse(self, claim: Claim, why: str) -> None:
        link = self._links.get(claim.newcomer)
        if link is not None:
            self._refuse_connection(claim.newcomer, link, claim.dpid, why)

    def _refuse_connection(self, connection: Connection, link: _Link, dpid: str, why: str) -> None:
        metrics.DP_CLAIMS_REFUSED.inc()
        log.warning("Refusing connection %s that claims dpid %s: %s", _peer(connection), dpid, why)
        self._close(connection, link, f"refused: dpid {dpid} {why}")

    def _take_over(self, claim: Claim, why: str) -> None:
        """The incumbent is dead: close it and complete the newcomer's handshake now."""
        old_link = self._links.get(claim.incumbent)
        if old_link is not None and old_link.session.phase is not Phase.CLOSED:
            self._close(claim.incumbent, old_link, f"replaced by {_peer(claim.newcomer)}: {why}")
        link = self._links.get(claim.newcomer)
        if link is None or link.session.phase is Phase.CLOSED:
            return
        log.warning(
            "Connection %s takes over dpid %s from %s: %s",
            _peer(claim.newcomer),
            claim.dpid,
            _peer(claim.incumbent),
            why,
        )
        if claim.dropped:
            log.warning(
                "%d messages of %s held during the check were dropped",
                claim.dropped,
                _peer(claim.newcomer),
            )
        for out in claim.held:
            if link.session.phase is Phase.CLOSED:
                break
            self._apply(claim.newcomer, link, out)

    def _send(self, connection: Connection, messages: list[Any]) -> None:
        put_out = self.controller.buffers.msg_out.put
        for message in messages:
            put_out(
                KytosEvent(
                    name=OUT_EVENT[message.header.message_type],
                    content={"destination": connection, "message": message},
                )
            )

    def _complete_handshake(self, connection: Connection, link: _Link, features: Any) -> None:
        switch = self.controller.get_switch_or_create(
            _dpid_string(features.datapath_id), connection
        )
        switch.update_features(features)
        switch.update_lastseen()
        connection.protocol.state = "handshake_complete"
        connection.set_established_state()
        link.switch = switch
        log.info(
            "Handshake with switch %s at %s:%s completed",
            switch.dpid,
            connection.address,
            connection.port,
        )

    def _close(self, connection: Connection, link: _Link, reason: str) -> None:
        """Close this connection only; its end is reported when asyncio sees it."""
        if link.close_reason is None:
            link.close_reason = reason
        if link.session.phase is not Phase.HELLO_FAILED:
            link.session.phase = Phase.CLOSED
        log.warning("Closing OpenFlow connection %s: %s", _peer(connection), reason)
        connection.close()

    def _put_app(self, suffix: str, content: dict[str, Any]) -> None:
        self.controller.buffers.app.put(KytosEvent(name=f"{PREFIX}.{suffix}", content=content))

    # --- message handlers ---------------------------------------------------------

    def _on_packet_in(self, switch: Any, packet_in: PacketInMessage) -> None:
        """Upstream's reachable.mac: every packet-in's source MAC but LLDP and IPv6."""
        if not settings.EMIT_REACHABLE_MAC:
            return
        record = packet_in.record  # parse_message decodes every PACKET_IN with struct
        packet = parse_packet(record.data)
        in_port = record.in_port
        if packet.eth_src is None or packet.eth_type in (ETH_TYPE_LLDP, ETH_TYPE_IPV6):
            return
        port = switch.interfaces.get(in_port) if in_port is not None else None
        self._put_app(
            "reachable.mac", {"switch": switch, "port": port, "reachable_mac": packet.eth_src}
        )

    def _on_port_status(self, switch: Any, port_status: Any) -> None:
        attributes = interface_attributes(port_status.desc)
        reason = int(value(port_status.reason))
        known = switch.interfaces.get(attributes["port_number"])
        events = port_status_events(reason, known.state if known else None, attributes["state"])
        if reason == PortReason.OFPPR_DELETE:
            interface = known or Interface(switch=switch, **attributes)
            if known is not None:
                switch.remove_interface(known)
        else:
            interface = self._upsert_interface(switch, attributes)
        for suffix in events:
            self._put_app(f"switch.interface.{suffix}", {"interface": interface})

    def _on_port_desc(self, switch: Any, ports: list[Any]) -> None:
        for port in ports:
            attributes = interface_attributes(port)
            interface = self._upsert_interface(switch, attributes)
            self._put_app(
                "switch.port.created",
                {
                    "switch": switch.id,
                    "port": attributes["port_number"],
                    "port_description": port_description(attributes),
                },
            )
            self._put_app("switch.interface.created", {"interface": interface})

    @staticmethod
    def _upsert_interface(switch: Any, attributes: dict[str, Any]) -> Interface:
        interface = switch.interfaces.get(attributes["port_number"])
        if interface is None:
            interface = Interface(switch=switch, **attributes)
            switch.update_interface(interface)
            return interface
        interface.name = attributes["name"]
        interface.address = attributes["address"]
        interface.state = attributes["state"]
        interface.features = attributes["features"]
        interface.config = attributes["config"]
        if attributes["speed"] is not None:
            interface.set_custom_speed(attributes["speed"])
        return interface

    def _on_multipart_reply(
        self, connection: Connection, switch: Any, reply: CompletedReply, poll: Poll | None
    ) -> None:
        if reply.multipart_type == MultipartType.OFPMP_PORT_DESC:
            self._on_port_desc(switch, reply.body)
        elif reply.multipart_type == MultipartType.OFPMP_DESC and reply.body:
            switch.update_description(reply.body[0])
        self._put_app(
            "multipart_reply.received",
            {
                "switch": switch,
                "source": connection,
                "xid": reply.xid,
                "multipart_type": reply.multipart_type,
                "body": reply.body,
            },
        )
        if poll is Poll.FLOWS:
            switch.flows = [Flow(switch, stats) for stats in reply.body]
            self._put_app("flow_stats.received", {"switch": switch})
        elif poll is Poll.PORTS:
            self._put_app("port_stats", {"switch": switch, "port_stats": reply.body})

    # --- helpers -------------------------------------------------------------------

    def _link(self, connection: Connection) -> _Link:
        link = self._links.get(connection)
        if link is None:
            link = _Link(
                session=SwitchSession(
                    time.monotonic(),
                    self._timing,
                    max_in_flight=settings.MAX_MULTIPART_IN_FLIGHT,
                    max_entries=settings.MAX_MULTIPART_ENTRIES,
                ),
                framer=MessageFramer(settings.MAX_MESSAGE_BYTES),
            )
            self._links[connection] = link
        return link


def _dpid_string(datapath_id: Any) -> str:
    """The colon-hex dpid Kytos uses, from an unpacked or constructed field."""
    raw = value(datapath_id)
    if isinstance(raw, int):
        return dpid_to_str(raw)
    return str(raw).lower()


def _peer(connection: Connection) -> str:
    switch = connection.switch
    dpid = f" (dpid {switch.dpid})" if switch is not None else ""
    return f"{connection.address}:{connection.port}{dpid}"
