"""Run the project's os-ken 3.1.0 L2 app (``osken_l2.py``) as a benchmark peer (issue 9).

os-ken brings eventlet, oslo.* and its own pins, which must not mix with
Kytos 2021.1's, so it lives in ``benchmarks/.venv-osken`` (git-ignored), created
on first use with the interpreter running the benchmark.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ofgen import FULL_COOKIE_MASK, OFPR_NO_MATCH, Profile

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-osken"
APP = HERE / "osken_l2.py"
OSKEN_VERSION = "3.1.0"
#: The profiler of ``l2_packet_in.py --profile`` (a benchmark tool, not a product dependency).
PY_SPY_VERSION = "0.4.3"
#: Same values as osken_l2.py (which imports os_ken, so it is not imported here).
TABLE_MISS_COOKIE = 0x05CE000000000001
FORWARD_COOKIE = 0x05CE000000000002

#: The table-miss flow of table 0 sends frames as OFPR_NO_MATCH; a known
#: destination is answered with FlowMod (in_port + eth_dst) + PacketOut, like ours.
OSKEN_PROFILE = Profile(
    name="os-ken",
    packet_in_table=0,
    packet_in_cookie=TABLE_MISS_COOKIE,
    packet_in_reason=OFPR_NO_MATCH,
    vlan_vid=None,
    reply_table=0,
    reply_cookie=FORWARD_COOKIE,
    reply_cookie_mask=FULL_COOKIE_MASK,
    completed_by="packet_out",
)


def manager() -> Path:
    return VENV / "bin" / "osken-manager"


def venv_tool(name: str) -> Path:
    return VENV / "bin" / name


def ensure_venv(progress=print, timeout: float = 900.0) -> None:
    """Create the venv with the pinned os-ken and py-spy unless they are there."""
    if manager().exists() and venv_tool("py-spy").exists():
        return
    progress(f"creating {VENV} with os-ken=={OSKEN_VERSION} (first run only)")
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=120)
    subprocess.run(
        [
            str(VENV / "bin" / "pip"),
            "install",
            "--quiet",
            f"os-ken=={OSKEN_VERSION}",
            f"py-spy=={PY_SPY_VERSION}",
        ],
        check=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class OskenProcess:
    """``osken-manager osken_l2.py`` on a free port, optionally pinned with taskset."""

    workdir: Path
    cpu: int | None = None
    of_port: int = 0
    process: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.of_port = self.of_port or free_port()
        self.output_path = self.workdir / "osken.out"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30.0) -> OskenProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        pin = ["taskset", "-c", str(self.cpu)] if self.cpu is not None else []
        env = {**os.environ}
        env.pop("VIRTUAL_ENV", None)
        with open(self.output_path, "ab") as output:
            self.process = subprocess.Popen(
                [
                    *pin,
                    str(manager()),
                    "--ofp-listen-host",
                    "127.0.0.1",
                    "--ofp-tcp-listen-port",
                    str(self.of_port),
                    str(APP),
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"os-ken exited with {self.process.returncode}; output:\n{self.tail()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.of_port), timeout=0.5),
            ):
                return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"os-ken not listening within {timeout} s; output:\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.output_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM its process group (its own session), SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
