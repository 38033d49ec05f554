"""One test per Python 3.11 fix in ``xmpp_ofc.kytos_py311``.

Each test exercises the behaviour the fix restores, so it fails when the fix
is removed from ``apply()``.  The subprocess tests also show, in a clean
interpreter without the fixes, that the breakage is real (so the fix is not
dead code when Kytos is upgraded: the "without" test starts failing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from unittest import mock

import pytest

from xmpp_ofc import kytos_py311, launcher


def run_clean_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (no fixes applied), VIRTUAL_ENV in a temp dir."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


# --- fix 1: janus loop= ---------------------------------------------------------


def test_kytos_buffers_build_and_carry_events_inside_a_running_loop():
    from kytos.core.buffers import KytosBuffers
    from kytos.core.events import KytosEvent

    async def round_trip() -> str:
        buffers = KytosBuffers(loop=asyncio.get_running_loop())
        buffers.app.put(KytosEvent(name="xmpp_ofc/test.ping"))
        event = await asyncio.wait_for(buffers.app.aget(), 5)
        return event.name

    assert asyncio.run(round_trip()) == "xmpp_ofc/test.ping"


def test_without_fix_janus_rejects_the_loop_keyword(tmp_path):
    result = run_clean_python(
        "import asyncio, janus\n"
        "loop = asyncio.new_event_loop()\n"
        "try:\n    janus.Queue(loop=loop)\nexcept TypeError as e:\n    print('TypeError', e)\n",
        env={"VIRTUAL_ENV": str(tmp_path)},
    )
    assert "TypeError" in result.stdout, result.stderr


# --- fix 2: Connection.send through the transport -------------------------------


class _RecordingController:
    """The part of Controller that KytosServerProtocol touches: the buffers."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        from kytos.core.buffers import KytosBuffers

        self.buffers = KytosBuffers(loop=loop)


def test_connection_send_reaches_the_peer_from_loop_and_from_other_threads():
    from kytos.core.atcp_server import KytosServer, KytosServerProtocol

    async def scenario() -> tuple[bytes, bytes]:
        loop = asyncio.get_running_loop()
        controller = _RecordingController(loop)
        server = KytosServer(("127.0.0.1", 0), KytosServerProtocol, controller, "openflow", loop)
        listener = await loop.create_server(KytosServerProtocol, "127.0.0.1", 0)
        server._server = listener
        port = listener.sockets[0].getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        event = await asyncio.wait_for(controller.buffers.raw.aget(), 5)
        connection = event.source

        connection.send(b"from-loop;")  # on the loop thread
        sender = threading.Thread(target=connection.send, args=(b"from-thread",))
        sender.start()
        await loop.run_in_executor(None, sender.join)

        received = b""
        client.setblocking(False)
        for _ in range(100):
            await asyncio.sleep(0.02)
            with contextlib.suppress(BlockingIOError):
                received += client.recv(4096)
            if received.endswith(b"from-thread"):
                break
        connection.close()
        await asyncio.sleep(0.1)
        client.setblocking(True)
        client.settimeout(5)
        after_close = client.recv(4096)
        client.close()
        listener.close()
        return received, after_close

    received, after_close = asyncio.run(scenario())
    assert received == b"from-loop;from-thread"
    assert after_close == b"", "close() must close the TCP connection"


def test_without_fix_transport_socket_has_no_sendall():
    """The reason for fix 2: asyncio hands Kytos a TransportSocket without sendall."""
    from asyncio.trsock import TransportSocket

    assert not hasattr(TransportSocket, "sendall")


# --- fix 3: no web-UI download ---------------------------------------------------


def test_api_server_never_downloads_the_web_ui():
    from kytos.core import api_server

    with (
        mock.patch.object(api_server, "urlopen") as urlopen,
        mock.patch.object(api_server, "urlretrieve") as urlretrieve,
    ):
        api_server.APIServer.update_web_ui(mock.Mock(flask_dir="/nonexistent"), force=True)
    urlopen.assert_not_called()
    urlretrieve.assert_not_called()


# --- fix 4: VIRTUAL_ENV and sys.argv ---------------------------------------------


