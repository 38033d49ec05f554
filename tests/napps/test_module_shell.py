"""xmpp_ofc.module_shell.ModuleShell mixed into a Kytos NApp: what Kytos collects from it.

Kytos builds a NApp's listeners from the public methods of its class that carry
an ``events`` attribute, inherited ones included.  The shared flow-error listener
lives on the mixin, so these tests check it is registered once and, delivered
the way the controller delivers events, reaches the module's hook exactly once.
"""

from __future__ import annotations

import re

import pytest
from kytos.core import KytosEvent, KytosNApp

from tests.kytos_helpers import mocked_controller, switch_mock
from xmpp_ofc import cookies
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.flow_errors import FLOW_ERROR_EVENT, FlowError
from xmpp_ofc.module_shell import ModuleShell

DPID = "00:00:00:00:00:00:00:01"


class ShellNApp(ModuleShell, KytosNApp):
    """The smallest module NApp: records the flow errors the shell hands it."""

    MODULE = "l2_switch"
    OWNER = Owner.L2_SWITCH

    def _load_json(self) -> None:  # no kytos.json next to a test file
        self.username, self.name = "xmpp_ofc", "shell_test"

    def setup(self) -> None:
        self.start_shell()
        self.errors: list[FlowError] = []

    def execute(self) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def own_flow_error(self, error: FlowError) -> list:
        self.errors.append(error)
        return []


@pytest.fixture
def napp() -> ShellNApp:
    return ShellNApp(mocked_controller(switch_mock(DPID)))


def deliver(napp: ShellNApp, event: KytosEvent) -> None:
    """Register the NApp's listeners as Controller.load_napp does, then notify them."""
    controller = napp.controller
    for name, listeners in napp._listeners.items():
        controller.events_listeners.setdefault(name, []).extend(listeners)
    controller.notify_listeners(event)


def flow_error(owner: Owner, kind: Kind) -> KytosEvent:
    return KytosEvent(
        name=FLOW_ERROR_EVENT,
        content={
            "datapath": switch_mock(DPID),
            "flow": {"cookie": cookies.encode(owner, kind, 1), "match": {}},
            "error_command": "add",
            "error_type": 5,
            "error_code": 1,
            "error_type_name": "OFPET_FLOW_MOD_FAILED",
            "error_code_name": "OFPFMFC_TABLE_FULL",
        },
    )


def test_the_inherited_flow_error_listener_is_collected_once(napp):
    handlers = [
        method.__name__
        for pattern, methods in napp._listeners.items()
        for method in methods
        if re.match(pattern + "$", FLOW_ERROR_EVENT)
    ]
    assert handlers == ["on_flow_error"]


def test_an_error_about_our_flow_reaches_the_hook_exactly_once(napp):
    deliver(napp, flow_error(Owner.L2_SWITCH, Kind.FORWARDING))
    assert [error.dpid for error in napp.errors] == [DPID]


def test_an_error_about_another_modules_flow_is_ignored(napp):
    deliver(napp, flow_error(Owner.RATE_LIMITER, Kind.BLOCK))
    assert napp.errors == []


def test_a_switch_not_restored_gets_no_decision(napp):
    asked = []
    assert not napp.decide_if_active(DPID, lambda: asked.append(1) or [])
    napp.activate(DPID, list)
    assert napp.decide_if_active(DPID, lambda: asked.append(1) or [])
    napp.deactivate(DPID, lambda: None)
    assert not napp.decide_if_active(DPID, lambda: asked.append(1) or [])
    assert asked == [1]
