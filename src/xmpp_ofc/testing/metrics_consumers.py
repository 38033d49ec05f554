"""Real metrics consumers for the tests: Debian's Prometheus and carbon-cache, on loopback.

Each runs as a child process with its own config, data directory and free
ports under a directory the caller gives (nothing in /etc or /var/lib), is
ready when its port answers, and is stopped by PID (SIGTERM, then SIGKILL).
The binaries come from the Debian packages ``prometheus`` and
``graphite-carbon`` (scripts/ensure-system-deps.sh installs them).
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from xmpp_ofc.testing.controller import free_port

PROMETHEUS = "prometheus"
CARBON_CACHE = "carbon-cache"


def missing_binaries() -> list[str]:
    """The consumers' commands not on PATH (with the Debian package to install)."""
    wanted = {PROMETHEUS: "prometheus", CARBON_CACHE: "graphite-carbon"}
    return [f"{cmd} ({pkg})" for cmd, pkg in wanted.items() if shutil.which(cmd) is None]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class _Child:
    """A child process logging to ``<dir>/<name>.log``."""

    name = "child"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_path = self.directory / f"{self.name}.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> _Child:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.directory,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited during start-up:\n{self.log_text()}")
            if self.ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"{self.name} not ready in {timeout} s:\n{self.log_text()}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    def __enter__(self) -> _Child:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class PrometheusServer(_Child):
    """Prometheus scraping ``targets`` (``host:port``) every ``interval_s`` seconds."""

    name = "prometheus"

    def __init__(self, directory: Path, targets: list[str], interval_s: float = 1.0) -> None:
        super().__init__(directory)
        self.port = free_port()
        self.config_path = self.directory / "prometheus.yml"
        every = f"{round(interval_s * 1000)}ms"  # Prometheus durations take no fractions
        self.config_path.write_text(
            "global:\n"
            f"  scrape_interval: {every}\n"
            f"  evaluation_interval: {every}\n"
            "scrape_configs:\n"
            "  - job_name: xmpp_ofc\n"
            f"    scrape_timeout: {every}\n"
            f"    static_configs:\n      - targets: {json.dumps(targets)}\n"
        )

    def command(self) -> list[str]:
        return [
            PROMETHEUS,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus {path}: {body}")
        return body["data"]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/-/ready", timeout=1
            ) as response:
                return response.status == 200
        except OSError:
            return False

    def query(self, promql: str) -> list[dict]:
        """An instant query's vector: ``[{"metric": {...}, "value": [t, "v"]}, ...]``."""
        return self.api("query", query=promql)["result"]

    def targets_up(self) -> bool:
        active = self.api("targets")["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)


class CarbonCache(_Child):
    """carbon-cache receiving the plaintext protocol, writing whisper files (1 s resolution)."""

    name = "carbon-cache"

    def __init__(self, directory: Path, retention: str = "1s:30m") -> None:
        super().__init__(directory)
        self.line_port = free_port()
        self.storage_dir = self.directory / "storage"
        self.whisper_dir = self.storage_dir / "whisper"
        conf = self.directory / "conf"
        conf.mkdir(exist_ok=True)
        (conf / "storage-schemas.conf").write_text(
            f"[everything]\npattern = .*\nretentions = {retention}\n"
        )
        (conf / "storage-aggregation.conf").write_text(
            "[default]\npattern = .*\nxFilesFactor = 0\naggregationMethod = last\n"
        )
        self.config_path = conf / "carbon.conf"
        self.config_path.write_text(
            "[cache]\n"
            f"STORAGE_DIR = {self.storage_dir}/\n"
            f"LOCAL_DATA_DIR = {self.whisper_dir}/\n"
            f"WHITELISTS_DIR = {self.storage_dir}/lists/\n"
            f"CONF_DIR = {conf}/\n"
            f"LOG_DIR = {self.directory}/log/\n"
            f"PID_DIR = {self.directory}/\n"
            "USER =\n"
            "DATABASE = whisper\n"
            "ENABLE_LOGROTATION = False\n"
            "MAX_CACHE_SIZE = inf\n"
            "MAX_UPDATES_PER_SECOND = 10000\n"
            "MAX_CREATES_PER_MINUTE = inf\n"
            "MIN_TIMESTAMP_RESOLUTION = 1\n"
            "LINE_RECEIVER_INTERFACE = 127.0.0.1\n"
            f"LINE_RECEIVER_PORT = {self.line_port}\n"
            "ENABLE_UDP_LISTENER = False\n"
            "PICKLE_RECEIVER_INTERFACE = 127.0.0.1\n"
            f"PICKLE_RECEIVER_PORT = {free_port()}\n"
            "CACHE_QUERY_INTERFACE = 127.0.0.1\n"
            f"CACHE_QUERY_PORT = {free_port()}\n"
            "USE_FLOW_CONTROL = True\n"
            "LOG_UPDATES = False\n"
            "LOG_CREATES = True\n"
            "WHISPER_AUTOFLUSH = True\n"
            "WHISPER_FALLOCATE_CREATE = False\n"
        )

    def command(self) -> list[str]:
        return [
            CARBON_CACHE,
            f"--config={self.config_path}",
            f"--pidfile={self.directory / 'carbon-cache.pid'}",
            "--debug",
            "start",
        ]

    def ready(self) -> bool:
        return _port_open(self.line_port)

    def whisper_path(self, metric: str) -> Path:
        """Where carbon keeps ``metric`` (dots are directories)."""
        return self.whisper_dir.joinpath(*metric.split(".")).with_suffix(".wsp")

    def values(self, metric: str, seconds: int = 600) -> list[float]:
        """The stored, non-empty points of ``metric`` over the last ``seconds``, oldest first."""
        import whisper

        path = self.whisper_path(metric)
        if not path.is_file():
            return []
        _, points = whisper.fetch(str(path), time.time() - seconds)
        return [value for value in points if value is not None]