def test_kytos_base_dir_is_never_root_when_virtual_env_is_unset():
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    code = (
        "from xmpp_ofc import kytos_py311\n"
        "kytos_py311.ensure_virtual_env()\n"
        "from kytos.core import config\n"
        "print(config.BASE_ENV)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == sys.prefix


def test_pinned_argv_keeps_pytest_flags_away_from_kytos_config():
    from kytos.core.config import KytosConfig

    with mock.patch.object(sys, "argv", ["pytest", "-v"]):
        with pytest.raises(SystemExit):  # kytosd's -v is --version
            KytosConfig()
        with kytos_py311.pinned_argv():
            assert KytosConfig().options["daemon"].port == 6653
        assert sys.argv == ["pytest", "-v"]


# --- fix 5: protocol_name on non-default ports ------------------------------------


def test_launcher_config_names_the_protocol_openflow_on_any_port(tmp_path: Path):
    from kytos.core.config import KytosConfig

    args = launcher.parse_args(["--of-port", "16653", "--api-port", "18181"])
    conf = launcher.write_config(tmp_path, args)
    with kytos_py311.pinned_argv(["kytosd", "-c", str(conf)]):
        options = KytosConfig().options["daemon"]
    assert (options.port, options.api_port, options.protocol_name) == (16653, 18181, "openflow")
    assert options.listen == "127.0.0.1"
    assert options.napps == f"{tmp_path}/var/lib/kytos/napps"


def test_plain_kytosd_conf_on_another_port_still_names_the_protocol_openflow(tmp_path: Path):
    """The conf kytosd renders has an empty protocol_name; -P 16653 must still mean openflow."""
    from kytos.core.config import KytosConfig

    conf = tmp_path / "kytos.conf"
    conf.write_text(  # the keys of Kytos' kytos.conf template that it cannot default
        "[daemon]\ndaemon = False\napi_port = 8181\nnapps_repositories = []\nprotocol_name =\n"
    )
    with kytos_py311.pinned_argv(["kytosd", "-c", str(conf), "-P", "16653"]):
        options = KytosConfig().options["daemon"]
    assert (options.port, options.protocol_name) == (16653, "openflow")


# --- fix 6: uncaught errors stay visible ------------------------------------------


def test_controller_excepthook_logs_instead_of_writing_errlog(tmp_path, caplog, monkeypatch):
    from kytos.lib.helpers import get_controller_mock

    monkeypatch.chdir(tmp_path)
    saved = sys.excepthook
    try:
        get_controller_mock()
        with caplog.at_level(logging.CRITICAL), mock.patch.object(sys, "__excepthook__"):
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                sys.excepthook(*sys.exc_info())
    finally:
        sys.excepthook = saved
    assert "boom" in caplog.text
    assert not (tmp_path / "errlog.log").exists()


# --- fix 7: pyof pack without dir() --------------------------------------------


def test_pyof_pack_unwraps_enums_without_calling_dir():
    from pyof.foundation.basic_types import UBInt16
    from pyof.v0x04.common.header import Type
    from pyof.v0x04.controller2switch.flow_mod import FlowMod, FlowModCommand

    def no_dir(*args):
        raise AssertionError("dir() called while packing")

    message = FlowMod(xid=7, command=FlowModCommand.OFPFC_DELETE, priority=10)
    with mock.patch("builtins.dir", no_dir):
        packed = message.pack()
        assert UBInt16().pack(Type.OFPT_FLOW_MOD) == b"\x00\x0e"
    assert packed[:2] == b"\x04\x0e"  # OF1.3, FLOW_MOD
    assert packed[25] == FlowModCommand.OFPFC_DELETE.value  # command byte after cookie/mask/table


# --- fix 8: the core event tasks survive every message -----------------------------


class _FakeBuffer:
    def __init__(self, events):
        self.events = list(events)

    async def aget(self):
        return self.events.pop(0)


class _FakeConnection:
    def __init__(self, dpid):
        from kytos.core.connection import ConnectionState

        self.state = ConnectionState.ESTABLISHED
        self.switch = mock.Mock(dpid=dpid)
        self.id = ("127.0.0.1", 4242)
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)


