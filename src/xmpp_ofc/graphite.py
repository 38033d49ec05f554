"""Push the Prometheus registry to Graphite (plaintext protocol), as the seed did.

Every ``interval`` seconds one TCP connection carries one line per sample::

    <prefix>.<sample name>[.<label>.<value>...] <value> <unix time>

e.g. ``xmpp_ofc.of_packet_ins_total.dp_id.00_00_00_00_00_00_00_01 12.0 1700000000``.
Path segments keep ``[A-Za-z0-9_-]`` and replace anything else with ``_``
(dots would split a segment in Graphite's tree).  ``*_created`` samples are
left out: they are timestamps, not measurements.

Bounded by design: one connection per push with a connect/send timeout, nothing
queued between pushes (a push that fails is dropped; the next one carries the
current values, counters included), and a failure is logged once per outage,
then once more when Graphite is back.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable

from prometheus_client import REGISTRY
from prometheus_client.registry import CollectorRegistry

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def path_segment(text: str) -> str:
    """``text`` as one Graphite path segment (never empty)."""
    return _UNSAFE.sub("_", text) or "_"


def plaintext_lines(registry: CollectorRegistry, prefix: str, timestamp: float) -> list[str]:
    """One plaintext-protocol line per sample of ``registry``, without ``*_created``."""
    stamp = int(timestamp)
    prefix_path = ".".join(path_segment(part) for part in prefix.split(".") if part)
    lines = []
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            segments = [path_segment(sample.name)]
            for name, value in sorted(sample.labels.items()):
                segments += [path_segment(name), path_segment(value)]
            path = ".".join([prefix_path, *segments]) if prefix_path else ".".join(segments)
            lines.append(f"{path} {float(sample.value)!r} {stamp}\n")
    return lines


class GraphitePusher:
    """Pushes a registry to ``host:port`` every ``interval`` s on a daemon thread."""

    def __init__(
        self,
        host: str,
        port: int = 2003,
        *,
        prefix: str = "xmpp_ofc",
        interval: float = 10.0,
        timeout: float = 2.0,
        registry: CollectorRegistry = REGISTRY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not host:
            raise ValueError("Graphite host must not be empty")
        if not 0 < port < 65536:
            raise ValueError(f"Graphite port must be in 1..65535, got {port}")
        if interval <= 0 or timeout <= 0:
            raise ValueError("Graphite interval and timeout must be > 0")
        self.address = (host, port)
        self.prefix = prefix
        self.interval = interval
        self.timeout = timeout
        self.registry = registry
        self.clock = clock
        self.failing = False
        self.pushes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def push_once(self) -> bool:
        """Send the current samples; False (logged once per outage) when it failed."""
        payload = "".join(plaintext_lines(self.registry, self.prefix, self.clock())).encode()
        try:
            with socket.create_connection(self.address, timeout=self.timeout) as sock:
                sock.sendall(payload)
        except OSError as error:
            if not self.failing:
                log.warning(
                    "Graphite push to %s:%s failed (%s); retrying every %s s quietly",
                    *self.address,
                    error,
                    self.interval,
                )
            self.failing = True
            return False
        if self.failing:
            log.info("Graphite push to %s:%s works again", *self.address)
        self.failing = False
        self.pushes += 1
        return True

    def start(self) -> GraphitePusher:
        """Push every ``interval`` seconds until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="graphite-push", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop pushing; waits at most ``timeout`` (default: one send timeout + 1 s)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 1 if timeout is None else timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.push_once()
            except Exception:  # a collector bug must not end the pushes for good
                log.exception("Graphite push failed unexpectedly")


def pusher_from_settings(
    host: str, port: int, prefix: str, interval: float
) -> GraphitePusher | None:
    """A started pusher, or None when ``host`` is empty (Graphite off, the default)."""
    if not host:
        return None
    return GraphitePusher(host, port, prefix=prefix, interval=interval).start()
