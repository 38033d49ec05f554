"""Turn the commands a module's logic returns into Kytos events and OpenFlow messages.

Logic modules return :mod:`xmpp_ofc.commands` (``InstallFlow``, ``DeleteFlows``,
``PacketOut``) and know nothing of Kytos; every NApp of the bundle sends them with
:class:`CommandSender`, so the way a flow or a packet-out leaves the controller is
defined once:

* flows go through flow_manager's event API, ``kytos.flow_manager.flows.install`` /
  ``.delete`` with ``{"dpid", "flow_dict": {"flows": [...]}}``, on the app buffer.
  Consecutive commands of the same kind for the same switch travel in one event
  (one validation pass in flow_manager, one lock), and the command order is kept:
  flow_manager handles these events on the event loop, in buffer order, so a delete
  listed before an install reaches the switch first;
* packet-outs are PACKET_OUT bytes built with ``struct``
  (:func:`xmpp_ofc.openflow.fast_codec.encode_packet_out`, issue 9) in a
  :class:`~xmpp_ofc.openflow.packed.PackedMessage` (pyof's PacketOut on demand
  for listeners that read its fields), put on the msg_out buffer for the
  switch's connection, named ``<napp>.messages.out.ofpt_packet_out``.  They do not
  wait for the flow installed with them: the packet-out names its output port
  itself, so it is delivered whether or not the flow is in place yet;
* flow-stats requests (``RequestFlowStats``) are pyof ``MultipartRequest`` messages
  (OFPMP_FLOW, cookie + mask) put straight on msg_out as
  ``<napp>.messages.out.ofpt_multipart_request``; :meth:`CommandSender.send`
  returns their xids so the NApp can tell the replies to its polls from other
  requesters' (of_core's periodic full poll). The xids come from the upper half
  of the 32-bit space, which of_core's per-connection counter (from 1) never
  reaches, so multipart reassembly by xid cannot mix the two;
* meter mods (``ModifyMeter``) must keep their place among the flow commands: a
  meter has to be on the switch before a FlowMod that references it, and a
  "delete every meter" must come *after* the FlowMods that re-add the monitors
  without their meters (deleting a meter deletes the flows using it).
  flow_manager has no meter API, so the MeterMod goes on msg_out, but not
  directly: a FlowMod is still on the app buffer until flow_manager's on-loop
  handler turns it into a msg_out message, and a MeterMod put on msg_out at once
  would overtake every flow command sent before it. So the MeterMod travels on
  the app buffer too, as :attr:`CommandSender.ordered_event` (content
  ``{"dpid", "message"}``), and the NApp forwards it to msg_out from an on-loop
  listener (:meth:`CommandSender.forward_ordered`). Both that listener and
  flow_manager's run inline on the loop in app-buffer order, so every command
  reaches the switch in the order the logic returned it.

Every method only puts events on thread-safe buffers: it is safe on the event loop
(it never blocks) and from any thread.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from kytos.core import KytosEvent
from pyof.v0x04.controller2switch.common import MultipartType
from pyof.v0x04.controller2switch.multipart_request import FlowStatsRequest, MultipartRequest

from xmpp_ofc.commands import (
    AnyCommand,
    DeleteFlows,
    InstallFlow,
    ModifyMeter,
    PacketOut,
    RequestFlowStats,
)
from xmpp_ofc.openflow.fast_codec import encode_packet_out, new_xid
from xmpp_ofc.openflow.meter import meter_mod
from xmpp_ofc.openflow.packed import PackedMessage

log = logging.getLogger(__name__)

FLOWS_INSTALL_EVENT = "kytos.flow_manager.flows.install"
FLOWS_DELETE_EVENT = "kytos.flow_manager.flows.delete"

FlowCommand = InstallFlow | DeleteFlows
#: First xid of the requests sent here (upper half: of_core counts up from 1).
FIRST_XID = 0x80000000


def flow_event(commands: Sequence[FlowCommand]) -> KytosEvent:
    """One flow_manager event for commands of one kind on one switch."""
    first = commands[0]
    kind = type(first)
    if any(type(command) is not kind or command.dpid != first.dpid for command in commands):
        raise ValueError("one flow event carries commands of one kind for one switch")
    name = FLOWS_INSTALL_EVENT if kind is InstallFlow else FLOWS_DELETE_EVENT
    return KytosEvent(
        name=name,
        content={
            "dpid": first.dpid,
            "flow_dict": {"flows": [dict(command.flow) for command in commands]},
        },
    )


#: ofp_port_no: the last physical port, and the reserved ports a PACKET_OUT may name as
#: its in_port (OpenFlow 1.3.5, 7.3.7; python-openflow checks the same).
OFPP_MAX = 0xFFFFFF00
PACKET_OUT_VIRTUAL_IN_PORTS = (0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF)  # LOCAL, CONTROLLER, ANY


def valid_packet_out_in_port(in_port: int) -> bool:
    return 0 < in_port <= OFPP_MAX or in_port in PACKET_OUT_VIRTUAL_IN_PORTS


def packet_out_message(command: PacketOut) -> Any:
    """The OpenFlow 1.3 PACKET_OUT for ``command`` (one output action), packed.

    An in_port no PACKET_OUT may carry (a bit-flipped packet-in's, say) is left to
    python-openflow, which refuses to pack it: msg_out then drops the message with a
    log line and ``xmpp_ofc_of_messages_not_packed`` (kytos_py311 fix 8), as before
    the struct encoder, instead of sending the switch a message it must reject.
    """
    if not valid_packet_out_in_port(command.in_port):
        from pyof.v0x04.common.action import ActionOutput
        from pyof.v0x04.controller2switch.packet_out import PacketOut as PyofPacketOut

        return PyofPacketOut(
            buffer_id=command.buffer_id,
            in_port=command.in_port,
            actions=[ActionOutput(port=command.out_port)],
            data=command.data,
        )
    return PackedMessage(
        encode_packet_out(
            new_xid(),
            command.in_port,
            ({"action_type": "output", "port": command.out_port},),
            command.data,
            command.buffer_id,
        )
    )


def flow_stats_request(command: RequestFlowStats, xid: int) -> MultipartRequest:
    """The OFPMP_FLOW request for ``command``: one table (or all), cookie and mask."""
    return MultipartRequest(
        xid=xid,
        multipart_type=MultipartType.OFPMP_FLOW,
        body=FlowStatsRequest(
            table_id=command.table_id, cookie=command.cookie, cookie_mask=command.cookie_mask
        ),
    )


def meter_features_request(xid: int) -> MultipartRequest:
    """The OFPMP_METER_FEATURES request (its reply says whether meters can be used)."""
    return MultipartRequest(xid=xid, multipart_type=MultipartType.OFPMP_METER_FEATURES)


def meter_mod_message(command: ModifyMeter) -> Any:
    """The OpenFlow 1.3 METER_MOD for ``command`` (one packets/s DROP band)."""
    return meter_mod(command.command, command.meter_id, command.rate_pps, command.burst)


def group_flow_commands(commands: Iterable[AnyCommand]) -> list[list[AnyCommand]]:
    """Split ``commands`` into runs that can each travel as one event, order kept.

    A run is one packet-out, meter mod or flow-stats request, or consecutive flow
    commands of the same kind and switch.
    """
    runs: list[list[AnyCommand]] = []
    for command in commands:
        previous = runs[-1][-1] if runs else None
        if (
            previous is not None
            and isinstance(command, InstallFlow | DeleteFlows)
            and type(previous) is type(command)
            and previous.dpid == command.dpid
        ):
            runs[-1].append(command)
        else:
            runs.append([command])
    return runs


class CommandSender:
    """Sends commands for one NApp (``napp_id`` names its packet-out events)."""

    def __init__(self, controller: Any, napp_id: str) -> None:
        self.controller = controller
        self.packet_out_event = f"{napp_id}.messages.out.ofpt_packet_out"
        self.meter_mod_event = f"{napp_id}.messages.out.ofpt_meter_mod"
        self.multipart_request_event = f"{napp_id}.messages.out.ofpt_multipart_request"
        #: App-buffer event that carries a MeterMod in order (see the module doc);
        #: the NApp listens to it on the loop and calls :meth:`forward_ordered`.
        self.ordered_event = f"{napp_id}.internal.ordered_msg_out"
        self._dropped = 0
        self._lock = threading.Lock()
        self._xids = itertools.count(FIRST_XID)

    @property
    def messages_not_sent(self) -> int:
        """Messages for msg_out (packet-outs, meter mods, flow-stats and meter-features
        requests) not sent because their switch was gone or not connected."""
        with self._lock:
            return self._dropped

    def new_xid(self) -> int:
        """An xid for a request of ours (upper half of the xid space, wrapping)."""
        with self._lock:
            xid = next(self._xids)
            if xid > 0xFFFFFFFF:
                self._xids = itertools.count(FIRST_XID + 1)
                xid = FIRST_XID
            return xid

    def send(self, commands: Iterable[AnyCommand]) -> list[int]:
        """Send ``commands`` in order; return the xids of the flow-stats requests sent.

        A request for a switch that is not connected is dropped (and counted), so
        it has no xid.
        """
        xids: list[int] = []
        for run in group_flow_commands(commands):
            first = run[0]
            if isinstance(first, PacketOut):
                self._put_out(first.dpid, self.packet_out_event, packet_out_message(first))
            elif isinstance(first, ModifyMeter):
                self.controller.buffers.app.put(
                    KytosEvent(
                        name=self.ordered_event,
                        content={"dpid": first.dpid, "message": meter_mod_message(first)},
                    )
                )
            elif isinstance(first, RequestFlowStats):
                xid = self.new_xid()
                if self._put_out(
                    first.dpid, self.multipart_request_event, flow_stats_request(first, xid)
                ):
                    xids.append(xid)
            else:
                self.controller.buffers.app.put(flow_event(run))
        return xids

    def request_meter_features(self, dpid: str) -> int | None:
        """Ask ``dpid`` for its meter features; the xid, or None if it is not connected."""
        xid = self.new_xid()
        if self._put_out(dpid, self.multipart_request_event, meter_features_request(xid)):
            return xid
        return None

    def forward_ordered(self, event: KytosEvent) -> None:
        """Put a message that travelled as :attr:`ordered_event` on msg_out (on the loop)."""
        self._put_out(event.content["dpid"], self.meter_mod_event, event.content["message"])

    def _put_out(self, dpid: str, name: str, message: Any) -> bool:
        """Put ``message`` on msg_out for ``dpid``'s connection; False if it is not connected."""
        switch = self.controller.switches.get(dpid)
        connection = getattr(switch, "connection", None)
        if connection is None or not switch.is_connected():
            with self._lock:
                self._dropped += 1
            log.debug("dpid %s: not connected; %s dropped", dpid, name.rsplit(".", 1)[-1])
            return False
        self.controller.buffers.msg_out.put(
            KytosEvent(name=name, content={"destination": connection, "message": message})
        )
        return True