def _run_core_task(name: str, events, listeners=None):
    from kytos.core.controller import Controller

    controller = mock.Mock()
    controller.log = logging.getLogger("kytos.core.controller")
    controller.buffers = mock.Mock(raw=_FakeBuffer(events), msg_in=_FakeBuffer(events))
    controller.buffers.msg_out = controller.buffers.raw
    controller.notify_listeners = listeners or mock.Mock()
    asyncio.run(asyncio.wait_for(getattr(Controller, name)(controller), 5))
    return controller


def test_msg_out_drops_a_message_that_does_not_pack_and_keeps_sending(caplog):
    from kytos.core.events import KytosEvent
    from pyof.v0x04.controller2switch.packet_out import PacketOut
    from pyof.v0x04.symmetric.echo_request import EchoRequest

    from xmpp_ofc import metrics

    bad_switch, good_switch = _FakeConnection("00:00:00:00:00:00:00:09"), _FakeConnection("s2")
    before = metrics.MESSAGES_NOT_PACKED.labels(
        dp_id="00:00:00:00:00:00:00:09", type="ofpt_packet_out"
    )._value.get()
    bad = PacketOut(in_port=0xFFFFFFF0, data=b"x")  # ValidationError in pack()
    events = [
        KytosEvent(
            "kytos/of_core.v0x04.messages.out.ofpt_packet_out",
            content={"destination": bad_switch, "message": bad},
        ),
        KytosEvent(
            "kytos/of_core.v0x04.messages.out.ofpt_echo_request",
            content={"destination": good_switch, "message": EchoRequest(xid=7)},
        ),
        KytosEvent(
            "kytos/of_core.v0x04.messages.out.ofpt_echo_request",
            content={"destination": bad_switch, "message": EchoRequest(xid=8)},
        ),
        KytosEvent("kytos/core.shutdown"),
    ]
    with caplog.at_level(logging.ERROR):
        _run_core_task("msg_out_event_handler", events)
    assert good_switch.sent == [EchoRequest(xid=7).pack()]
    assert bad_switch.sent == [EchoRequest(xid=8).pack()]  # the same connection is still served
    after = metrics.MESSAGES_NOT_PACKED.labels(
        dp_id="00:00:00:00:00:00:00:09", type="ofpt_packet_out"
    )._value.get()
    assert after == before + 1
    assert "ofpt_packet_out to 00:00:00:00:00:00:00:09" in caplog.text


def test_raw_and_msg_in_tasks_outlive_a_listener_error():
    from kytos.core.events import KytosEvent

    from xmpp_ofc import metrics

    for task in ("raw_event_handler", "msg_in_event_handler"):
        seen = []

        def listener(event, seen=seen):
            seen.append(event.name)
            if event.name == "boom":
                raise ValueError("bad bytes")

        before = metrics.CORE_TASK_FAILURES.labels(task=task)._value.get()
        events = [KytosEvent("boom"), KytosEvent("next"), KytosEvent("kytos/core.shutdown")]
        _run_core_task(task, events, listener)
        assert seen == ["boom", "next", "kytos/core.shutdown"]
        assert metrics.CORE_TASK_FAILURES.labels(task=task)._value.get() == before + 1


# --- fixes 9-11: Kytos' APIServer on Flask 3 / Werkzeug 3 / Flask-SocketIO 5 -----


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(port: int, path: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def hello_napp():
    from kytos.core import rest

    class Hello:
        username, name, napp_id = "xofc_test", "hello", "xofc_test/hello"

        @rest("hi", methods=["GET"])
        def hi(self):
            return "hi"

    return Hello()


@pytest.fixture
def running_api_server(tmp_path):
    """A real Kytos APIServer serving on a free loopback port, stopped the Kytos way."""
    from kytos.core.api_server import APIServer

    server = APIServer("xofc-test", listen="127.0.0.1", port=_free_port(), napps_dir=str(tmp_path))
    server.start_api()
    thread = threading.Thread(target=server.run, name="api-server", daemon=True)
    thread.start()
    for _ in range(100):
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", server.port), 0.1),
        ):
            break
        thread.join(0.05)
    yield server, thread
    server.stop_api_server()
    thread.join(10)


