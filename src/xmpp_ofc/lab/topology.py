"""A small network of real Open vSwitch switches and hosts, built and torn down as one.

    with Topology() as lab:
        switch = lab.add_switch("s1", dpid=0x0A)
        h1 = lab.add_host("h1")                 # 10.77.0.11/24, 02:00:0a:4d:00:0b, port 1
        h2 = lab.add_host("h2")
        lab.start()
        switch.connect_controller(controller.of_port)
        h1.run(["python3", "-c", "..."])

Each switch is an :class:`~xmpp_ofc.lab.ovs.OvsSwitch` in its own namespace;
each host is a namespace with one interface ``eth0`` whose peer is port
``p<n>`` (OpenFlow port n) of its switch.  A switch reaches its controller on
127.0.0.1 of the root namespace through a relay process (see
:mod:`xmpp_ofc.lab.relay`).  Everything is recorded under the topology's tag,
so :func:`xmpp_ofc.lab.state.cleanup` removes it after a crash too.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xmpp_ofc.lab import netns, relay
from xmpp_ofc.lab.ovs import OvsSwitch
from xmpp_ofc.lab.state import LabState, RecordedProcess, cleanup, namespace_name, new_tag, tag_dir

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,9}$")
HOST_DEVICE = "eth0"


@dataclass
class Host:
    """A namespace with one addressed interface plugged into a switch port."""

    name: str
    namespace: str
    interface: ipaddress.IPv4Interface
    mac: str
    switch: Switch
    port: int
    _topology: Topology = field(repr=False)

    @property
    def ip(self) -> str:
        """The bare address, e.g. ``10.77.0.11``."""
        return str(self.interface.ip)

    def run(
        self, args: Sequence[str], *, timeout: float = 10.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the host and wait for it (bounded)."""
        return netns.run_in(self.namespace, args, timeout=timeout, check=check)

    def spawn(
        self, args: Sequence[str], log_path: Path | None = None, what: str | None = None
    ) -> subprocess.Popen:
        """Start a long-running command in the host; the topology stops it.

        ``what`` names it in ``state.json`` (default: the program).
        """
        return self._topology.spawn(
            self.namespace, args, log_path, what=f"{self.name}: {what or args[0]}"
        )

    def record(self, pid: int, what: str) -> RecordedProcess:
        """Record a process of this host that something else started (e.g. a daemon's child)."""
        return self._topology.state.add_process(pid, f"{self.name}: {what}")


@dataclass
class Switch:
    """An OVS bridge in its own namespace; ``ovs`` gives the OVS tools."""

    name: str
    namespace: str
    ovs: OvsSwitch
    controller_port: int | None
    _topology: Topology = field(repr=False)
    _relay: RecordedProcess | None = field(default=None, repr=False)

    @property
    def dpid(self) -> str:
        """Kytos' spelling of the datapath id (``00:00:00:00:00:00:00:0a``)."""
        return self.ovs.dpid_string

    def connect_controller(self, port: int) -> None:
        """Connect the bridge to the controller listening on root 127.0.0.1:<port>."""
        self.disconnect_controller()
        rundir = self.ovs.rundir
        process = relay.spawn(
            self.namespace, port, port, rundir / "relay.pid", rundir / "relay.log"
        )
        self._relay = self._topology.adopt(process, f"relay for {self.name}")
        self.controller_port = port
        self.ovs.set_controller(port)

    def disconnect_controller(self) -> None:
        """Stop the relay, which drops the OpenFlow connection (the switch keeps retrying)."""
        if self._relay is not None:
            self._topology.stop_process(self._relay)
            self._relay = None


