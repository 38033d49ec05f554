"""Test configuration shared by every test.

Kytos decides its base directory (``VIRTUAL_ENV``) at import time and parses
``sys.argv`` whenever a Controller, Switch or Interface is built.  Before any
test imports Kytos we point the base at a throw-away directory (so no test
writes to ``/etc/kytos`` or the developer's venv), apply the Python 3.11
fixes, and pin ``sys.argv`` while tests run.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import pytest

_KYTOS_BASE = Path(tempfile.mkdtemp(prefix="xmpp_ofc-test-kytos-"))
os.environ["VIRTUAL_ENV"] = str(_KYTOS_BASE)

from xmpp_ofc import kytos_py311  # noqa: E402 - must follow the VIRTUAL_ENV pin

kytos_py311.apply()


@pytest.fixture(autouse=True, scope="session")
def _pinned_argv():
    """Keep pytest's own flags away from ``KytosConfig``."""
    with kytos_py311.pinned_argv(["kytosd"]):
        yield


@pytest.fixture(autouse=True)
def _main_thread_event_loop():
    """Give the main thread an event loop if an earlier ``asyncio.run`` left none.

    Kytos constructors (Controller, KytosBuffers) call ``asyncio.get_event_loop()``.
    """
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    yield


@pytest.fixture(scope="session")
def kytos_base() -> Path:
    """The base directory Kytos uses during the tests."""
    return _KYTOS_BASE


def pytest_report_header(config):
    return [f"kytos base dir: {_KYTOS_BASE}", f"python: {sys.version.split()[0]}"]


@pytest.fixture
def controller_factory(tmp_path):
    """Start controllers (``ControllerProcess``) that are stopped after the test.

    ``controller_factory(env={...})`` returns a started controller with its
    own base directory under ``tmp_path``; on failure the controller's log is
    printed so the reason is visible in CI.
    """
    from tests.kytos_helpers import stop_and_show_traceback
    from xmpp_ofc.testing.controller import ControllerProcess

    started: list[ControllerProcess] = []

    def start(env: dict[str, str] | None = None, name: str | None = None, **kwargs):
        base = tmp_path / (name or f"controller{len(started)}")
        controller = ControllerProcess(base, env=env, **kwargs)
        started.append(controller)
        return controller.start()

    yield start
    for controller in started:
        stop_and_show_traceback(controller)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With ``XMPP_OFC_REQUIRE_ALL=1`` (set by CI) a skipped test fails.

    The real-OVS, XMPP and browser tests skip on a machine without root or
    their Debian packages; in CI that would hide a gap, so there it is an error.
    """
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("XMPP_OFC_REQUIRE_ALL") == "1" and report.skipped:
        if hasattr(report, "wasxfail"):
            return
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, but XMPP_OFC_REQUIRE_ALL=1 (CI runs every test): {reason}"
