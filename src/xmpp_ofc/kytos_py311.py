"""Fixes that make Kytos 2021.1 run on Python 3.11, in one place.

Kytos 2021.1 is the newest Kytos on PyPI and was written for Python 3.6-3.8.
Rather than editing files in site-packages, the launcher (``xmpp_ofc.launcher``)
and the test configuration (``tests/conftest.py``) call :func:`apply` before
Kytos builds a controller.  Every fix is idempotent and has a test in
``tests/unit/test_kytos_py311.py`` that fails without it.

The fixes (numbered as in DESIGN.md section 2):

1. janus 0.4.0 passes ``loop=`` to ``asyncio.Lock/Condition/Event`` (removed
   in 3.10), so building ``KytosBuffers`` raises TypeError.
2. ``Connection.send`` calls ``sendall`` on asyncio's ``TransportSocket``
   (which has no ``sendall`` since 3.9): the first send raised inside the
   msg_out task, killing it silently.  We send through the asyncio transport.
3. ``APIServer`` asks GitHub for the web UI at every start, with no timeout:
   disabled (the controller must start offline).
4. ``KytosConfig`` reads ``sys.argv`` and, with ``VIRTUAL_ENV`` unset, writes
   to ``/etc/kytos``: :func:`ensure_virtual_env` pins the base directory and
   :func:`pinned_argv` pins the command line for code that builds
   Controllers/Switches outside kytosd (tests).
5. Events are named after the protocol, which is the listen port unless it is
   6633/6653, so on any other port of_core hears nothing:
   :func:`fix_protocol_name_default` makes an empty ``protocol_name`` mean
   ``openflow`` (the launcher also writes it into its conf).
6. ``Controller()`` replaces ``sys.excepthook`` so uncaught errors go to
   ``./errlog.log`` instead of stderr: :func:`fix_excepthook`.
7. python-openflow's ``GenericType.pack`` tests ``'value' in dir(value)`` for
   every field it packs; ``dir()`` of an enum member became very slow in 3.11
   and cost 12 % of the controller's CPU under packet-in load
   (docs/benchmarks.md): :func:`fix_pyof_pack_speed` uses ``hasattr``.
8. ``Controller.msg_out_event_handler`` packs each message without a guard:
   one message python-openflow cannot pack (``ValidationError`` in
   ``PacketOut.pack()``, e.g. after a peer's bit-flipped packet-in) ends the
   task and nothing is ever sent to any switch again, while REST answers as if
   all were well.  :func:`fix_core_event_tasks` drops such a message (logged
   with its switch and type, counted in ``xmpp_ofc_of_messages_not_packed``)
   and keeps the raw/msg_in/msg_out/app loops alive across a listener's error
   (counted in ``xmpp_ofc_core_task_failures``).
9. The web stack is newer than Kytos' pins (Flask 3, Werkzeug 3, Flask-SocketIO
   5; docs/web-stack.md).  Flask-SocketIO 5 refuses to start Werkzeug's server
   without a TTY, and Werkzeug >= 2.1 has no ``werkzeug.server.shutdown``, so
   ``kytosd`` neither started its API nor stopped it: :func:`fix_api_server_run`
   serves the app with a Werkzeug server it keeps and shuts down.
10. Flask >= 2.3 refuses ``register_blueprint`` after the first request, so a
    NApp enabled at run time had no routes (AssertionError):
    :func:`fix_late_napp_routes` lets Kytos register them.
11. Werkzeug >= 2.2 builds ``Map._rules`` on the fly, so Kytos' removal of a
    disabled NApp's rules was a no-op and its routes answered 500:
    :func:`fix_remove_napp_endpoints` rebuilds the URL map without them.
12. ``Controller.notify_listeners`` runs ``re.match`` of every listener pattern
    against every event's name, several events per packet-in: ~11 % of the
    controller's CPU under packet-in load after the struct codec (issue 9,
    docs/benchmarks.md).  :func:`fix_notify_listeners_matching` remembers which
    patterns match each event name until the set of patterns changes; the
    listeners called, and their order, are the same.
13. Kytos' JSON error handler answers every ``HTTPException`` with a body and
    a status only, dropping the exception's headers: every 405 lacked the
    ``Allow`` header HTTP requires (RFC 9110, 15.5.6; schemathesis' finding
    on every NApp).  :func:`fix_http_error_headers` keeps them.
14. asyncio buffers without limit what a peer does not read, and its
    ``close()`` waits for that buffer to drain: a switch flooding packet-ins
    and never reading grew RSS without bound and was never closed.
    :func:`fix_output_queue_bound` closes a connection whose output queue is
    full (counted in ``xmpp_ofc_of_output_overflows``) and aborts a closed
    connection that cannot flush.
15. Nothing noticed when a core event task ended: :func:`fix_core_task_watchdog`
    restarts it (logged, counted in ``xmpp_ofc_core_task_restarts``, visible in
    ``xmpp_ofc_core_task_up`` and of_core's ``v1/health``) or, when it keeps
    ending, stops the controller loudly.
16. asyncio delivers signals through its self-pipe, which a packet-in flood
    fills: SIGTERM was lost and the controller ran on (> 30 s, until SIGKILL).
    :func:`fix_signal_delivery` (on the loop the launcher makes with
    :func:`new_event_loop_for_kytosd`) delivers it anyway and exits by force
    if the clean stop takes more than :data:`STOP_DEADLINE` seconds.
17. Kytos queues every chunk a peer sends, unbounded: :func:`fix_input_backlog_bound`
    pauses reading from a connection with more than its budget unhandled
    (counted in ``xmpp_ofc_of_input_pauses``), so TCP pushes back on a flooder.

kytos-utils 2021.1 (the ``kytos`` command), applied by ``xmpp-ofc-kytos``
(:mod:`xmpp_ofc.kytos_cli`) with :func:`apply_kytos_utils`, not by :func:`apply`:
``kytos napps list`` died with IndexError without a terminal (it asks
``stty size``): :func:`fix_kytos_utils_terminal_width`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path

LOG = logging.getLogger(__name__)

_APPLIED_FLAG = "_xmpp_ofc_py311_fixed"


# --- fix 1: janus passes loop= to asyncio primitives ----------------------


def _drop_loop_kwarg(factory):
    """Wrap an asyncio class so a ``loop=`` keyword is accepted and ignored."""

    def build(*args, loop=None, **kwargs):  # noqa: ARG001 - loop is the point
        return factory(*args, **kwargs)

    return build


async def _wait_without_loop(futures, *, loop=None, **kwargs):  # noqa: ARG001
    return await asyncio.wait(futures, **kwargs)


def fix_janus_loop_kwarg() -> None:
    """Give janus an ``asyncio`` namespace whose primitives ignore ``loop=``.

    Only janus' own reference is replaced; the real ``asyncio`` module is not
    touched, so nothing else in the process changes behaviour.
    """
    import janus

    if getattr(janus.asyncio, _APPLIED_FLAG, False):
        return
    shim = types.SimpleNamespace(**{name: getattr(asyncio, name) for name in dir(asyncio)})
    shim.Lock = _drop_loop_kwarg(asyncio.Lock)
    shim.Condition = _drop_loop_kwarg(asyncio.Condition)
    shim.Event = _drop_loop_kwarg(asyncio.Event)
    shim.wait = _wait_without_loop
    setattr(shim, _APPLIED_FLAG, True)
    janus.asyncio = shim


# --- fix 2: Connection.send through the asyncio transport ------------------


def _call_on_transport_loop(transport, function, *args) -> None:
    """Call ``function`` now if we are on the transport's loop, else schedule it.

    asyncio transports are not thread-safe.  On the loop thread we act at
    once (keeps message order); from NApp threads we hand over to the loop.
    """
    loop = transport._loop  # selector transports keep their loop here
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        function(*args)
    else:
        loop.call_soon_threadsafe(function, *args)


def _write_if_open(transport, buffer: bytes) -> None:
    if not transport.is_closing():
        transport.write(buffer)


def _close_if_open(transport) -> None:
    if not transport.is_closing():
        transport.close()


def _transport_send(self, buffer: bytes) -> None:
    """Send ``buffer`` to the switch without blocking, from any thread."""
    transport = getattr(self, "transport", None)
    if transport is None or not self.is_alive() or transport.is_closing():
        LOG.debug("Connection %s: not sending %d bytes, closed", self.id, len(buffer))
        return
    _call_on_transport_loop(transport, _write_if_open, transport, buffer)


def _transport_close(self) -> None:
    """Close the connection: mark it FINISHED and close the transport."""
    from kytos.core.connection import ConnectionState

    self.state = ConnectionState.FINISHED
    if self.switch and self.switch.connection is self:
        self.switch.connection = None
    transport = getattr(self, "transport", None)
    if transport is not None:
        _call_on_transport_loop(transport, _close_if_open, transport)
    self.socket = None


def fix_connection_send() -> None:
    """Route ``Connection.send``/``close`` through the asyncio transport."""
    from kytos.core import atcp_server
    from kytos.core.connection import Connection

    if getattr(Connection, _APPLIED_FLAG, False):
        return
    original_connection_made = atcp_server.KytosServerProtocol.connection_made

    def connection_made(self, transport):
        original_connection_made(self, transport)
        self.connection.transport = transport

    atcp_server.KytosServerProtocol.connection_made = connection_made
    Connection.transport = None
    Connection.send = _transport_send
    Connection.close = _transport_close
    setattr(Connection, _APPLIED_FLAG, True)


# --- fix 3: no web-UI download at start ------------------------------------


def fix_web_ui_download() -> None:
    """Replace ``APIServer.update_web_ui`` with an offline no-op."""
    from kytos.core.api_server import APIServer

    if getattr(APIServer, _APPLIED_FLAG, False):
        return

    def update_web_ui(self, version="latest", force=True):  # noqa: ARG001
        return "web UI download disabled by xmpp_ofc (the controller runs offline)"

    APIServer.update_web_ui = update_web_ui
    setattr(APIServer, _APPLIED_FLAG, True)


# --- fix 4: VIRTUAL_ENV and sys.argv ---------------------------------------


def ensure_virtual_env() -> Path:
    """Make Kytos' base directory the running environment, never ``/``.

    Kytos reads ``VIRTUAL_ENV`` at import time; if its config module was
    already imported with the wrong base, it is corrected too.
    """
    base = os.environ.get("VIRTUAL_ENV") or sys.prefix
    os.environ["VIRTUAL_ENV"] = base
    config = sys.modules.get("kytos.core.config")
    if config is not None and base != config.BASE_ENV:
        config.BASE_ENV = base
    return Path(base)


@contextlib.contextmanager
def pinned_argv(argv: list[str] | None = None) -> Iterator[None]:
    """Run a block with ``sys.argv`` set to ``argv`` (default: just the program).

    ``KytosConfig()`` parses ``sys.argv`` in every Controller/Switch/Interface
    constructor; under pytest it would read pytest's flags (``-v`` exits 0).
    """
    saved = sys.argv
    sys.argv = list(argv) if argv is not None else ["kytosd"]
    try:
        yield
    finally:
        sys.argv = saved


# --- fix 5: the protocol is OpenFlow on any port ------------------------------


def fix_protocol_name_default() -> None:
    """Read an empty ``protocol_name`` (the shipped kytos.conf) as ``openflow``.

    Kytos names its raw events ``kytos/core.<protocol_name>.*`` and, with the
    name empty, falls back to the listen port number unless that is 6633/6653:
    ``kytosd -P 16653`` then emits ``kytos/core.16653.raw.in``, which no
    OpenFlow NApp listens to.  Kytos 2021.1 speaks only OpenFlow.
    """
    from kytos.core.config import KytosConfig

    if getattr(KytosConfig, _APPLIED_FLAG, False):
        return
    original_parse_options = KytosConfig._parse_options

    def _parse_options(self, argv):
        options = original_parse_options(self, argv)
        if not options.protocol_name:
            options.protocol_name = "openflow"
        return options

    KytosConfig._parse_options = _parse_options
    setattr(KytosConfig, _APPLIED_FLAG, True)


# --- fix 6: errors stay on stderr ------------------------------------------


def _log_uncaught(exc_type, exc, traceback) -> None:
    logging.getLogger("kytos.core.controller").critical(
        "Uncaught exception", exc_info=(exc_type, exc, traceback)
    )
    sys.__excepthook__(exc_type, exc, traceback)


def fix_excepthook() -> None:
    """Make the hook ``Controller()`` installs log and print, not hide.

    ``Controller.__init__`` sets ``sys.excepthook = exc_handler``, a function
    that writes to ``./errlog.log``; we swap the function it installs.
    """
    from kytos.core import controller

    controller.exc_handler = _log_uncaught
    if sys.excepthook.__name__ == "exc_handler":
        sys.excepthook = _log_uncaught


# --- fix 7: pyof's pack without dir() ----------------------------------------


def fix_pyof_pack_speed() -> None:
    """Make ``GenericType.pack`` unwrap enums with ``hasattr``, not ``dir()``.

    Same bytes, same errors; only the test for "has a ``value``" changes.
    """
    import struct

    from pyof.foundation import base
    from pyof.foundation.exceptions import PackException

    if getattr(base.GenericType, _APPLIED_FLAG, False):
        return
    original_pack = base.GenericType.pack

    def pack(self, value=None):
        if isinstance(value, type(self)):
            return value.pack()
        if value is None:
            value = self.value
        elif hasattr(value, "value"):  # enum or bitmask: pack its int
            value = value.value
        try:
            return struct.pack(self._fmt, value)
        except struct.error:
            raise PackException(
                f'Expected {type(self).__name__}, found value "{value}" '
                f"of type {type(value).__name__}"
            ) from None

    pack.__doc__ = original_pack.__doc__
    base.GenericType.pack = pack
    setattr(base.GenericType, _APPLIED_FLAG, True)


# --- fix 8: the core event tasks survive every message ---------------------------


def _message_label(message) -> str:
    """``ofpt_packet_out`` for a pyof message; ``unknown`` when even the header is broken."""
    try:
        return str(message.header.message_type.name).lower()
    except Exception:
        return "unknown"


def _destination_dpid(destination) -> str:
    """The switch's dpid, or the connection's id before the handshake names it."""
    switch = getattr(destination, "switch", None)
    dpid = getattr(switch, "dpid", None)
    return str(dpid) if dpid else f"connection {getattr(destination, 'id', '?')}"


def _count_core_failure(task: str) -> None:
    from xmpp_ofc import metrics

    metrics.CORE_TASK_FAILURES.labels(task=task).inc()


def send_one_message(controller, triggered_event) -> None:
    """Pack and send one msg_out event; a message that fails to pack is dropped, not fatal."""
    from kytos.core.connection import ConnectionState

    from xmpp_ofc import metrics

    message = triggered_event.content["message"]
    destination = triggered_event.destination
    if not destination or destination.state == ConnectionState.FINISHED:
        controller.log.info("connection closed. Cannot send message")
        return
    try:
        packet = message.pack()
    except Exception as error:
        dpid, kind = _destination_dpid(destination), _message_label(message)
        metrics.MESSAGES_NOT_PACKED.labels(dp_id=dpid, type=kind).inc()
        controller.log.error("dropped %s to %s: it does not pack: %r", kind, dpid, error)
        return
    destination.send(packet)
    controller.notify_listeners(triggered_event)


def _notify(controller, event) -> None:
    """What Kytos' raw, msg_in and app tasks do with each event."""
    controller.notify_listeners(event)


