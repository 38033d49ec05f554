"""Bounded polling for tests that watch another process (a controller, a switch, OVS).

Imported as ``tests.waiting``.  Every wait has a timeout; on expiry the last
(falsy) value is returned so the caller's assertion states what was missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Call ``condition`` until it returns something truthy or ``timeout`` passed; return that."""
    deadline = time.monotonic() + timeout
    while not (result := condition()) and time.monotonic() < deadline:
        time.sleep(interval)
    return result


def wait_for(condition: Callable[[], T], timeout: float, interval: float = 0.3) -> T:
    """:func:`wait_until` at the pace of views that cost a subprocess or a REST call per look.

    The OVS integration tests poll ``ovs-ofctl dump-flows`` and the controller's
    API; a slower pace keeps that load away from what they measure.
    """
    return wait_until(condition, timeout, interval)
