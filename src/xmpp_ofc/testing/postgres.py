"""A throwaway PostgreSQL server for tests: its own data dir, socket dir and port.

Debian's ``postgresql`` package gives the binaries (``/usr/lib/postgresql/<v>/bin``);
the system cluster is never used. PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` user (the package creates it) in a directory that
user owns. Stopped with ``pg_ctl stop -m fast``; the directory is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_ROOT = Path("/usr/lib/postgresql")
START_TIMEOUT_S = 30.0


def postgres_bin_dir() -> Path | None:
    """The newest installed server's bin dir, or None when PostgreSQL is missing."""
    versions = sorted(
        (p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return versions[-1] if versions else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """``with PostgresServer() as pg: pg.url`` — a started server with one database."""

    def __init__(self, database: str = "xmpp_ofc") -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise RuntimeError(
                "PostgreSQL is not installed: run as root `apt-get install -y postgresql`"
                " (scripts/ensure-system-deps.sh does it for `make test`)"
            )
        self.bin_dir = bin_dir
        self.database = database
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="xofc-pg-"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "run"
        self.user = "postgres" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        """A libpq URL for TCP on loopback (trust auth: the server is the test's own)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)

    def start(self) -> PostgresServer:
        self.socket_dir.mkdir()
        if self.user is not None:
            shutil.chown(self.root, self.user)
            shutil.chown(self.socket_dir, self.user)
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust", "-N")
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = self.root / "server.log"
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(log), "-o", options, "-w", "start")
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            ready = subprocess.run(
                [str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start; see {log}")
            time.sleep(0.1)
        self._run(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.database
        )
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown); the data stays until :meth:`remove`."""
        if self.data_dir.exists():
            with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def start_again(self) -> None:
        """Start the stopped server on the same data dir and port (a database coming back)."""
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = self.root / "server.log"
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(log), "-o", options, "-w", "start")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.remove()