def _notify_raw(controller, event) -> None:
    """The raw task's work, then the input budget of fix 17 gets the bytes back."""
    try:
        controller.notify_listeners(event)
    finally:
        data = event.content.get("new_data") if event.name.endswith(".raw.in") else None
        if data:
            input_consumed(event.content.get("source"), len(data))


#: Core task -> (the buffer it drains, ``Controller.buffers.<name>``; what it does per event).
_CORE_TASKS: dict[str, tuple[str, Callable]] = {
    "raw_event_handler": ("raw", _notify_raw),
    "msg_in_event_handler": ("msg_in", _notify),
    "msg_out_event_handler": ("msg_out", send_one_message),
    "app_event_handler": ("app", _notify),
}


async def _drain(controller, task: str, buffer_name: str, handle: Callable) -> None:
    """Kytos' loop over one buffer, except that it logs, counts and survives ``handle``'s errors."""
    controller.log.info("%s started (guarded)", task)
    buffer = getattr(controller.buffers, buffer_name)
    while True:
        event = await buffer.aget()
        if event.name == "kytos/core.shutdown":
            if buffer_name != "msg_out":
                controller.notify_listeners(event)
            break
        try:
            handle(controller, event)
        except Exception:
            _count_core_failure(task)
            controller.log.exception("%s: event %s raised; the task goes on", task, event.name)