class Topology:
    """Switches and hosts under one tag; a context manager that always cleans up."""

    def __init__(self, tag: str | None = None, *, subnet: str = "10.77.0.0/24") -> None:
        self.tag = tag or new_tag()
        self.subnet = ipaddress.IPv4Network(subnet)
        self.dir = tag_dir(self.tag)
        self.state = LabState(self.tag)
        self.switches: dict[str, Switch] = {}
        self.hosts: dict[str, Host] = {}
        self._children: dict[RecordedProcess, subprocess.Popen] = {}
        self.started = False

    # --- description -------------------------------------------------------------

    def add_switch(self, name: str = "s1", dpid: int = 1, controller_port: int | None = None):
        """Describe a switch; ``controller_port`` connects it at :meth:`start`."""
        namespace = self._claim(name)
        ovs = OvsSwitch(namespace=namespace, rundir=self.dir / name, dpid=dpid, state=self.state)
        switch = Switch(name, namespace, ovs, controller_port, self)
        self.switches[name] = switch
        return switch

    def add_host(
        self,
        name: str,
        ip: str | None = None,
        mac: str | None = None,
        switch: Switch | None = None,
        port: int | None = None,
    ) -> Host:
        """Describe a host; address, MAC and port default to the next free ones.

        The default address is the subnet's .(10 + n) for the n-th host, and
        the default MAC is ``02:00`` followed by the four address bytes, so a
        MAC in a flow dump says which host it is.
        """
        namespace = self._claim(name)
        if switch is None:
            if len(self.switches) != 1:
                raise ValueError("add_host needs switch= when there isn't exactly one switch")
            switch = next(iter(self.switches.values()))
        interface = ipaddress.IPv4Interface(
            ip
            or f"{self.subnet.network_address + 10 + len(self.hosts) + 1}/{self.subnet.prefixlen}"
        )
        mac = (mac or "02:00:" + ":".join(f"{byte:02x}" for byte in interface.ip.packed)).lower()
        port = port or max(switch.ovs.ports.values(), default=0) + 1
        if port in switch.ovs.ports.values():
            raise ValueError(f"port {port} of {switch.name} is taken")
        switch.ovs.ports[f"p{port}"] = port
        host = Host(name, namespace, interface, mac, switch, port, self)
        self.hosts[name] = host
        return host

    def _claim(self, name: str) -> str:
        if not NAME_PATTERN.match(name):
            raise ValueError(f"name {name!r} must match {NAME_PATTERN.pattern}")
        if name in self.switches or name in self.hosts:
            raise ValueError(f"name {name!r} is used twice")
        if self.started:
            raise RuntimeError("describe the whole topology before start()")
        return namespace_name(self.tag, name)

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> Topology:
        """Build namespaces and links, start OVS, connect controllers given up front."""
        self.started = True
        try:
            self.state.save()
            for switch in self.switches.values():
                self._create_namespace(switch.namespace)
            for host in self.hosts.values():
                self._create_namespace(host.namespace)
                netns.add_veth(host.switch.namespace, f"p{host.port}", host.namespace, HOST_DEVICE)
                netns.configure_interface(
                    host.namespace, HOST_DEVICE, mac=host.mac, address=str(host.interface)
                )
            for switch in self.switches.values():
                switch.ovs.start()
                if switch.controller_port is not None:
                    switch.connect_controller(switch.controller_port)
        except BaseException:
            self.stop()
            raise
        return self

    def _create_namespace(self, namespace: str) -> None:
        self.state.add_namespace(namespace)  # recorded first: cleanup may find a half-made one
        netns.create(namespace)

    def stop(self) -> None:
        """Remove everything this topology made (idempotent)."""
        try:
            cleanup(self.tag)
        finally:
            for process in self._children.values():
                process.wait(5)  # reap: they were killed by cleanup
            self._children.clear()
            self.started = False

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- processes ----------------------------------------------------------------------

    def spawn(
        self, namespace: str, args: Sequence[str], log_path: Path | None, what: str
    ) -> subprocess.Popen:
        """Start a process in ``namespace`` and record it for cleanup."""
        output = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            process = subprocess.Popen(
                netns.exec_args(namespace, args),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            if log_path:
                output.close()
        self.adopt(process, what)
        return process

    def adopt(self, process: subprocess.Popen, what: str) -> RecordedProcess:
        recorded = self.state.add_process(process.pid, what)
        self._children[recorded] = process
        return recorded

    def stop_process(self, recorded: RecordedProcess) -> None:
        recorded.terminate()
        self.state.forget_process(recorded)
        child = self._children.pop(recorded, None)
        if child is not None:
            child.wait(5)