def test_api_server_serves_without_a_tty_and_stops_on_request(running_api_server):
    server, thread = running_api_server
    assert thread.is_alive(), "APIServer.run() returned at once (Flask-SocketIO 5 refuses no-TTY)"
    assert _get(server.port, "/api/kytos/core/status/") == 200
    # The Socket.IO endpoint still answers (engine.io 4 polling handshake).
    assert _get(server.port, "/socket.io/?EIO=4&transport=polling") == 200
    server.stop_api_server()
    thread.join(10)
    assert not thread.is_alive(), "stop_api_server() left the API server running"


def test_napp_enabled_after_the_first_request_gets_its_routes(running_api_server, hello_napp):
    server, _ = running_api_server
    assert _get(server.port, "/api/kytos/core/status/") == 200  # first request served
    server.register_napp_endpoints(hello_napp)
    assert _get(server.port, "/api/xofc_test/hello/hi") == 200


def test_disabled_napp_routes_are_gone_and_come_back(running_api_server, hello_napp):
    server, _ = running_api_server
    server.register_napp_endpoints(hello_napp)
    assert _get(server.port, "/api/xofc_test/hello/hi") == 200
    server.remove_napp_endpoints(hello_napp)
    assert _get(server.port, "/api/xofc_test/hello/hi") == 404
    server.register_napp_endpoints(hello_napp)
    assert _get(server.port, "/api/xofc_test/hello/hi") == 200


# --- fix 12: notify_listeners matches each event name once -------------------------


class _ListenerHost:
    """What ``notify_listeners`` reads of a Controller: its log and listener table."""

    def __init__(self, table):
        self.log = logging.getLogger("kytos.core.controller")
        self.events_listeners = table


def _calls(notify, table, names):
    called = []

    def listener(pattern: str, number: int):
        return lambda event: called.append((event.name, pattern, number))

    host = _ListenerHost(
        {pattern: [listener(pattern, i) for i in range(n)] for pattern, n in table.items()}
    )
    for name in names:
        event = mock.Mock()
        event.name = name
        notify(host, event)
    return called


LISTENER_TABLE = {
    "kytos/core.shutdown": 1,
    ".*": 1,
    r".+\.messages\.out\..+": 2,
    "kytos/of_core.v0x04.messages.in.ofpt_packet_in": 2,
    "kytos.flow_manager.flows.(install|delete)": 1,
    r"kytos/of_core\.$": 1,
    "kytos/core.shutdown.kytos/of_core": 1,
}
EVENT_NAMES = [
    "kytos/core.shutdown",
    "kytos/core.shutdown.kytos/of_core",
    "kytos/of_core.v0x04.messages.in.ofpt_packet_in",
    "kytos/of_core.v0x04.messages.in.ofpt_packet_in_extra",
    "kytos/flow_manager.messages.out.ofpt_flow_mod",
    "kytos.flow_manager.flows.install",
    "kytos/flow_manager.flows.delete",
    "kytos/of_core.",
] * 2


def test_cached_notify_listeners_calls_what_kytos_calls_in_the_same_order():
    from kytos.core.controller import Controller

    kytos_py311.fix_notify_listeners_matching()
    original = Controller.notify_listeners.original
    expected = _calls(original, LISTENER_TABLE, EVENT_NAMES)
    assert expected  # the table matches something
    assert _calls(kytos_py311.notify_listeners, LISTENER_TABLE, EVENT_NAMES) == expected


def test_each_event_name_is_matched_against_the_patterns_once(monkeypatch):
    import re

    host = _ListenerHost({"a.*": [mock.Mock()], "b": [mock.Mock()]})
    event = mock.Mock()
    event.name = "abc"
    kytos_py311.notify_listeners(host, event)
    counted = mock.Mock(side_effect=re.match)
    monkeypatch.setattr(re, "match", counted)
    for _ in range(5):
        kytos_py311.notify_listeners(host, event)
    assert counted.call_count == 0
    assert host.events_listeners["a.*"][0].call_count == 6