def fix_core_event_tasks() -> None:
    """Replace the raw/msg_in/msg_out handlers of ``Controller`` with guarded loops."""
    from kytos.core.controller import Controller

    if getattr(Controller, _APPLIED_FLAG, False):
        return

    def guarded(task: str, buffer_name: str, handle: Callable) -> Callable:
        async def method(self) -> None:
            await _drain(self, task, buffer_name, handle)

        method.__name__ = task
        return method

    for task, (buffer_name, handle) in _CORE_TASKS.items():
        setattr(Controller, task, guarded(task, buffer_name, handle))
    setattr(Controller, _APPLIED_FLAG, True)


# --- fix 9: start and stop the API server on Werkzeug 3 / Flask-SocketIO 5 --


def fix_api_server_run() -> None:
    """Serve Kytos' Flask app with a Werkzeug server that ``stop_api_server`` can stop."""
    from kytos.core.api_server import APIServer
    from werkzeug.serving import make_server

    if getattr(APIServer.run, _APPLIED_FLAG, False):
        return

    def run(self) -> None:
        try:
            # threaded, like SocketIO.run(): the app is wrapped by Flask-SocketIO's middleware.
            self._xmpp_ofc_http = make_server(self.listen, self.port, self.app, threaded=True)
        except OSError as exception:
            msg = f"Couldn't start API Server: {exception}"
            self.log.critical(msg)
            sys.exit(msg)
        self._xmpp_ofc_http.serve_forever()

    def shutdown_api(self):
        from http import HTTPStatus

        from flask import request

        allowed = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        if request.host not in allowed:
            return "", HTTPStatus.FORBIDDEN.value
        http = getattr(self, "_xmpp_ofc_http", None)
        if http is not None:
            # shutdown() waits for serve_forever to return: not from this request's thread.
            threading.Thread(target=http.shutdown, name="api-shutdown", daemon=True).start()
        return "API Server shutting down...", HTTPStatus.OK.value

    run.__doc__ = "Run the Flask API server until ``shutdown_api`` (xmpp_ofc fix 9)."
    setattr(run, _APPLIED_FLAG, True)
    APIServer.run = run
    APIServer.shutdown_api = shutdown_api


