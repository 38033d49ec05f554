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
* packet-outs are pyof ``PacketOut`` messages put on the msg_out buffer for the
  switch's connection, named ``<napp>.messages.out.ofpt_packet_out``.  They do not
  wait for the flow installed with them: the packet-out names its output port
  itself, so it is delivered whether or not the flow is in place yet.

Every method only puts events on thread-safe buffers: it is safe on the event loop
(it never blocks) and from any thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from kytos.core import KytosEvent
from pyof.v0x04.common.action import ActionOutput
from pyof.v0x04.controller2switch.packet_out import PacketOut as PyofPacketOut

from xmpp_ofc.commands import Command, DeleteFlows, InstallFlow, PacketOut

log = logging.getLogger(__name__)

FLOWS_INSTALL_EVENT = "kytos.flow_manager.flows.install"
FLOWS_DELETE_EVENT = "kytos.flow_manager.flows.delete"

FlowCommand = InstallFlow | DeleteFlows


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


def packet_out_message(command: PacketOut) -> PyofPacketOut:
    """The OpenFlow 1.3 PACKET_OUT for ``command`` (one output action)."""
    return PyofPacketOut(
        buffer_id=command.buffer_id,
        in_port=command.in_port,
        actions=[ActionOutput(port=command.out_port)],
        data=command.data,
    )


def group_flow_commands(commands: Iterable[Command]) -> list[list[Command]]:
    """Split ``commands`` into runs that can each travel as one event, order kept.

    A run is one packet-out, or consecutive flow commands of the same kind and switch.
    """
    runs: list[list[Command]] = []
    for command in commands:
        previous = runs[-1][-1] if runs else None
        if (
            previous is not None
            and not isinstance(command, PacketOut)
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
        self._dropped = 0
        self._lock = threading.Lock()

    @property
    def dropped_packet_outs(self) -> int:
        """Packet-outs not sent because their switch was gone or not connected."""
        with self._lock:
            return self._dropped

    def send(self, commands: Iterable[Command]) -> None:
        """Send ``commands`` in order."""
        for run in group_flow_commands(commands):
            if isinstance(run[0], PacketOut):
                self._send_packet_out(run[0])
            else:
                self.controller.buffers.app.put(flow_event(run))

    def _send_packet_out(self, command: PacketOut) -> None:
        switch = self.controller.switches.get(command.dpid)
        connection = getattr(switch, "connection", None)
        if connection is None or not switch.is_connected():
            with self._lock:
                self._dropped += 1
            log.debug("dpid %s: not connected; packet-out dropped", command.dpid)
            return
        self.controller.buffers.msg_out.put(
            KytosEvent(
                name=self.packet_out_event,
                content={"destination": connection, "message": packet_out_message(command)},
            )
        )
