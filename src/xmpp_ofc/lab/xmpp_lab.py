"""The XMPP lab: the seed's demo environment (OVS + XMPP server + clients + controller).

``build`` makes, under one tag::

    root netns                 xofc-<tag>-sw (OVS, secure)      host namespaces
    controller 127.0.0.1:<of> <-- relay 127.0.0.1:<of>
    REST 127.0.0.1:<api>          br0 -- p1 ------------- xmpp  10.77.0.10 (XMPP :5222)
                                      -- p2 ------------- c1    10.77.0.11 (users)
                                      -- ...              ...
                                      -- pK ------------- x1    10.77.0.101 (spammers)

and writes what it built to ``<state root>/<tag>/lab.json``, so ``status``,
``load`` and ``down`` (other processes, maybe after a crash) find it.  Every
process is recorded in the tag's ``state.json`` the moment it starts
(:mod:`xmpp_ofc.lab.state`), so :func:`teardown` = ``state.cleanup(tag)``
removes everything, whatever state the builder died in.

Spammers live on their own hosts (own addresses), so blocking a spammer's
address never touches a well-behaved user.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xmpp_ofc.lab import netns, state
from xmpp_ofc.lab.ejabberd import EjabberdServer
from xmpp_ofc.lab.ovs import FlowEntry, OvsSwitch
from xmpp_ofc.lab.topology import Host, Topology
from xmpp_ofc.lab.xmpp_server import Account, ProsodyServer
from xmpp_ofc.testing.controller import ControllerProcess

DEFAULT_TAG = "lab"
SUBNET = "10.77.0.0/24"
PREFIX_LENGTH = 24
SERVER_HOST_NUMBER = 10  # 10.77.0.10
FIRST_CLIENT_NUMBER = 11  # c1 = 10.77.0.11, c2 = .12, ...
FIRST_SPAMMER_NUMBER = 101  # x1 = 10.77.0.101, ...
MAX_CLIENT_HOSTS = FIRST_SPAMMER_NUMBER - FIRST_CLIENT_NUMBER
MAX_SPAMMER_HOSTS = 254 - FIRST_SPAMMER_NUMBER
SWITCH_NAME = "sw"
SERVER_NAME = "xmpp"
DPID = 1
DESCRIPTION_FILE = "lab.json"
CONTROLLER_WHAT = "xmpp_ofc controller"  # how state.json names the controller process

# Forwarding modes: "controller" = our NApps (l2_switch) forward; "normal" = the lab
# adds OVS NORMAL (built-in learning switch) flows at priority 1 in tables 0 and 1,
# below every flow of ours but above the table-miss flows, so XMPP works even
# without an L2 NApp while the rate limiter's flows (priority 150-300) still apply.
FORWARDING_MODES = ("controller", "normal")
DEFAULT_FORWARDING = "controller"
NORMAL_FLOWS = ("table=0,priority=1,actions=NORMAL", "table=1,priority=1,actions=NORMAL")

# The XMPP server the lab runs (``up --server``); both are Debian packages.
SERVERS = ("prosody", "ejabberd")
DEFAULT_SERVER = "prosody"


@dataclass
class LabHost:
    """One host namespace of the lab and the XMPP accounts that live on it."""

    name: str
    role: str  # "server", "user" or "spammer"
    namespace: str
    ip: str
    mac: str
    port: int
    accounts: list[list[str]] = field(default_factory=list)  # [user, password]

    @classmethod
    def of(cls, host: Host, role: str, accounts: list[list[str]]) -> LabHost:
        return cls(host.name, role, host.namespace, host.ip, host.mac, host.port, accounts)


@dataclass
class LabDescription:
    """What ``up`` built; saved as JSON in the tag's directory."""

    tag: str
    forwarding: str
    switch_namespace: str
    switch_rundir: str
    dpid: int
    domain: str
    xmpp_port: int
    of_port: int | None
    api_port: int | None
    controller_log: str | None
    server_log: str
    hosts: list[LabHost] = field(default_factory=list)
    complete: bool = False
    server_kind: str = DEFAULT_SERVER  # "prosody" or "ejabberd"

    @property
    def server(self) -> LabHost:
        return next(host for host in self.hosts if host.role == "server")

    def clients(self, role: str | None = None) -> list[LabHost]:
        """Client hosts (``role`` "user" or "spammer", or both)."""
        return [
            host
            for host in self.hosts
            if host.role != "server" and (role is None or host.role == role)
        ]

    @property
    def api_url(self) -> str | None:
        return None if self.api_port is None else f"http://127.0.0.1:{self.api_port}/api/"

    def switch(self) -> OvsSwitch:
        """The OVS tools for the lab's bridge (flows, controller state, vswitchd restart)."""
        return OvsSwitch(
            namespace=self.switch_namespace,
            rundir=Path(self.switch_rundir),
            dpid=self.dpid,
            state=state.LabState.load(self.tag),
        )

    def controller(self) -> ControllerProcess:
        """A handle on the lab's controller: its REST API (``get``/``patch``/...) and log.

        Not started by this call; :func:`start_controller` starts it.
        """
        if self.of_port is None or self.api_port is None or self.controller_log is None:
            raise RuntimeError(f"lab {self.tag!r} was built without a controller")
        return ControllerProcess(
            Path(self.controller_log).parent, of_port=self.of_port, api_port=self.api_port
        )

    def save(self) -> None:
        path = description_path(self.tag)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=1))
        temporary.replace(path)

    @classmethod
    def load(cls, tag: str) -> LabDescription | None:
        try:
            raw = json.loads(description_path(tag).read_text())
        except (FileNotFoundError, ValueError):
            return None
        hosts = [LabHost(**host) for host in raw.pop("hosts", [])]
        return cls(**raw, hosts=hosts)