# --- fix 10: NApp routes registered after the first request ---------------


def fix_late_napp_routes() -> None:
    """Let Kytos register a NApp's blueprint after the app served its first request."""
    from kytos.core.api_server import APIServer

    original = APIServer.register_napp_endpoints
    if getattr(original, _APPLIED_FLAG, False):
        return

    def register_napp_endpoints(self, napp) -> None:
        # Flask's guard is for apps set up at import; Kytos adds NApps at run time by design.
        served, self.app._got_first_request = self.app._got_first_request, False
        try:
            original(self, napp)
        finally:
            self.app._got_first_request = served

    setattr(register_napp_endpoints, _APPLIED_FLAG, True)
    APIServer.register_napp_endpoints = register_napp_endpoints


# --- fix 11: really remove a disabled NApp's routes -------------------------


def _rebuild_url_map(url_map, prefix: str) -> None:
    """Drop every rule under ``prefix`` from a Werkzeug >= 2.2 ``Map``."""
    from werkzeug.routing.matcher import StateMachineMatcher

    kept: dict = {}
    matcher = StateMachineMatcher(url_map.merge_slashes)
    for endpoint, rules in url_map._rules_by_endpoint.items():
        for rule in rules:
            if not rule.rule.startswith(prefix):
                kept.setdefault(endpoint, []).append(rule)
                matcher.add(rule)
    url_map._rules_by_endpoint = kept
    url_map._matcher = matcher
    url_map._remap = True


