"""The dispatcher's decisions, free of Kytos: where each message goes, what to send when.

* Routing by cookie: a PACKET_IN, flow-stats entry or FLOW_REMOVED goes to the one
  module whose owner byte is in the cookie of the flow that produced it, and only if
  that module is enabled on the switch and subscribed.  The seed offered every
  packet-in to every subscribed module, so two modules could answer one packet.
* Switch lifecycle: on connect, delete every flow of ours, install the base pipeline,
  then ask each enabled module to restore its flows; on enable/disable, restore or
  delete one module's flows.  The returned steps must be executed in order: the
  delete has to reach the switch before anything is installed again.
* Counters of OpenFlow messages per switch, direction and type.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from napps.xmpp_ofc.dispatcher.module_config import ModuleConfig
from xmpp_ofc import cookies, pipeline
from xmpp_ofc.commands import DeleteFlows, InstallFlow
from xmpp_ofc.messages import Control, FlowStatsEntry, MessageType


@dataclass(frozen=True)
class NotifyModule:
    """Tell ``module`` about ``kind`` on ``dpid`` (the shell emits the Kytos event)."""

    dpid: str
    module: str
    kind: MessageType | Control


Step = DeleteFlows | InstallFlow | NotifyModule


class Unrouted(StrEnum):
    """Why a message reached no module (counted, never an error)."""

    FOREIGN_COOKIE = "foreign_cookie"
    DISPATCHER_FLOW = "dispatcher_flow"
    MODULE_DISABLED = "module_disabled"
    NOT_SUBSCRIBED = "not_subscribed"


@dataclass(frozen=True)
class ConfigChange:
    """Result of an enable/disable: whether it changed anything, and what to send."""

    changed: bool
    steps: tuple[Step, ...] = ()


class Direction(StrEnum):
    """Direction of an OpenFlow message, seen from the controller."""

    IN = "in"
    OUT = "out"


class MessageCounters:
    """OpenFlow messages per (dpid, direction, type); safe to call from any thread."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, Direction, str]] = Counter()
        self._lock = threading.Lock()

    def count(self, dpid: str, direction: Direction, msg_type: str, amount: int = 1) -> None:
        """Add ``amount`` messages of ``msg_type`` (e.g. ``"ofpt_packet_in"``)."""
        with self._lock:
            self._counts[(dpid, Direction(direction), msg_type)] += amount

    def get(self, dpid: str, direction: Direction, msg_type: str) -> int:
        """One counter (0 when never counted)."""
        with self._lock:
            return self._counts[(dpid, Direction(direction), msg_type)]

    def snapshot(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{dpid: {"in": {type: n}, "out": {type: n}}}`` for REST and metrics."""
        with self._lock:
            items = list(self._counts.items())
        result: dict[str, dict[str, dict[str, int]]] = {}
        for (dpid, direction, msg_type), value in sorted(items):
            per_switch = result.setdefault(dpid, {"in": {}, "out": {}})
            per_switch[direction.value][msg_type] = value
        return result

    def total(self, direction: Direction) -> int:
        """All messages in one direction, every switch and type."""
        with self._lock:
            return sum(v for (_, d, _), v in self._counts.items() if d == direction)

    def forget(self, dpid: str) -> None:
        """Drop a switch's series (e.g. when an operator removes it)."""
        with self._lock:
            for key in [key for key in self._counts if key[0] == dpid]:
                del self._counts[key]


class Router:
    """Routing and switch lifecycle of the dispatcher."""

    def __init__(self, config: ModuleConfig | None = None) -> None:
        self.config = config or ModuleConfig()
        self.counters = MessageCounters()
        self.unrouted: Counter[tuple[str, MessageType, Unrouted]] = Counter()
        self._connected: set[str] = set()
        self._lock = threading.Lock()

    # --- routing ----------------------------------------------------------------

    def owner_module(self, cookie: int) -> str | None:
        """The module whose owner byte is in ``cookie`` (None: not a module's flow)."""
        owner = cookies.owner_of(cookie)
        return None if owner is None else self.config.module_of_owner(owner)

    def route(self, dpid: str, kind: MessageType, cookie: int) -> str | None:
        """The module that gets a cookie-bearing message, or None (counted)."""
        reason: Unrouted | None = None
        module = self.owner_module(cookie)
        if module is None:
            is_dispatcher = cookies.owner_of(cookie) is cookies.Owner.DISPATCHER
            reason = Unrouted.DISPATCHER_FLOW if is_dispatcher else Unrouted.FOREIGN_COOKIE
        elif not self.config.is_enabled(dpid, module):
            reason = Unrouted.MODULE_DISABLED
        elif kind not in self.config.subscriptions(dpid, module):
            reason = Unrouted.NOT_SUBSCRIBED
        if reason is not None:
            with self._lock:
                self.unrouted[(dpid, kind, reason)] += 1
            return None
        return module

    def route_flow_stats(
        self, dpid: str, entries: Iterable[FlowStatsEntry]
    ) -> dict[str, tuple[FlowStatsEntry, ...]]:
        """Split one flow-stats reply among the modules that own its entries.

        The other entries (base pipeline, foreign flows) are dropped.  Each owner is
        routed (and an unroutable one counted) once per reply, not once per entry: a
        reply can hold 50k entries.
        """
        grouped: dict[str, list[FlowStatsEntry]] = {}
        destinations: dict[int | None, str | None] = {}
        for entry in entries:
            owner = cookies.owner_of(entry.cookie)
            if owner not in destinations:
                destinations[owner] = self.route(dpid, MessageType.FLOW_STATS, entry.cookie)
            module = destinations[owner]
            if module is not None:
                grouped.setdefault(module, []).append(entry)
        return {module: tuple(items) for module, items in grouped.items()}

    def subscribers(self, dpid: str, kind: MessageType) -> tuple[str, ...]:
        """Modules that hear a message without a cookie (port status, switch up/down)."""
        return self.config.subscribers(dpid, kind)

    # --- switch lifecycle --------------------------------------------------------

    def is_connected(self, dpid: str) -> bool:
        """True between :meth:`switch_up` and :meth:`switch_down`."""
        with self._lock:
            return dpid in self._connected

    def connected_switches(self) -> tuple[str, ...]:
        """Switches currently up, sorted."""
        with self._lock:
            return tuple(sorted(self._connected))

    def switch_up(self, dpid: str) -> list[Step]:
        """What to do when a switch completes its handshake (first time or again).

        Deleting every flow of ours first makes the switch converge to what the
        controller believes, whatever it kept from before (flows of a module since
        disabled, blocks already expired here, a table from another controller run).
        """
        with self._lock:
            self._connected.add(dpid)
        steps: list[Step] = [DeleteFlows(dpid, pipeline.delete_ours())]
        steps += [InstallFlow(dpid, flow) for flow in pipeline.base_pipeline()]
        enabled = self.config.enabled_modules(dpid)
        steps += [NotifyModule(dpid, module, Control.RESTORE) for module in enabled]
        steps += [
            NotifyModule(dpid, module, MessageType.SWITCH_UP)
            for module in self.subscribers(dpid, MessageType.SWITCH_UP)
        ]
        return steps

    def switch_down(self, dpid: str) -> list[Step]:
        """What to do when a switch's connection is lost: tell who subscribed."""
        with self._lock:
            self._connected.discard(dpid)
        return [
            NotifyModule(dpid, module, MessageType.SWITCH_DOWN)
            for module in self.subscribers(dpid, MessageType.SWITCH_DOWN)
        ]

    def enable(self, dpid: str, module: str) -> ConfigChange:
        """Enable ``module`` on ``dpid``; it restores its flows if the switch is up.

        Raises :class:`~napps.xmpp_ofc.dispatcher.module_config.UnknownModuleError`.
        """
        if not self.config.set_enabled(dpid, module, True):
            return ConfigChange(changed=False)
        if not self.is_connected(dpid):
            return ConfigChange(changed=True)
        return ConfigChange(True, (NotifyModule(dpid, module, Control.RESTORE),))

    def disable(self, dpid: str, module: str) -> ConfigChange:
        """Disable ``module`` on ``dpid``: tell it to forget the switch, delete its flows.

        The dispatcher deletes by the module's owner byte itself instead of trusting
        the module, so a disabled module leaves nothing behind even if it is broken.

        STOP comes first and is a barrier: the shell sends the steps after it only
        once the STOP event is being delivered.  Messages routed to the module before
        the disable are delivered before the STOP, so any flow the module installs
        in answer to them is queued before the delete and deleted with the rest.
        """
        if not self.config.set_enabled(dpid, module, False):
            return ConfigChange(changed=False)
        owner = self.config.spec(module).owner
        steps: list[Step] = [NotifyModule(dpid, module, Control.STOP)]
        if self.is_connected(dpid):
            steps.append(DeleteFlows(dpid, pipeline.delete_owner(owner)))
        return ConfigChange(True, tuple(steps))

    def module_loaded(self, module: str) -> list[Step]:
        """What to do when ``module`` (re)starts: restore it where it is enabled and up.

        Kytos loads NApps in directory order, so a module can start after a switch
        connected and miss that RESTORE; a reloaded module has lost its state.  Its
        old flows are deleted first, as on a connect, so the switch converges to
        what the new instance restores.  Unknown names (other NApps) yield nothing.
        """
        if module not in self.config.module_names:
            return []
        owner = self.config.spec(module).owner
        steps: list[Step] = []
        for dpid in self.connected_switches():
            if self.config.is_enabled(dpid, module):
                steps.append(DeleteFlows(dpid, pipeline.delete_owner(owner)))
                steps.append(NotifyModule(dpid, module, Control.RESTORE))
        return steps

    def unrouted_counts(self, dpid: str) -> dict[str, dict[str, int]]:
        """``{message type: {reason: n}}`` of the messages of ``dpid`` no module got."""
        with self._lock:
            items = [(key, value) for key, value in self.unrouted.items() if key[0] == dpid]
        result: dict[str, dict[str, int]] = {}
        for (_, kind, reason), value in sorted(items):
            result.setdefault(str(kind), {})[str(reason)] = value
        return result
