"""The lab harness against real Open vSwitch, without any controller code.

What the controller tests rely on: OVS comes up alone in its namespace with
the bridge settings we asked for; hosts reach each other over TCP once a
flow forwards (and not before: fail_mode=secure); the relay carries the
switch's OpenFlow connection to the root namespace's loopback; and cleanup
leaves nothing behind, also after the process that built the lab was killed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

from xmpp_ofc.lab import netns, probe, state

pytestmark = pytest.mark.ovs

OFP13_VERSION = 0x04
OFPT_HELLO = 0


def root_links() -> set[str]:
    return set(netns.run(["ip", "-o", "link", "show"]).stdout.split("\n"))


def test_switch_comes_up_isolated_with_the_requested_bridge(lab):
    links_before = {line.split(":")[1].strip() for line in root_links() if line}
    topology = lab()
    switch = topology.add_switch("s1", dpid=0x0A)
    h1 = topology.add_host("h1")
    h2 = topology.add_host("h2", ip="10.77.0.99/24", mac="02:AA:00:00:00:99", port=7)
    topology.start()

    ovs = switch.ovs
    assert ovs.vsctl("get", "bridge", "br0", "datapath_type").strip() == "netdev"
    assert ovs.vsctl("get", "bridge", "br0", "fail_mode").strip() == "secure"
    assert ovs.vsctl("get", "bridge", "br0", "protocols").strip() == "[OpenFlow13]"
    assert ovs.vsctl("get", "bridge", "br0", "datapath_id").strip() == '"000000000000000a"'
    assert switch.dpid == "00:00:00:00:00:00:00:0a"
    assert ovs.vsctl("get", "interface", "p1", "ofport").strip() == "1"
    assert ovs.vsctl("get", "interface", "p7", "ofport").strip() == "7"
    assert ovs.dump_flows() == []  # secure mode, nobody installed anything

    assert (h1.ip, h1.mac, h1.port) == ("10.77.0.11", "02:00:0a:4d:00:0b", 1)
    assert (h2.ip, h2.mac, h2.port) == ("10.77.0.99", "02:aa:00:00:00:99", 7)
    eth0 = netns.run_in(h2.namespace, ["ip", "-o", "addr", "show", "eth0"]).stdout
    assert "10.77.0.99/24" in eth0
    assert "02:aa:00:00:00:99" in netns.run_in(h2.namespace, ["ip", "link", "show", "eth0"]).stdout
    assert not netns.tx_offload_enabled(h1.namespace, "eth0")

    # Everything lives in the lab's namespaces: the root namespace gained no link.
    links_after = {line.split(":")[1].strip() for line in root_links() if line}
    assert links_after == links_before
    assert set(state.namespaces_of(topology.tag)) == {
        switch.namespace,
        h1.namespace,
        h2.namespace,
    }
    # Both daemons run inside the switch's namespace.
    daemon_pids = {proc.pid for proc in topology.state.processes}
    assert daemon_pids <= set(netns.pids(switch.namespace))


def test_secure_switch_forwards_tcp_only_once_a_flow_says_so(lab):
    topology = lab()
    switch = topology.add_switch("s1")
    h1, h2 = topology.add_host("h1"), topology.add_host("h2")
    topology.start()
    probe.serve_echo(h2, 7000)

    assert not probe.tcp_echo_works(h1, h2.ip, 7000, timeout=1.0)

    switch.ovs.add_flow("priority=1,actions=NORMAL")
    assert probe.tcp_echo_works(h1, h2.ip, 7000)
    # The datapath's counters reach the OpenFlow flow when the revalidator runs
    # (about every 500 ms): wait for both directions of the 64 KiB echo.
    deadline = time.monotonic() + 10
    while True:
        (flow,) = switch.ovs.dump_flows()
        if flow.n_bytes >= 2 * 64 * 1024 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (flow.priority, flow.actions) == (1, "NORMAL")
    assert flow.n_bytes >= 2 * 64 * 1024


def test_relay_carries_the_switch_connection_to_root_loopback(lab):
    """A fake controller on root 127.0.0.1 receives OVS' OpenFlow 1.3 HELLO."""
    with socket.create_server(("127.0.0.1", 0)) as controller:
        controller.settimeout(15)
        port = controller.getsockname()[1]
        topology = lab()
        switch = topology.add_switch("s1", controller_port=port)
        topology.start()

        first, _ = controller.accept()
        with first:
            first.settimeout(5)
            version, kind, _length, _xid = struct.unpack("!BBHI", first.recv(8))
            assert (version, kind) == (OFP13_VERSION, OFPT_HELLO)
        # The relay closes the switch side too: OVS notices and connects again.
        second, _ = controller.accept()
        with second:
            second.settimeout(5)
            assert second.recv(8)[:2] == bytes([OFP13_VERSION, OFPT_HELLO])
        assert "127.0.0.1" in switch.ovs.vsctl("get", "controller", "br0", "target")


def test_cleanup_after_the_builder_was_killed(tmp_path):
    """SIGKILL the process that built a lab; cleanup(tag) still removes everything."""
    tag = state.new_tag()
    builder = f"""
import socket, sys, time
from xmpp_ofc.lab import Topology
listener = socket.create_server(("127.0.0.1", 0))
topology = Topology({tag!r})
topology.add_switch("s1", controller_port=listener.getsockname()[1])
host = topology.add_host("h1")
topology.start()
host.spawn(["sleep", "600"])
print("up", flush=True)
time.sleep(600)
"""
    process = subprocess.Popen(
        [sys.executable, "-c", builder], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert process.stdout.readline().strip() == "up"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        entries = json.loads((state.tag_dir(tag) / "state.json").read_text())["processes"]
        recorded = [state.RecordedProcess(**entry) for entry in entries]
        assert len(recorded) == 4  # ovsdb-server, ovs-vswitchd, relay, sleep
        assert all(process.alive() for process in recorded)  # orphans, still running
        assert len(state.namespaces_of(tag)) == 2
        assert tag in state.known_tags()

        state.cleanup(tag)

        # Dead (zombies at most, until PID 1 reaps the orphans).
        assert not [process for process in recorded if process.alive()]
        assert state.namespaces_of(tag) == []
        assert not state.tag_dir(tag).exists()
        assert tag not in state.known_tags()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        state.cleanup(tag)


def test_cleanup_never_kills_a_process_it_did_not_record(lab):
    """A stranger in a lab namespace stops cleanup instead of being killed."""
    topology = lab()
    topology.add_switch("s1")
    host = topology.add_host("h1")
    topology.start()
    stranger = subprocess.Popen(netns.exec_args(host.namespace, ["sleep", "60"]))
    try:
        with pytest.raises(netns.CommandError, match="not started by the lab"):
            state.cleanup(topology.tag, timeout=0.5)
        assert stranger.poll() is None
        assert host.namespace in state.namespaces_of(topology.tag)
    finally:
        stranger.kill()
        stranger.wait(5)
    deadline = time.monotonic() + 5
    while netns.pids(host.namespace) and time.monotonic() < deadline:
        time.sleep(0.05)