def fix_remove_napp_endpoints() -> None:
    """Make ``remove_napp_endpoints`` remove the rules, not a copy of them."""
    from kytos.core.api_server import APIServer

    original = APIServer.remove_napp_endpoints
    if getattr(original, _APPLIED_FLAG, False):
        return

    def remove_napp_endpoints(self, napp) -> None:
        original(self, napp)
        _rebuild_url_map(self.app.url_map, self._NAPP_PREFIX.format(napp=napp))

    setattr(remove_napp_endpoints, _APPLIED_FLAG, True)
    APIServer.remove_napp_endpoints = remove_napp_endpoints


# --- fix 12: notify_listeners matches each event name once ------------------------

#: Event names remembered per pattern set (names are a small fixed vocabulary;
#: the bound only guards against a NApp that puts ids in its event names).
_MATCH_CACHE_LIMIT = 4096
_MATCH_CACHE_ATTR = "_xmpp_ofc_listener_matches"


def _anchored(pattern: str) -> str:
    """Kytos' rule: a pattern matches the whole name (``shutdown`` is not ``shutdown.x``)."""
    if pattern[-1] != "$" or pattern[-2] == "\\":
        return pattern + "$"
    return pattern


def notify_listeners(self, event) -> None:
    """Kytos' ``notify_listeners`` with the pattern matches of each event name cached."""
    import re

    self.log.debug("looking for listeners for %s", event)
    table = self.events_listeners
    patterns = tuple(table)
    cached = getattr(self, _MATCH_CACHE_ATTR, None)
    if cached is None or cached[0] != patterns:
        cached = (patterns, {})
        setattr(self, _MATCH_CACHE_ATTR, cached)
    by_name = cached[1]
    name = event.name
    matched = by_name.get(name)
    if matched is None:
        matched = tuple(p for p in patterns if re.match(_anchored(p), name))
        if len(by_name) >= _MATCH_CACHE_LIMIT:
            by_name.clear()
        by_name[name] = matched
    for pattern in matched:
        listeners = table.get(pattern)
        if listeners:
            for listener in listeners:
                listener(event)


def fix_notify_listeners_matching() -> None:
    """Replace ``Controller.notify_listeners`` with the caching one (same calls, same order)."""
    from kytos.core.controller import Controller

    if getattr(Controller.notify_listeners, _APPLIED_FLAG, False):
        return
    notify_listeners.original = Controller.notify_listeners
    setattr(notify_listeners, _APPLIED_FLAG, True)
    Controller.notify_listeners = notify_listeners


# --- fix 13: HTTP errors keep their headers (Allow on 405) -----------------


def json_http_error(exception):
    """Kytos' JSON error body, with the headers the exception carries (``Allow``, ...)."""
    from flask import jsonify

    response = jsonify(
        {"code": exception.code, "name": exception.name, "description": exception.description}
    )
    response.status_code = exception.code or 500
    for name, value in exception.get_headers():
        if name.lower() != "content-type":  # the body is JSON, not Werkzeug's HTML
            response.headers.add(name, value)
    return response