def description_path(tag: str) -> Path:
    return state.tag_dir(tag) / DESCRIPTION_FILE


@dataclass(frozen=True)
class LabOptions:
    """What ``up`` is asked to build."""

    tag: str = DEFAULT_TAG
    clients: int = 3
    spammers: int = 1
    users_per_client: int = 5
    spammers_per_host: int = 1
    of_port: int = 6653
    api_port: int = 8181
    controller: bool = True
    forwarding: str = DEFAULT_FORWARDING
    domain: str = "lab.test"
    server: str = DEFAULT_SERVER

    def check(self) -> None:
        if self.server not in SERVERS:
            raise ValueError(f"--server must be one of {SERVERS}, got {self.server!r}")
        if not 1 <= self.clients <= MAX_CLIENT_HOSTS:
            raise ValueError(f"--clients must be 1-{MAX_CLIENT_HOSTS}, got {self.clients}")
        if not 0 <= self.spammers <= MAX_SPAMMER_HOSTS:
            raise ValueError(f"--spammers must be 0-{MAX_SPAMMER_HOSTS}, got {self.spammers}")
        if not 1 <= self.users_per_client <= 5000:
            raise ValueError(f"--users must be 1-5000, got {self.users_per_client}")
        if not 1 <= self.spammers_per_host <= 5000:
            raise ValueError(f"--spammers-per-host must be 1-5000, got {self.spammers_per_host}")
        if self.forwarding not in FORWARDING_MODES:
            raise ValueError(f"--forwarding must be one of {FORWARDING_MODES}")
        if self.forwarding == "controller" and not self.controller:
            raise ValueError("--forwarding controller needs the controller (drop --no-controller)")
        if self.controller and self.of_port == self.api_port:
            raise ValueError("--of-port and --api-port must differ")


class LabExists(RuntimeError):
    """A complete lab with this tag is running: ``down`` first."""


def host_address(number: int) -> str:
    return str(ipaddress.IPv4Network(SUBNET).network_address + number)


