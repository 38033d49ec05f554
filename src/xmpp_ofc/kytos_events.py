"""Kytos event helpers shared by the bundle's NApps.

Kytos' ``@listen_to`` runs every delivery on a new thread, so two events for
the same switch can be handled in any order.  Handlers that must see events
in the order the buffer delivers them (the OpenFlow byte stream, above all)
use :func:`listen_on_loop` instead: they run inline on the controller's
asyncio loop, one after the other, and therefore must never block.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any


def listen_on_loop(event_name: str, *event_names: str) -> Callable[[Callable], Callable]:
    """Register a NApp method for events, called inline on the event loop.

    ``KytosNApp`` collects every public method that has an ``events``
    attribute; ``@listen_to`` sets it on a thread-spawning wrapper, we set it
    on a wrapper that calls the method directly.  The buffer's dispatch task
    calls it, so it sees events in buffer order and must return quickly (no
    I/O waits, no sleeping).  Publish results with the thread-safe
    ``controller.buffers.<name>.put``.

    An exception is logged and swallowed: if it escaped, it would end the
    Kytos task that dispatches the whole buffer, and every switch would stop
    being served.
    """

    def decorator(handler: Callable) -> Callable:
        logger = logging.getLogger(handler.__module__)

        @functools.wraps(handler)
        def guarded(*args: Any) -> None:
            try:
                handler(*args)
            except Exception:
                logger.exception("%s failed on %r", handler.__qualname__, args[-1])

        guarded.events = [event_name, *event_names]
        return guarded

    return decorator