def fix_http_error_headers() -> None:
    """Replace Kytos' ``HTTPException`` handler by :func:`json_http_error` in every APIServer."""
    from kytos.core.api_server import APIServer
    from werkzeug.exceptions import HTTPException

    original = APIServer.__init__
    if getattr(original, _APPLIED_FLAG, False):
        return

    def __init__(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        self.app.register_error_handler(HTTPException, json_http_error)

    setattr(__init__, _APPLIED_FLAG, True)
    APIServer.__init__ = __init__


# --- fix 14: a peer that never reads cannot grow our memory -------------------

#: Bytes that may wait in a connection's asyncio write buffer (of_core sets it
#: from its MAX_OUTPUT_QUEUE_BYTES setting through :func:`bound_output_queues`).
_output_limit = [4 * 1024 * 1024]
#: Seconds a closed connection may take to flush what it still has to send
#: before its transport is aborted (a peer that never reads never drains it).
CLOSE_FLUSH_GRACE = 1.0


def _abort_later(transport) -> None:
    if transport.get_write_buffer_size():
        transport._loop.call_later(CLOSE_FLUSH_GRACE, transport.abort)


def fix_output_queue_bound() -> None:
    """Bound each connection's output queue; make ``close`` end even a never-reading peer.

    asyncio buffers whatever the peer does not read, without limit, and its
    ``close()`` waits for that buffer to drain, so a switch that floods
    packet-ins and never reads our packet-outs grew the controller without
    bound and was never really closed.  Now a send that would queue more than
    the limit drops that message, counts it (``xmpp_ofc_of_output_overflows``),
    logs it and closes the connection; a closed connection that still has
    bytes to flush is aborted after :data:`CLOSE_FLUSH_GRACE` seconds.
    """
    from kytos.core.connection import Connection

    fix_connection_send()
    if getattr(Connection.send, "_xmpp_ofc_bounded", False):
        return
    send, close = Connection.send, Connection.close

    def bounded_send(self, buffer: bytes) -> None:
        from xmpp_ofc import metrics

        transport = getattr(self, "transport", None)
        if transport is not None and not transport.is_closing():
            queued = transport.get_write_buffer_size()
            if queued + len(buffer) > _output_limit[0]:
                metrics.OF_OUTPUT_OVERFLOWS.inc()
                LOG.warning(
                    "%s does not read: %d bytes queued, limit %d; dropping a %d-byte message "
                    "and closing the connection",
                    _destination_dpid(self),
                    queued,
                    _output_limit[0],
                    len(buffer),
                )
                self.close()
                return
        send(self, buffer)

    def close_or_abort(self) -> None:
        transport = getattr(self, "transport", None)
        close(self)
        if transport is not None:
            _call_on_transport_loop(transport, _abort_later, transport)

    bounded_send._xmpp_ofc_bounded = True
    Connection.send = bounded_send
    Connection.close = close_or_abort


def bound_output_queues(limit_bytes: int) -> None:
    """Apply :func:`fix_output_queue_bound` with this many bytes per connection."""
    if limit_bytes <= 0:
        raise ValueError(f"the output queue limit must be positive, got {limit_bytes}")
    _output_limit[0] = int(limit_bytes)
    fix_output_queue_bound()


# --- fix 15: a watchdog over the core event tasks -------------------------------

#: Restarts of one task allowed within WATCHDOG_WINDOW seconds; one more stops the controller.
WATCHDOG_MAX_RESTARTS = 5
WATCHDOG_WINDOW = 60.0
_task_health: dict[str, dict] = {}
_task_restarts: dict[str, list[float]] = {}


def _stop_loudly(controller, reason: str) -> None:
    """Stop the controller as SIGTERM does (kytosd's handler), after a critical log line."""
    import signal

    controller.log.critical("xmpp_ofc watchdog: %s; stopping the controller", reason)
    os.kill(os.getpid(), signal.SIGTERM)


#: What the watchdog calls when a task keeps ending (tests replace it).
stop_controller_loudly: Callable = _stop_loudly


def core_task_health() -> dict:
    """``{"healthy": bool, "tasks": {task: {"running", "restarts", "last_error"}}}``.

    Healthy means every watched task runs (none watched yet: not healthy).
    """
    tasks = {name: dict(state) for name, state in _task_health.items()}
    healthy = bool(tasks) and all(state["running"] for state in tasks.values())
    return {"healthy": healthy, "tasks": tasks}


def _set_running(task: str, running: bool, error: str | None = None) -> None:
    from xmpp_ofc import metrics

    state = _task_health.setdefault(task, {"running": False, "restarts": 0, "last_error": None})
    state["running"] = running
    if error is not None:
        state["last_error"] = error
    metrics.CORE_TASK_UP.labels(task=task).set(1 if running else 0)


def _watch(controller, name: str, task) -> None:
    import functools

    _set_running(name, True)
    task.add_done_callback(functools.partial(_core_task_done, controller, name))


def _core_task_done(controller, name: str, task) -> None:
    """A watched task ended: fine while stopping; otherwise restart it, or stop loudly."""
    import time

    from xmpp_ofc import metrics

    if getattr(controller, "_xmpp_ofc_stopping", False):
        _set_running(name, False)
        return
    if task.cancelled():
        error = "cancelled"
    else:
        exception = task.exception()
        error = repr(exception) if exception is not None else "returned"
    _set_running(name, False, error)
    now = time.monotonic()
    recent = [t for t in _task_restarts.get(name, []) if now - t < WATCHDOG_WINDOW]
    if len(recent) >= WATCHDOG_MAX_RESTARTS:
        stop_controller_loudly(
            controller,
            f"Kytos core task {name} ended ({error}) {len(recent) + 1} times "
            f"within {WATCHDOG_WINDOW:g} s",
        )
        return
    _task_restarts[name] = [*recent, now]
    controller.log.critical(
        "Kytos core task %s ended unexpectedly (%s); restarting it", name, error
    )
    metrics.CORE_TASK_RESTARTS.labels(task=name).inc()
    _task_health[name]["restarts"] += 1
    replacement = task.get_loop().create_task(getattr(controller, name)())
    tasks = getattr(controller, "_tasks", None)
    if isinstance(tasks, list):
        tasks[:] = [replacement if t is task else t for t in tasks]
    _watch(controller, name, replacement)


def watch_core_tasks(controller) -> None:
    """Watch the raw/msg_in/msg_out/app tasks ``start_controller`` created."""
    for task in list(getattr(controller, "_tasks", [])):
        name = getattr(task.get_coro(), "__name__", "")
        if name in _CORE_TASKS:
            _watch(controller, name, task)


def fix_core_task_watchdog() -> None:
    """Restart a core event task that ends while the controller runs (or stop loudly).

    Fix 8 keeps the loops alive across any ``Exception``; what can still end
    one is a cancellation or a ``BaseException`` out of a listener that runs on
    the loop.  Before, the controller then went on answering REST as if all
    were well while no switch was served.  Now the end is logged (critical),
    counted (``xmpp_ofc_core_task_restarts``), shown by ``xmpp_ofc_core_task_up``
    and ``GET /api/kytos/of_core/v1/health``, and the task is restarted; a task
    that ends more than :data:`WATCHDOG_MAX_RESTARTS` times within
    :data:`WATCHDOG_WINDOW` seconds stops the controller (SIGTERM to itself).
    """
    from kytos.core.controller import Controller

    if getattr(Controller.start_controller, _APPLIED_FLAG, False):
        return
    start, stop = Controller.start_controller, Controller.stop_controller

    def start_controller(self, *args, **kwargs):
        self._xmpp_ofc_stopping = False
        result = start(self, *args, **kwargs)
        watch_core_tasks(self)
        return result

    def stop_controller(self, *args, **kwargs):
        self._xmpp_ofc_stopping = True
        return stop(self, *args, **kwargs)

    setattr(start_controller, _APPLIED_FLAG, True)
    Controller.start_controller = start_controller
    Controller.stop_controller = stop_controller


# --- fix 16: SIGTERM always stops kytosd, within a deadline ---------------------

#: Seconds from SIGTERM/SIGINT to a forced exit if the clean stop has not ended.
STOP_DEADLINE = 4.5


def _exit_after_deadline(signum: int) -> None:
    """Thread body: if the process is still here after STOP_DEADLINE, dump stacks and exit."""
    import faulthandler
    import time

    time.sleep(STOP_DEADLINE)
    LOG.critical(
        "signal %d: the clean stop took more than %g s; exiting now", signum, STOP_DEADLINE
    )
    faulthandler.dump_traceback(all_threads=True)
    os._exit(128 + signum)


def _arm_stop_deadline(signum: int, armed: list) -> None:
    if not armed:
        armed.append(signum)
        threading.Thread(
            target=_exit_after_deadline, args=(signum,), name="stop-deadline", daemon=True
        ).start()


def fix_signal_delivery(loop) -> None:
    """Make kytosd's SIGTERM/SIGINT handler run even on a flooded loop, and end in time.

    asyncio delivers signals through its self-pipe, the same pipe every
    ``call_soon_threadsafe`` writes to.  Under a packet-in flood (janus puts
    from NApp threads) the pipe is full, the signal's byte is dropped
    ("Exception ignored when trying to write to the signal wakeup fd") and
    SIGTERM does nothing.  Here the Python-level handler also schedules
    kytosd's callback directly (once, whichever path comes first), and a
    SIGTERM/SIGINT arms a deadline: if the clean stop has not ended after
    :data:`STOP_DEADLINE` seconds, the stacks are dumped and the process exits.
    """
    import signal

    if getattr(loop, _APPLIED_FLAG, False):
        return
    original = loop.add_signal_handler
    armed: list = []

    def add_signal_handler(sig, callback, *args):
        if sig not in (signal.SIGTERM, signal.SIGINT):
            return original(sig, callback, *args)
        fired: list = []

        def once() -> None:
            _arm_stop_deadline(sig, armed)
            if not fired:
                fired.append(sig)
                callback(*args)

        original(sig, once)

        def on_signal(signum, frame) -> None:  # noqa: ARG001 - signal API
            _arm_stop_deadline(signum, armed)
            loop.call_soon_threadsafe(once)

        signal.signal(sig, on_signal)
        return None

    loop.add_signal_handler = add_signal_handler
    setattr(loop, _APPLIED_FLAG, True)


def new_event_loop_for_kytosd():
    """A new current event loop with :func:`fix_signal_delivery` applied (kytosd uses it)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    fix_signal_delivery(loop)
    return loop


# --- fix 17: a per-connection input budget ------------------------------------------

#: Bytes a connection may have received and not yet had handled (queued on the
#: raw buffer); past it reading pauses (of_core sets it: MAX_INPUT_BACKLOG_BYTES).
_input_limit = [1024 * 1024]


def input_consumed(connection, size: int) -> None:
    """``size`` bytes of ``connection`` were handled: resume reading below half the budget."""
    if connection is None:
        return
    backlog = max(0, getattr(connection, "_xmpp_ofc_backlog", 0) - size)
    connection._xmpp_ofc_backlog = backlog
    transport = getattr(connection, "_xmpp_ofc_paused", None)
    if transport is not None and backlog <= _input_limit[0] // 2:
        connection._xmpp_ofc_paused = None
        if not transport.is_closing():
            transport.resume_reading()


def fix_input_backlog_bound() -> None:
    """Stop reading from a connection whose input waits unhandled past the budget.

    Kytos turns every chunk a peer sends into a raw.in event (and a task that
    puts it on an unbounded queue) at once, so a peer sending faster than the
    controller handles grew memory without bound and delayed every other
    switch's input behind its own.  Now a connection with more than the budget
    queued is paused (TCP pushes back on the peer; counted in
    ``xmpp_ofc_of_input_pauses``) and resumed once the raw task has handled
    half of it.
    """
    from kytos.core.atcp_server import KytosServerProtocol

    original = KytosServerProtocol.data_received
    if getattr(original, _APPLIED_FLAG, False):
        return

    def data_received(self, data: bytes) -> None:
        connection = self.connection
        backlog = getattr(connection, "_xmpp_ofc_backlog", 0) + len(data)
        connection._xmpp_ofc_backlog = backlog
        original(self, data)
        if backlog > _input_limit[0] and getattr(connection, "_xmpp_ofc_paused", None) is None:
            from xmpp_ofc import metrics

            metrics.OF_INPUT_PAUSES.inc()
            connection._xmpp_ofc_paused = self.transport
            self.transport.pause_reading()
            LOG.debug(
                "%s: %d bytes unhandled; reading paused", _destination_dpid(connection), backlog
            )

    setattr(data_received, _APPLIED_FLAG, True)
    KytosServerProtocol.data_received = data_received


def bound_input_backlog(limit_bytes: int) -> None:
    """Apply :func:`fix_input_backlog_bound` with this many bytes per connection."""
    if limit_bytes <= 0:
        raise ValueError(f"the input backlog limit must be positive, got {limit_bytes}")
    _input_limit[0] = int(limit_bytes)
    fix_input_backlog_bound()


def apply() -> None:
    """Apply every fix that can be applied before a Controller exists."""
    ensure_virtual_env()
    fix_janus_loop_kwarg()
    fix_connection_send()
    fix_web_ui_download()
    fix_protocol_name_default()
    fix_excepthook()
    fix_pyof_pack_speed()
    fix_core_event_tasks()
    fix_api_server_run()
    fix_late_napp_routes()
    fix_remove_napp_endpoints()
    fix_http_error_headers()
    fix_notify_listeners_matching()
    fix_output_queue_bound()
    fix_core_task_watchdog()
    fix_input_backlog_bound()


# --- kytos-utils (the ``kytos`` command): applied by ``xmpp-ofc-kytos`` only ---------


def _print_napps(napps) -> None:
    """kytos-utils' ``NAppsAPI.print_napps``, with the terminal width from shutil."""
    import shutil

    if not napps:
        print("No NApps found.")
        return
    stat_w = 6
    name_w = max(len(n[1]) for n in napps)
    desc_w = max(len(n[2]) for n in napps)
    term_w = shutil.get_terminal_size((120, 24)).columns
    remaining = max(0, term_w - stat_w - name_w - 6)
    desc_w = min(desc_w, remaining)
    widths = (stat_w, name_w, desc_w)
    print(f"\n{'Status':^{stat_w}} | {'NApp ID':^{name_w}} | {'Description':^{desc_w}}")
    print("=+=".join("=" * w for w in widths))
    for status, name, description in napps:
        cut = (description[: desc_w - 3] + "...") if len(description) > desc_w else description
        print(f"{status:^{stat_w}} | {name:<{name_w}} | {cut:<{desc_w}}")
    print("\nStatus: (i)nstalled, (e)nabled\n")


def fix_kytos_utils_terminal_width() -> None:
    """Let ``kytos napps list`` print without a terminal (pipes, CI, ``| grep``).

    kytos-utils 2021.1 reads the width from ``os.popen('stty size')``, which
    prints nothing without a TTY, so the listing died with IndexError.
    """
    from kytos.cli.commands.napps.api import NAppsAPI

    if getattr(NAppsAPI.print_napps, _APPLIED_FLAG, False):
        return
    setattr(_print_napps, _APPLIED_FLAG, True)
    NAppsAPI.print_napps = staticmethod(_print_napps)


def apply_kytos_utils() -> None:
    """The kytos-utils fixes (kytosd needs none of them)."""
    fix_kytos_utils_terminal_width()
