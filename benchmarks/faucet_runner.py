"""Run Faucet (PyPI) as the reference controller of the packet-in benchmark.

Faucet pins its own dependency tree (os-ken, eventlet, prometheus_client...)
which must not mix with Kytos 2021.1's, so it lives in a venv of its own,
``.bench-venv-faucet`` (git-ignored), created on first use with the interpreter
running this script.  py-spy, the sampling profiler the benchmark uses on our
controller, goes into the same venv for the same reason: it is a benchmark
tool, not a dependency of the bundle.
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

from ofgen import FULL_COOKIE_MASK, OFPR_ACTION, Profile

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".bench-venv-faucet"
FAUCET_VERSION = "1.10.12"
PY_SPY_VERSION = "0.4.3"

#: Faucet's default ``cookie`` (dps: cookie) on every flow it installs.
FAUCET_COOKIE = 0x5ADC15C0
VLAN_VID = 100
#: With no ACLs configured, Faucet's tables are vlan=0, eth_src=1, eth_dst=2, flood=3.
ETH_SRC_TABLE = 1

#: Faucet's eth_src table sends every frame of the VLAN to the controller with an
#: output action (OFPR_ACTION; Faucet drops NO_MATCH packet-ins), after the vlan
#: table pushed the VLAN tag.  Learning a source answers with a FlowMod matching it.
FAUCET_PROFILE = Profile(
    name="faucet",
    packet_in_table=ETH_SRC_TABLE,
    packet_in_cookie=FAUCET_COOKIE,
    packet_in_reason=OFPR_ACTION,
    vlan_vid=VLAN_VID,
    reply_table=ETH_SRC_TABLE,
    reply_cookie=FAUCET_COOKIE,
    reply_cookie_mask=FULL_COOKIE_MASK,
    completed_by="flow_mod",
)


def venv_tool(name: str) -> Path:
    return VENV / "bin" / name


def ensure_venv(progress=print, timeout: float = 900.0) -> None:
    """Create the venv and install pinned Faucet and py-spy unless already there."""
    if venv_tool("faucet").exists() and venv_tool("py-spy").exists():
        return
    progress(f"creating {VENV.name} with faucet=={FAUCET_VERSION} (first run only)")
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=120)
    subprocess.run(
        [
            str(VENV / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"faucet=={FAUCET_VERSION}",
            f"py-spy=={PY_SPY_VERSION}",
        ],
        check=True,
        timeout=timeout,
    )


def faucet_yaml(dpids: list[int], ports: list[int]) -> str:
    """One VLAN, every port an untagged member; learning never skips a packet-in."""
    # max_hosts 0 = no limit (defaults: 256 per VLAN, 255 per port): every packet-in
    # brings a new host, and past a limit Faucet answers with a ban flow instead
    lines = ["vlans:", "  bench:", f"    vid: {VLAN_VID}", "    max_hosts: 0", "dps:"]
    for dpid in dpids:
        lines += [
            f"  sw{dpid}:",
            f"    dp_id: {dpid:#x}",
            '    hardware: "Open vSwitch"',
            # 0 = learn from every packet-in (the default ignores ~1 in 10 under load)
            "    ignore_learn_ins: 0",
            "    interfaces:",
        ]
        lines += [f"      {port}: {{native_vlan: bench, max_hosts: 0}}" for port in ports]
    return "\n".join(lines) + "\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class FaucetProcess:
    """Faucet (``osken-manager faucet.faucet``) on a free port, with its own files."""

    workdir: Path
    dpids: list[int]
    ports: list[int]
    of_port: int = 0
    process: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.of_port = self.of_port or free_port()
        self.log_path = self.workdir / "faucet.log"
        self.output_path = self.workdir / "faucet.out"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30.0) -> FaucetProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "faucet.yaml"
        config.write_text(faucet_yaml(self.dpids, self.ports))
        env = {
            **os.environ,
            # faucet exec()s osken-manager found on PATH
            "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "FAUCET_CONFIG": str(config),
            "FAUCET_LOG": str(self.log_path),
            "FAUCET_EXCEPTION_LOG": str(self.workdir / "faucet_exception.log"),
            "FAUCET_PROMETHEUS_ADDR": "127.0.0.1",
            "FAUCET_PROMETHEUS_PORT": str(free_port()),
        }
        env.pop("VIRTUAL_ENV", None)
        with open(self.output_path, "ab") as output:
            self.process = subprocess.Popen(
                [
                    str(venv_tool("faucet")),
                    "--ryu-ofp-listen-host=127.0.0.1",
                    f"--ryu-ofp-tcp-listen-port={self.of_port}",
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
                    f"faucet exited with {self.process.returncode}; output:\n{self.tail()}"
                )
            if self._listening() and "Add new datapath" in self._read(self.log_path):
                return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"faucet not ready within {timeout} s; output:\n{self.tail()}")

    def _listening(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.of_port), timeout=0.5),
        ):
            return True
        return False

    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, chars: int = 3000) -> str:
        return (self._read(self.output_path) + self._read(self.log_path))[-chars:]

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM Faucet's process group (it is its own session), SIGKILL if it lingers."""
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
