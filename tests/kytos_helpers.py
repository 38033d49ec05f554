"""Scaffolding for the tests that drive Kytos, shared so each test file holds only its tests.

* NApp shells (``tests/napps``): a real Kytos ``Controller`` with mocked
  OpenFlow 1.3 switches; the test calls the NApp's handlers with the events
  Kytos would deliver and reads what it published back from the buffers.
* OpenFlow messages as a switch sends them, for both of the above.
* Controller processes (``tests/controller``, ``tests/integration``): the
  launcher in a child process, stopped afterwards with its log shown when it
  logged a traceback.

Imported as ``tests.kytos_helpers`` (``tests`` is a namespace package, like for
``tests.openapi_check``).  Kytos is imported inside the functions: the rootdir
conftest must pin ``VIRTUAL_ENV`` before Kytos is first imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

import pytest

if TYPE_CHECKING:
    from xmpp_ofc.testing.controller import ControllerProcess

#: OpenFlow 1.3, the only version the bundle speaks.
OF_VERSION = 0x04


def drain(buffer: Any) -> list:
    """Every event waiting in a Kytos buffer, oldest first; the buffer is left empty."""
    events = []
    while not buffer.empty():
        events.append(buffer.get())
    return events


def switch_mock(dpid: str, *, connected: bool = True) -> Any:
    """An OpenFlow 1.3 switch mock with a connection, connected unless told otherwise."""
    from kytos.lib.helpers import get_switch_mock

    switch = get_switch_mock(dpid, OF_VERSION)
    switch.is_connected.return_value = connected
    return switch


def mocked_controller(*switches: Any) -> Any:
    """A real Kytos ``Controller`` (not started) that knows ``switches`` by dpid."""
    from kytos.lib.helpers import get_controller_mock

    controller = get_controller_mock()
    controller.switches = {switch.dpid: switch for switch in switches}
    return controller


@contextmanager
def synchronous_main(module_name: str) -> Iterator[ModuleType]:
    """A NApp's ``main`` module whose ``@listen_to`` handlers run on the caller's thread.

    Kytos wraps handlers with ``run_on_thread`` when the module is executed, so
    the module is reloaded with it patched; on exit it is reloaded again so
    later importers get the threaded handlers Kytos really uses.
    """
    module = importlib.import_module(module_name)
    with patch("kytos.core.helpers.run_on_thread", lambda method: method):
        module = importlib.reload(module)
    try:
        yield module
    finally:
        importlib.reload(module)


@pytest.fixture
def api(napp: Any) -> Any:
    """A Flask test client on the REST endpoints of the module's ``napp`` fixture."""
    from kytos.lib.helpers import get_test_client

    return get_test_client(napp.controller, napp)


# --- messages from a switch ---------------------------------------------------------


def pyof_packet_in(
    frame: bytes,
    in_port: int,
    *,
    cookie: int,
    table_id: int = 1,
    buffer_id: int = 0xFFFFFFFF,
    reason: int = 0,
    data: bytes | None = None,
) -> Any:
    """An OpenFlow 1.3 PACKET_IN of ``frame``, received on ``in_port``, missed by flow ``cookie``.

    ``data`` is what the switch sends of the frame (all of it unless told), the
    default buffer id is OFP_NO_BUFFER and table 1 is l2_switch's table.
    """
    from pyof.v0x04.asynchronous.packet_in import PacketIn

    from xmpp_ofc.openflow.match import match_from_dict

    return PacketIn(
        buffer_id=buffer_id,
        total_len=len(frame),
        reason=reason,
        table_id=table_id,
        cookie=cookie,
        match=match_from_dict({"in_port": in_port}),
        data=frame if data is None else data,
    )


# --- controller processes -----------------------------------------------------------


def stop_and_show_traceback(controller: ControllerProcess) -> None:
    """Stop ``controller``; print its log tail if it logged a traceback (pytest shows it)."""
    controller.stop()
    log = controller.log_text()
    if "Traceback" in log:
        print(f"--- {controller.log_path} ---\n{log[-6000:]}")


@contextmanager
def running_controller(
    base_dir: Path, env: dict[str, str] | None = None, **kwargs: Any
) -> Iterator[ControllerProcess]:
    """A started controller with its own base directory, stopped on exit.

    ``kwargs`` go to :class:`ControllerProcess` (``extra_args``, ``expect_napps``...).
    """
    from xmpp_ofc.testing.controller import ControllerProcess

    controller = ControllerProcess(base_dir, env=env, **kwargs)
    controller.start()
    try:
        yield controller
    finally:
        stop_and_show_traceback(controller)
