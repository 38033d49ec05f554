"""Test configuration shared by every test.

Kytos decides its base directory (``VIRTUAL_ENV``) at import time and parses
``sys.argv`` whenever a Controller, Switch or Interface is built.  Before any
test imports Kytos we point the base at a throw-away directory (so no test
writes to ``/etc/kytos`` or the developer's venv), apply the Python 3.11
fixes, and pin ``sys.argv`` while tests run.
"""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def kytos_base() -> Path:
    """The base directory Kytos uses during the tests."""
    return _KYTOS_BASE


def pytest_report_header(config):
    return [f"kytos base dir: {_KYTOS_BASE}", f"python: {sys.version.split()[0]}"]