def test_a_pattern_or_listener_added_later_is_heard():
    first, second, third = mock.Mock(), mock.Mock(), mock.Mock()
    host = _ListenerHost({"x.*": [first]})
    event = mock.Mock()
    event.name = "xy"
    kytos_py311.notify_listeners(host, event)
    host.events_listeners["x.*"].append(second)  # same pattern: same cache entry
    host.events_listeners["xy"] = [third]  # a new pattern: the cache starts over
    kytos_py311.notify_listeners(host, event)
    del host.events_listeners["x.*"]
    kytos_py311.notify_listeners(host, event)
    assert (first.call_count, second.call_count, third.call_count) == (2, 1, 2)


def test_the_launcher_applies_the_cached_notify_listeners():
    from kytos.core.controller import Controller

    kytos_py311.apply()
    assert Controller.notify_listeners is kytos_py311.notify_listeners


# --- fix 13: HTTP errors keep their headers (Allow on 405) -------------------


def test_405_carries_allow_and_kytos_json_body(tmp_path, hello_napp):
    from kytos.core.api_server import APIServer

    server = APIServer("xofc-test", listen="127.0.0.1", port=_free_port(), napps_dir=str(tmp_path))
    server.start_api()
    server.register_napp_endpoints(hello_napp)
    client = server.app.test_client()

    for method in ("POST", "DELETE", "TRACE"):
        answer = client.open("/api/xofc_test/hello/hi", method=method)
        assert answer.status_code == 405
        assert set(answer.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}, method
        assert answer.is_json, "Kytos' JSON error body must stay"
        assert answer.get_json() == {
            "code": 405,
            "name": "Method Not Allowed",
            "description": "The method is not allowed for the requested URL.",
        }
    assert client.get("/api/xofc_test/hello/nothing").status_code == 404


def test_http_error_handler_keeps_headers_but_not_the_html_content_type():
    from flask import Flask
    from werkzeug.exceptions import MethodNotAllowed, TooManyRequests

    with Flask("xofc-test").test_request_context():
        answer = kytos_py311.json_http_error(MethodNotAllowed(valid_methods=["GET", "PATCH"]))
        assert answer.status_code == 405
        assert answer.headers["Allow"] == "GET, PATCH"
        assert answer.mimetype == "application/json"
        assert (
            kytos_py311.json_http_error(TooManyRequests(retry_after=3)).headers["Retry-After"]
            == "3"
        )


# --- fix 14: a peer that never reads ---------------------------------------------


def test_output_queue_of_a_never_reading_peer_is_bounded_and_the_peer_closed(monkeypatch):
    from kytos.core.atcp_server import KytosServer, KytosServerProtocol

    from xmpp_ofc import metrics

    monkeypatch.setattr(kytos_py311, "_output_limit", [256 * 1024])
    monkeypatch.setattr(kytos_py311, "CLOSE_FLUSH_GRACE", 0.1)
    before = metrics.OF_OUTPUT_OVERFLOWS._value.get()

    async def scenario() -> tuple[int, bool]:
        loop = asyncio.get_running_loop()
        controller = _RecordingController(loop)
        server = KytosServer(("127.0.0.1", 0), KytosServerProtocol, controller, "openflow", loop)
        listener = await loop.create_server(KytosServerProtocol, "127.0.0.1", 0)
        server._server = listener
        port = listener.sockets[0].getsockname()[1]
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(("127.0.0.1", port))  # ... and never reads
        event = await asyncio.wait_for(controller.buffers.raw.aget(), 5)
        connection = event.source
        transport = connection.transport
        peak = 0
        for _ in range(400):  # 25 MiB offered
            connection.send(b"x" * 65536)
            peak = max(peak, transport.get_write_buffer_size())
            await asyncio.sleep(0)
        for _ in range(50):  # closed, then aborted after the flush grace
            await asyncio.sleep(0.05)
            if transport.is_closing() and transport.get_write_buffer_size() == 0:
                break
        gone = transport.get_write_buffer_size() == 0 and transport.is_closing()
        client.close()
        listener.close()
        return peak, gone

    peak, gone = asyncio.run(scenario())
    assert peak <= 256 * 1024
    assert gone, "the closed connection kept its unsent bytes (close() waits for a drain)"
    assert metrics.OF_OUTPUT_OVERFLOWS._value.get() == before + 1