def port_in_use(port: int) -> bool:
    """Whether something listens on root 127.0.0.1:<port> already."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def is_running(description: LabDescription) -> bool:
    """A complete lab whose recorded processes all still run."""
    processes = state.LabState.load(description.tag).processes
    return description.complete and bool(processes) and all(p.alive() for p in processes)


def leftovers(tag: str) -> bool:
    """Whether anything of ``tag`` exists (state dir or namespaces)."""
    return state.tag_dir(tag).exists() or bool(state.namespaces_of(tag))


def build(options: LabOptions, say: Callable[[str], None] = print) -> LabDescription:
    """Build the lab; on any failure or Ctrl-C remove what was built, then re-raise.

    Refuses (``LabExists``) when a complete lab with the tag runs; clears the
    leftovers of a crashed or half-built one first.
    """
    options.check()
    previous = LabDescription.load(options.tag)
    if previous is not None and is_running(previous):
        raise LabExists(f"lab {options.tag!r} is already up; run `down` first")
    if leftovers(options.tag):
        say(f"removing leftovers of an earlier lab {options.tag!r}")
        state.cleanup(options.tag)
    if options.controller:
        for port in (options.of_port, options.api_port):
            if port_in_use(port):
                raise OSError(f"127.0.0.1:{port} is in use; pick another with --of-port/--api-port")

    topology = Topology(options.tag, subnet=SUBNET)
    try:
        description = _build(topology, options, say)
    except BaseException:
        say("failed or interrupted: removing what was built")
        topology.stop()
        raise
    return description


def _build(topology: Topology, options: LabOptions, say: Callable[[str], None]) -> LabDescription:
    started = time.monotonic()
    switch = topology.add_switch(
        SWITCH_NAME, dpid=DPID, controller_port=options.of_port if options.controller else None
    )
    server_host = topology.add_host(
        SERVER_NAME, ip=f"{host_address(SERVER_HOST_NUMBER)}/{PREFIX_LENGTH}"
    )
    plan = [("user", f"c{n}", FIRST_CLIENT_NUMBER + n - 1) for n in range(1, options.clients + 1)]
    plan += [
        ("spammer", f"x{n}", FIRST_SPAMMER_NUMBER + n - 1) for n in range(1, options.spammers + 1)
    ]
    client_hosts = [
        (role, topology.add_host(name, ip=f"{host_address(number)}/{PREFIX_LENGTH}"))
        for role, name, number in plan
    ]

    server = make_server(options.server, topology, server_host, options.domain)
    hosts = [LabHost.of(server_host, "server", [])]
    for role, host in client_hosts:
        count = options.users_per_client if role == "user" else options.spammers_per_host
        accounts = [[f"{host.name}u{i}", f"{host.name}u{i}-pw"] for i in range(1, count + 1)]
        hosts.append(LabHost.of(host, role, accounts))
    controller_dir = topology.dir / "controller"
    description = LabDescription(
        tag=options.tag,
        forwarding=options.forwarding,
        switch_namespace=switch.namespace,
        switch_rundir=str(switch.ovs.rundir),
        dpid=DPID,
        domain=options.domain,
        xmpp_port=server.port,
        of_port=options.of_port if options.controller else None,
        api_port=options.api_port if options.controller else None,
        controller_log=str(controller_dir / "controller.log") if options.controller else None,
        server_log=str(server.log_path),
        hosts=hosts,
        server_kind=server.kind,
    )

    say(f"building lab {options.tag!r}: OVS, {len(hosts)} hosts")
    topology.start()
    description.save()  # status can show a half-built lab; down needs only state.json

    server_started = time.monotonic()
    server.start(
        spawn=server_host.spawn,
        record=server_host.record,
        accounts=[
            Account(user, options.domain, password)
            for host in description.clients()
            for user, password in host.accounts
        ],
    )
    say(
        f"{server.kind} up on {server.address}:{server.port} ({server.domain}) "
        f"in {time.monotonic() - server_started:.1f} s"
    )

    if options.forwarding == "normal":
        for flow in NORMAL_FLOWS:
            switch.ovs.add_flow(flow)

    if options.controller:
        controller = ControllerProcess(
            controller_dir, of_port=options.of_port, api_port=options.api_port
        )
        say(f"starting the controller (log {controller.log_path})")
        controller.start(timeout=60, on_spawn=lambda child: topology.adopt(child, CONTROLLER_WHAT))
        if not switch.ovs.wait_connected(timeout=30):
            raise TimeoutError(
                f"OVS did not connect to the controller within 30 s; "
                f"controller log: {controller.log_path}"
            )
    description.complete = True
    description.save()
    say(f"lab {options.tag!r} up in {time.monotonic() - started:.1f} s")
    return description


def make_server(
    kind: str, topology: Topology, host: Host, domain: str
) -> ProsodyServer | EjabberdServer:
    """The lab's XMPP server of ``kind``, its files under ``<tag dir>/<kind>/``."""
    directory = topology.dir / kind
    if kind == "ejabberd":
        return EjabberdServer(directory, host.namespace, host.ip, tag=topology.tag, domain=domain)
    return ProsodyServer(directory, host.namespace, host.ip, domain=domain)


