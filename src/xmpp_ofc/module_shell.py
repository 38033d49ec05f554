"""The Kytos scaffolding every dispatcher module NApp (l2_switch, rate_limiter) shares.

A module NApp is a thin shell: the dispatcher routes it decoded messages under
``xmpp_ofc/dispatcher.<module>.*``, the shell asks its plain-Python logic what to
do and sends the answer through :class:`~xmpp_ofc.kytos_commands.CommandSender`.
What is the same in every such shell lives here, once:

* :func:`routed_pattern` / :func:`listen_routed`: the exact event names the
  dispatcher uses for a module (escaped, since Kytos matches them as regexes);
* :class:`ModuleShell`, mixed into ``Main``: the switches the module runs on
  (added by RESTORE, dropped by STOP or switch down), the one lock under which
  the logic decides *and* the decision is sent (so commands leave in the order
  they were decided, whichever thread decided them), the packet-in timing and
  the listener for flow-manager errors about this module's own flows.

Kytos collects as listeners the public methods, inherited ones included, that
carry an ``events`` attribute, so :meth:`ModuleShell.on_flow_error` is picked up
on every ``Main`` that mixes it in.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from xmpp_ofc import metrics
from xmpp_ofc.commands import AnyCommand
from xmpp_ofc.cookies import Owner
from xmpp_ofc.flow_errors import FLOW_ERROR_EVENT, FlowError, flow_error_for
from xmpp_ofc.kytos_commands import CommandSender
from xmpp_ofc.kytos_events import listen_on_loop
from xmpp_ofc.messages import Control, MessageType, module_event_name

#: What a shell asks its logic: a call, made under the lock, returning what to send.
Decision = Callable[[], Iterable[AnyCommand]]


def routed_pattern(module: str, kind: MessageType | Control) -> str:
    """The exact (escaped) event name the dispatcher routes ``kind`` to ``module`` under."""
    return re.escape(module_event_name(module, kind))


def listen_routed(module: str, *kinds: MessageType | Control) -> Callable[[Callable], Callable]:
    """``listen_on_loop`` for what the dispatcher routes to ``module`` (one or more kinds)."""
    return listen_on_loop(*(routed_pattern(module, kind) for kind in kinds))


class ModuleShell:
    """Mixin for a module NApp's ``Main``: active switches, one lock, send, timing.

    Subclasses set :attr:`MODULE` and :attr:`OWNER`, call :meth:`start_shell` in
    ``setup`` and implement :meth:`own_flow_error`.
    """

    #: The module's name in the dispatcher's routed events (``l2_switch``...).
    MODULE: ClassVar[str]
    #: The cookie owner of the module's flows (its flow errors are ours).
    OWNER: ClassVar[Owner]

    controller: Any
    sender: CommandSender

    @classmethod
    def napp_name(cls) -> str:
        """``xmpp_ofc/<module>``: the NApp id, the sender's event prefix and a metric label."""
        return f"xmpp_ofc/{cls.MODULE}"

    def start_shell(self) -> None:
        """Create the sender, the lock and the (empty) set of active switches."""
        self.sender = CommandSender(self.controller, self.napp_name())
        self._lock = threading.Lock()
        # Switches the dispatcher told us to run on (RESTORE) and not to leave yet.
        self._active: set[str] = set()

    def decide(self, decision: Decision) -> None:
        """Ask the logic and send its answer, both under the lock."""
        with self._lock:
            self.sender.send(decision())

    def decide_if_active(self, dpid: str, decision: Decision) -> bool:
        """:meth:`decide`, if the module runs on ``dpid``; whether it did."""
        with self._lock:
            if dpid not in self._active:
                return False
            self.sender.send(decision())
            return True

    def decide_packet_in(self, dpid: str, decision: Decision) -> None:
        """:meth:`decide_if_active` for a packet-in, its handling time observed."""
        started = time.perf_counter()
        if self.decide_if_active(dpid, decision):
            metrics.PACKET_IN_SECS.labels(dpid, self.napp_name()).observe(
                time.perf_counter() - started
            )

    def activate(self, dpid: str, decision: Decision) -> None:
        """RESTORE: run on ``dpid`` from now on, starting with what ``decision`` sends."""
        with self._lock:
            self._active.add(dpid)
            self.sender.send(decision())

    def deactivate(self, dpid: str, forget: Callable[[], object]) -> None:
        """STOP or switch down: leave ``dpid``; ``forget`` (under the lock) drops its state.

        Messages still in flight for it are ignored until the next RESTORE.
        """
        with self._lock:
            self._active.discard(dpid)
            forget()

    def forget_packet_in_timing(self, dpid: str) -> None:
        """Drop ``dpid``'s packet-in timing series (the module left the switch)."""
        metrics.PACKET_IN_SECS.remove_by_labels({metrics.DP_ID: dpid, "napp": self.napp_name()})

    @listen_on_loop(re.escape(FLOW_ERROR_EVENT))
    def on_flow_error(self, event: Any) -> None:
        """A switch refused one of our flows (table full...): the logic decides what follows.

        flow_manager announces every module's errors; those of other owners are ignored.
        """
        error = flow_error_for(self.OWNER, event.content)
        if error is not None:
            self.decide(lambda: self.own_flow_error(error))

    def own_flow_error(self, error: FlowError) -> Iterable[AnyCommand]:
        """What to send after the switch refused one of this module's flows."""
        raise NotImplementedError