# --- fix 15: the core task watchdog ---------------------------------------------------


class _TaskController:
    """Just enough of a Controller for the watchdog: a task list and a core handler."""

    def __init__(self) -> None:
        self.log = logging.getLogger("kytos.core.controller")
        self._tasks: list = []
        self.started = 0

    async def msg_out_event_handler(self) -> None:
        self.started += 1
        await asyncio.Event().wait()


def test_watchdog_restarts_a_core_task_that_ends_and_health_says_so(monkeypatch, caplog):
    from xmpp_ofc import metrics

    monkeypatch.setattr(kytos_py311, "_task_health", {})
    monkeypatch.setattr(kytos_py311, "_task_restarts", {})
    stops = []
    monkeypatch.setattr(kytos_py311, "stop_controller_loudly", lambda c, why: stops.append(why))
    restarts = metrics.CORE_TASK_RESTARTS.labels(task="msg_out_event_handler")
    before = restarts._value.get()

    async def scenario() -> list[dict]:
        controller = _TaskController()
        controller._tasks.append(asyncio.create_task(controller.msg_out_event_handler()))
        kytos_py311.watch_core_tasks(controller)
        await asyncio.sleep(0)
        seen = [kytos_py311.core_task_health()]
        controller._tasks[0].cancel()  # the task ends while the controller runs
        await asyncio.sleep(0.05)
        seen.append(kytos_py311.core_task_health())
        assert controller.started == 2 and not controller._tasks[0].done()
        for _ in range(kytos_py311.WATCHDOG_MAX_RESTARTS):
            controller._tasks[0].cancel()
            await asyncio.sleep(0.02)
        seen.append(kytos_py311.core_task_health())
        controller._tasks[0].cancel()
        return seen

    with caplog.at_level(logging.CRITICAL):
        first, restarted, exhausted = asyncio.run(scenario())
    assert first["healthy"] is True
    assert restarted["healthy"] is True
    task = restarted["tasks"]["msg_out_event_handler"]
    assert (task["running"], task["restarts"], task["last_error"]) == (True, 1, "cancelled")
    assert "msg_out_event_handler ended unexpectedly (cancelled); restarting it" in caplog.text
    assert restarts._value.get() == before + kytos_py311.WATCHDOG_MAX_RESTARTS
    # one end too many within the window: not restarted, the controller is stopped
    assert exhausted["healthy"] is False
    assert len(stops) == 1 and "msg_out_event_handler" in stops[0]
    assert metrics.CORE_TASK_UP.labels(task="msg_out_event_handler")._value.get() == 0


def test_watchdog_stays_quiet_while_the_controller_stops(monkeypatch):
    monkeypatch.setattr(kytos_py311, "_task_health", {})
    monkeypatch.setattr(kytos_py311, "_task_restarts", {})

    async def scenario() -> int:
        controller = _TaskController()
        controller._tasks.append(asyncio.create_task(controller.msg_out_event_handler()))
        kytos_py311.watch_core_tasks(controller)
        await asyncio.sleep(0)
        controller._xmpp_ofc_stopping = True
        controller._tasks[0].cancel()
        await asyncio.sleep(0.05)
        return controller.started

    assert asyncio.run(scenario()) == 1
    assert kytos_py311.core_task_health()["tasks"]["msg_out_event_handler"]["restarts"] == 0


def test_controller_start_watches_its_core_tasks():
    from kytos.core.controller import Controller

    kytos_py311.fix_core_task_watchdog()
    assert getattr(Controller.start_controller, "_xmpp_ofc_py311_fixed", False)
    assert Controller.stop_controller.__name__ == "stop_controller"


# --- fix 16: SIGTERM on a flooded loop ----------------------------------------------


