"""Run the real controller (``xmpp-ofc-controller``) as a subprocess.

Tests, benchmarks and the lab all need "a controller on some free ports with
its own state directory".  Running it as a child process exercises exactly
what ``make run`` runs, and keeps Kytos' process-wide state (sys.modules,
event loop, signal handlers) out of the test process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xmpp_ofc import napp_layout, rest_auth


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ControllerProcess:
    """One controller child process with its own Kytos base directory.

    ``env`` adds environment variables (e.g. NApp setting overrides such as
    ``KYTOS_OF_CORE_ECHO_INTERVAL``).  Output goes to ``<base_dir>/controller.log``.
    ``expect_napps``: how many NApps :meth:`start` waits for (default: the five
    of the bundle; 0 with ``--napps-from-repository`` on an empty base dir).
    """

    def __init__(
        self,
        base_dir: Path,
        of_port: int | None = None,
        api_port: int | None = None,
        env: dict[str, str] | None = None,
        listen: str = "127.0.0.1",
        *,
        extra_args: list[str] | None = None,
        expect_napps: int | None = None,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.expect_napps = expect_napps
        self.of_port = of_port or free_port()
        self.api_port = api_port or free_port()
        self.listen = listen
        self.extra_args = list(extra_args or [])
        self.env = dict(env or {})
        self.log_path = self.base_dir / "controller.log"
        self.process: subprocess.Popen | None = None

    # --- lifecycle ------------------------------------------------------

    def command(self) -> list[str]:
        """The command line: the installed launcher, as ``make run`` runs it."""
        launcher = Path(sys.executable).with_name("xmpp-ofc-controller")
        program = (
            [str(launcher)] if launcher.exists() else [sys.executable, "-m", "xmpp_ofc.launcher"]
        )
        return [
            *program,
            "--base-dir",
            str(self.base_dir),
            "--listen",
            self.listen,
            "--of-port",
            str(self.of_port),
            "--api-port",
            str(self.api_port),
            *self.extra_args,
        ]

    def start(
        self,
        timeout: float = 30.0,
        on_spawn: Callable[[subprocess.Popen], object] | None = None,
    ) -> ControllerProcess:
        """Start the controller and wait until REST and OpenFlow answer.

        ``on_spawn`` gets the child right after it was created, before the
        wait: the lab records its PID there, so a crash during the wait
        cannot leave an unrecorded controller behind.
        """
        self.base_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        env.pop("VIRTUAL_ENV", None)  # --base-dir decides Kytos' base directory
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        if on_spawn is not None:
            on_spawn(self.process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"controller exited with {self.process.returncode} during start-up; "
                    f"log:\n{self.log_text()[-4000:]}"
                )
            if self._napps_running() and self._rest_ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(
            f"controller not ready within {timeout} s; log:\n{self.log_text()[-4000:]}"
        )

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the controller (clean Kytos shutdown), SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(5)

    def __enter__(self) -> ControllerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, needle: str, timeout: float = 10.0) -> bool:
        """Wait until ``needle`` appears in the controller log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return True
            time.sleep(0.05)
        return False

    # --- REST -----------------------------------------------------------

    def api_url(self, path: str) -> str:
        return f"http://{self.listen}:{self.api_port}/api/{path.lstrip('/')}"

    @property
    def token_path(self) -> Path:
        return rest_auth.token_path(self.base_dir)

    def token(self) -> str | None:
        """The controller's REST API token (made at its first start), or None before that."""
        return rest_auth.read_token(self.token_path)

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        """Call the REST API; return ``(status, parsed JSON or text)`` (see :meth:`exchange`)."""
        status, payload, _ = self.exchange(method, path, body, **kwargs)
        return status, payload

    def exchange(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw_body: bytes | None = None,
        content_type: str | None = "application/json",
        timeout: float = 10.0,
        auth: bool | str = True,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """Call the REST API; return ``(status, parsed JSON or text, response headers)``.

        ``auth``: True sends the controller's own token (read from its base
        directory at each call, so a rotation is followed), False sends none,
        a string sends that token.
        """
        data = (
            raw_body
            if raw_body is not None
            else (None if body is None else json.dumps(body).encode())
        )
        request = urllib.request.Request(self.api_url(path), data=data, method=method)
        if data is not None and content_type:
            request.add_header("Content-Type", content_type)
        token = self.token() if auth is True else (auth or None)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, payload = response.status, response.read()
                reply_headers = dict(response.headers)
        except urllib.error.HTTPError as error:
            status, payload, reply_headers = error.code, error.read(), dict(error.headers)
        text = payload.decode(errors="replace")
        try:
            return status, json.loads(text), reply_headers
        except ValueError:
            return status, text, reply_headers

    def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return self.request("POST", path, body, **kwargs)

    def delete(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return self.request("DELETE", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return self.request("PATCH", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return self.request("PUT", path, body, **kwargs)

    # --- readiness probes -------------------------------------------------

    def _rest_ready(self) -> bool:
        try:
            status, _ = self.get("kytos/core/status/", timeout=1.0)
        except OSError:
            return False
        return status == 200

    def _napps_running(self) -> bool:
        """Kytos logs "Running NApp: <Main(name ...)>" once per NApp thread."""
        expected = self.expect_napps
        if expected is None:
            expected = len(napp_layout.bundled_napps())
        if expected == 0:
            return "NAppDirListener Started" in self.log_text()
        return self.log_text().count("Running NApp:") >= expected
