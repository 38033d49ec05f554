"""One Open vSwitch instance in its own network namespace and run directory.

Why so private: two userspace-datapath OVS daemons in one namespace fight over
the ``ovs-netdev`` tap, and a shared /var/run/openvswitch would mix the lab
with any OVS the machine runs.  So each instance gets a fresh database, its
own ovsdb-server and ovs-vswitchd started inside its namespace with explicit
pidfile/unixctl/log paths, and one bridge: ``datapath_type=netdev`` (no kernel
module), ``fail_mode=secure`` (no flows unless someone installs them),
OpenFlow 1.3 only, a fixed datapath id.  The daemons are stopped by the PIDs in
their pidfiles, never by name.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xmpp_ofc.lab import netns
from xmpp_ofc.lab.state import LabState, RecordedProcess, read_pidfile, start_time
from xmpp_ofc.openflow.dpid import dpid_to_str

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
DAEMONS = ("ovsdb-server", "ovs-vswitchd")


@dataclass(frozen=True)
class FlowEntry:
    """One line of ``ovs-ofctl dump-flows``, split into the parts tests look at.

    ``match`` maps field names to values; bare protocol words (``ip``,
    ``tcp``, ...) map to ``None``.  ``actions`` is OVS' text, e.g.
    ``output:2,goto_table:1``.
    """

    raw: str
    cookie: int
    table: int
    priority: int
    match: dict[str, str | None]
    actions: str
    idle_timeout: int = 0
    hard_timeout: int = 0
    n_packets: int = 0
    n_bytes: int = 0
    flags: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.raw


# Fields ovs-ofctl prints before the match; everything else left of "actions=" is match.
_FLOW_STATS = {"cookie", "duration", "table", "n_packets", "n_bytes", "idle_timeout",
               "hard_timeout", "idle_age", "hard_age", "importance", "priority"}  # fmt: skip
_FLOW_FLAGS = {"send_flow_rem", "check_overlap", "reset_counts", "no_packet_counts",
               "no_byte_counts"}  # fmt: skip
DEFAULT_PRIORITY = 32768  # ovs-ofctl leaves the priority out when it is the default


def parse_flow(line: str) -> FlowEntry:
    """Parse one flow line of ``ovs-ofctl -O OpenFlow13 dump-flows``."""
    text = line.strip()
    head, separator, actions = text.partition("actions=")
    if not separator:
        raise ValueError(f"not a flow line: {line!r}")
    stats: dict[str, str] = {}
    match: dict[str, str | None] = {}
    flags = []
    for token in re.split(r"[,\s]+", head.strip()):
        if not token:
            continue
        key, has_value, value = token.partition("=")
        if has_value and key in _FLOW_STATS:
            stats[key] = value
        elif key in _FLOW_FLAGS:
            flags.append(key)
        else:
            match[key] = value if has_value else None
    return FlowEntry(
        raw=text,
        cookie=int(stats.get("cookie", "0"), 0),
        table=int(stats.get("table", "0")),
        priority=int(stats.get("priority", DEFAULT_PRIORITY)),
        match=match,
        actions=actions.strip(),
        idle_timeout=int(stats.get("idle_timeout", "0")),
        hard_timeout=int(stats.get("hard_timeout", "0")),
        n_packets=int(stats.get("n_packets", "0")),
        n_bytes=int(stats.get("n_bytes", "0")),
        flags=tuple(flags),
    )


def parse_flows(output: str) -> list[FlowEntry]:
    """Parse a whole dump, skipping the ``OFPST_FLOW reply`` header."""
    return [parse_flow(line) for line in output.splitlines() if "actions=" in line]


@dataclass
class OvsSwitch:
    """An OVS instance with one bridge, in ``namespace``, files under ``rundir``.

    ``ports`` maps OVS-side interface names (in ``namespace``) to the OpenFlow
    port numbers they must get.
    """

    namespace: str
    rundir: Path
    dpid: int
    state: LabState
    bridge: str = "br0"
    ports: dict[str, int] = field(default_factory=dict)
    _daemons: list[RecordedProcess] = field(default_factory=list)

    @property
    def dpid_string(self) -> str:
        """The datapath id as Kytos writes it: ``00:00:00:00:00:00:00:0a``."""
        return dpid_to_str(self.dpid)

    @property
    def db_socket(self) -> Path:
        return self.rundir / "db.sock"

    def env(self) -> dict[str, str]:
        """Environment for OVS tools: ovs-ofctl finds ``<bridge>.mgmt`` through OVS_RUNDIR."""
        return {
            **os.environ,
            "OVS_RUNDIR": str(self.rundir),
            "OVS_DBDIR": str(self.rundir),
            "OVS_LOGDIR": str(self.rundir),
        }

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Create the database, start both daemons, build the bridge and its ports."""
        self.rundir.mkdir(parents=True, exist_ok=True)
        database = self.rundir / "conf.db"
        database.unlink(missing_ok=True)
        netns.run(["ovsdb-tool", "create", str(database), str(SCHEMA)])
        self._start_daemon(
            "ovsdb-server",
            [str(database), f"--remote=punix:{self.db_socket}"],
        )
        self.vsctl("--no-wait", "init")
        self._start_daemon("ovs-vswitchd", [f"unix:{self.db_socket}"])
        commands = [
            "--", "add-br", self.bridge,
            "--", "set", "bridge", self.bridge,
            "datapath_type=netdev", "fail_mode=secure", "protocols=OpenFlow13",
            f"other-config:datapath-id={self.dpid:016x}",
            "other-config:disable-in-band=true",
        ]  # fmt: skip
        for name, number in self.ports.items():
            commands += ["--", "add-port", self.bridge, name]
            commands += ["--", "set", "interface", name, f"ofport_request={number}"]
        self.vsctl(*commands)  # waits until ovs-vswitchd has applied it

    def _start_daemon(self, program: str, args: Sequence[str]) -> None:
        """Start an OVS daemon inside the namespace; ``--detach`` returns once it serves."""
        pidfile = self.rundir / f"{program}.pid"
        netns.run_in(
            self.namespace,
            [
                program, *args,
                f"--pidfile={pidfile}",
                f"--unixctl={self.rundir / (program + '.ctl')}",
                f"--log-file={self.rundir / (program + '.log')}",
                "-vconsole:off",
                "--detach", "--no-chdir",
            ],
            timeout=20,
            env=self.env(),  # OVS_RUNDIR: where vswitchd puts <bridge>.mgmt for ovs-ofctl
        )  # fmt: skip
        pid = read_pidfile(pidfile)
        if pid is None:
            raise netns.CommandError(f"{program} wrote no pidfile {pidfile}")
        self._daemons.append(self.state.add_process(pid, program))

    def restart_vswitchd(self) -> None:
        """Stop ovs-vswitchd by its PID and start it again on the same database.

        What a rebooted switch looks like to its controller: the OpenFlow
        connection drops, and the new vswitchd comes back with the bridge, its
        ports and its controller target from the database but with EMPTY flow
        tables (OVS keeps no flows across a restart), so whatever runs after
        the reconnect is the controller's doing.  ovsdb-server keeps running.
        """
        self._reload_state()
        pidfile = self.rundir / "ovs-vswitchd.pid"
        pid = read_pidfile(pidfile)
        if pid is not None:
            daemon = next(
                (p for p in self.state.processes if p.pid == pid and p.what == "ovs-vswitchd"),
                None,
            )
            if daemon is None and start_time(pid) is not None:
                daemon = RecordedProcess.of(pid, "ovs-vswitchd")  # our pidfile, so ours
            if daemon is not None:
                daemon.terminate()
                self.state.forget_process(daemon)
                self._daemons = [d for d in self._daemons if d != daemon]
        self._start_daemon("ovs-vswitchd", [f"unix:{self.db_socket}"])

    def _reload_state(self) -> None:
        """Re-read state.json in place: other processes (load, status) may have changed it."""
        fresh = LabState.load(self.state.tag)
        self.state.namespaces, self.state.processes = fresh.namespaces, fresh.processes

    def stop(self) -> None:
        """Stop vswitchd, then the database server, by their recorded PIDs."""
        for daemon in reversed(self._daemons):
            daemon.terminate()
            self.state.forget_process(daemon)
        self._daemons.clear()

    # --- tools -----------------------------------------------------------------

    def vsctl(self, *args: str, timeout: float = 10.0) -> str:
        return netns.run(
            ["ovs-vsctl", f"--db=unix:{self.db_socket}", f"--timeout={int(timeout)}", *args],
            env=self.env(),
            timeout=timeout + 5,
        ).stdout

    def ofctl(self, command: str, *args: str) -> str:
        """``ovs-ofctl -O OpenFlow13 <command> <bridge> <args>``."""
        return netns.run(
            ["ovs-ofctl", "-O", "OpenFlow13", command, self.bridge, *args], env=self.env()
        ).stdout

    def add_flow(self, flow: str) -> None:
        self.ofctl("add-flow", flow)

    def dump_flows(self, table: int | None = None) -> list[FlowEntry]:
        """The bridge's flows, optionally of one table."""
        args = [] if table is None else [f"table={table}"]
        return parse_flows(self.ofctl("dump-flows", *args))

    def set_controller(self, port: int) -> None:
        """Point the bridge at tcp:127.0.0.1:<port> of its own namespace (the relay).

        Out-of-band, so OVS adds no hidden in-band flows; a short reconnect
        backoff so a controller that starts later is found within a second.
        """
        self.vsctl(
            "--", "set-controller", self.bridge, f"tcp:127.0.0.1:{port}",
            "--", "set", "controller", self.bridge,
            "connection-mode=out-of-band", "max_backoff=1000",
        )  # fmt: skip

    def controller_status(self) -> dict[str, str]:
        """The Controller row's ``status`` column (state, sec_since_connect, last_error...)."""
        output = self.vsctl("get", "controller", self.bridge, "status").strip()
        return dict(re.findall(r'(\w+)="?([^",}]*)"?', output))

    def is_connected(self) -> bool:
        """Whether OVS has a live OpenFlow connection to its controller."""
        result = netns.run(
            ["ovs-vsctl", f"--db=unix:{self.db_socket}", "--timeout=5",
             "get", "controller", self.bridge, "is_connected"],
            env=self.env(),
            check=False,
        )  # fmt: skip
        return result.returncode == 0 and result.stdout.strip() == "true"

    def wait_connected(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_connected():
                return True
            time.sleep(0.2)
        return False

    def log_text(self) -> str:
        try:
            return (self.rundir / "ovs-vswitchd.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""