# --- controller restart ------------------------------------------------------------


def stop_controller(description: LabDescription, timeout: float = 20.0) -> bool:
    """Stop the lab's controller by its recorded PID; False when none was running.

    SIGTERM first (Kytos shuts its NApps down cleanly), SIGKILL after ``timeout``.
    Returns once OVS has noticed the lost connection, so a later
    :func:`start_controller` can wait for a *new* one.
    """
    recorded = state.LabState.load(description.tag)
    controllers = [p for p in recorded.processes if p.what == CONTROLLER_WHAT]
    running = [p for p in controllers if p.alive()]
    for process in controllers:
        process.terminate(timeout)
        recorded.forget_process(process)
    switch = description.switch()
    deadline = time.monotonic() + 10
    while switch.is_connected() and time.monotonic() < deadline:
        time.sleep(0.1)
    return bool(running)


def start_controller(
    description: LabDescription, timeout: float = 60.0, say: Callable[[str], None] = print
) -> ControllerProcess:
    """Start the lab's controller again: same ports, same Kytos base directory.

    The base directory holds what the NApps persist (the rate limiter's
    blocks and settings), so this is a controller restart, not a new one.
    Waits until OVS is connected to it.
    """
    controller = description.controller()
    for port in (controller.of_port, controller.api_port):
        if port_in_use(port):
            raise OSError(f"127.0.0.1:{port} is in use: is the controller still running?")
    recorded = state.LabState.load(description.tag)
    say(f"starting the controller (log {controller.log_path})")
    controller.start(
        timeout=timeout,
        on_spawn=lambda child: recorded.add_process(child.pid, CONTROLLER_WHAT),
    )
    if not description.switch().wait_connected(timeout=30):
        raise TimeoutError(
            f"OVS did not reconnect to the controller within 30 s; log: {controller.log_path}"
        )
    return controller


def restart_controller(
    description: LabDescription, say: Callable[[str], None] = print
) -> ControllerProcess:
    """Stop the controller (by PID) and start it again on the same base directory."""
    say("stopping the controller" if stop_controller(description) else "controller was not running")
    return start_controller(description, say=say)


def restart_switch(description: LabDescription, timeout: float = 30.0) -> None:
    """Restart ovs-vswitchd (empty flow tables) and wait until it is back with the controller."""
    switch = description.switch()
    switch.restart_vswitchd()
    if description.of_port is not None and not switch.wait_connected(timeout=timeout):
        raise TimeoutError(f"OVS did not reconnect to the controller within {timeout} s")


def teardown(tag: str) -> bool:
    """Remove everything of ``tag``; False when there was nothing."""
    if not leftovers(tag):
        return False
    state.cleanup(tag)
    return True


# --- status --------------------------------------------------------------------


def flows_by_table(description: LabDescription) -> dict[int, list[FlowEntry]]:
    tables: dict[int, list[FlowEntry]] = {}
    for flow in description.switch().dump_flows():
        tables.setdefault(flow.table, []).append(flow)
    return dict(sorted(tables.items()))


def processes(tag: str) -> list[tuple[state.RecordedProcess, bool]]:
    return [(process, process.alive()) for process in state.LabState.load(tag).processes]


def namespaces(tag: str) -> list[str]:
    return state.namespaces_of(tag)


def host_pids(description: LabDescription) -> dict[str, list[int]]:
    return {host.name: netns.pids(host.namespace) for host in description.hosts}