def test_sigterm_reaches_kytosd_handler_even_when_the_wakeup_fd_drops_it(monkeypatch):
    """The self-pipe full under a flood is simulated by taking the wakeup fd away."""
    import signal

    armed = []
    monkeypatch.setattr(kytos_py311, "_arm_stop_deadline", lambda signum, _: armed.append(signum))
    loop = asyncio.new_event_loop()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        kytos_py311.fix_signal_delivery(loop)
        called = []
        loop.add_signal_handler(signal.SIGTERM, called.append, "stop")
        saved_fd = signal.set_wakeup_fd(-1)  # the signal's byte is lost
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            loop.run_until_complete(asyncio.sleep(0.1))
        finally:
            signal.set_wakeup_fd(saved_fd)
        assert called == ["stop"]
        assert set(armed) == {signal.SIGTERM}  # the forced-exit deadline is armed
        os.kill(os.getpid(), signal.SIGTERM)  # the asyncio path and ours: still one stop
        loop.run_until_complete(asyncio.sleep(0.1))
        assert called == ["stop"]
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        loop.close()
        signal.signal(signal.SIGTERM, previous)


def test_stop_deadline_dumps_stacks_and_exits(monkeypatch):
    exits = []
    monkeypatch.setattr(kytos_py311, "STOP_DEADLINE", 0.01)
    monkeypatch.setattr(kytos_py311.os, "_exit", exits.append)
    kytos_py311._exit_after_deadline(15)
    assert exits == [128 + 15]


def test_launcher_runs_kytosd_on_a_loop_with_reliable_signals(monkeypatch, tmp_path):
    from kytos.core import kytosd

    loops = []

    def fake_main():
        loops.append(asyncio.get_event_loop())

    monkeypatch.setattr(kytosd, "main", fake_main)
    monkeypatch.setattr(kytos_py311, "apply", lambda: None)
    monkeypatch.setattr(launcher.rest_auth, "install", lambda settings: None)
    from xmpp_ofc import napp_layout

    monkeypatch.setattr(napp_layout, "install", lambda *a: [])
    monkeypatch.setenv("VIRTUAL_ENV", os.environ.get("VIRTUAL_ENV", sys.prefix))
    try:
        assert launcher.main(["--base-dir", str(tmp_path)]) == 0
        assert getattr(loops[0], "_xmpp_ofc_py311_fixed", False)
    finally:
        loops[0].close()
        asyncio.set_event_loop(None)


# --- fix 17: the input budget ---------------------------------------------------------


def test_reading_pauses_past_the_input_budget_and_resumes_once_handled(monkeypatch):
    from kytos.core.atcp_server import KytosServer, KytosServerProtocol

    from xmpp_ofc import metrics

    monkeypatch.setattr(kytos_py311, "_input_limit", [256 * 1024])
    pauses = metrics.OF_INPUT_PAUSES._value.get()

    async def scenario() -> tuple[int, bool, int]:
        loop = asyncio.get_running_loop()
        controller = _RecordingController(loop)
        controller.notify_listeners = lambda event: None
        server = KytosServer(("127.0.0.1", 0), KytosServerProtocol, controller, "openflow", loop)
        listener = await loop.create_server(KytosServerProtocol, "127.0.0.1", 0)
        server._server = listener
        port = listener.sockets[0].getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.setblocking(False)
        await asyncio.wait_for(controller.buffers.raw.aget(), 5)  # connection.new
        offered = 0
        for _ in range(200):  # the controller handles nothing meanwhile
            with contextlib.suppress(BlockingIOError):
                offered += client.send(b"\x04" * 65536)
            await asyncio.sleep(0.005)
        queued = []
        while not controller.buffers.raw.empty():
            queued.append(controller.buffers.raw.get())
        unhandled = sum(len(e.content["new_data"]) for e in queued)
        connection = queued[0].source
        paused = not connection.transport.is_reading()
        for event in queued:  # the raw task handles them now
            kytos_py311._notify_raw(controller, event)
        resumed = connection.transport.is_reading()
        client.close()
        listener.close()
        return unhandled, paused and resumed, offered

    unhandled, paused_then_resumed, offered = asyncio.run(scenario())
    assert offered > 1024 * 1024  # more than the budget was sent ...
    assert unhandled <= 256 * 1024 + 256 * 1024  # ... but only the budget (plus a chunk) waits
    assert paused_then_resumed
    assert metrics.OF_INPUT_PAUSES._value.get() >= pauses + 1
