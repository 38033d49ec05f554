"""The XMPP lab end to end: ``up``, ``status``, ``load``, ``down`` as a user runs them.

Real OVS, a real XMPP server from Debian in its own namespace (the module's
lab runs once with prosody and once with ejabberd), real slixmpp clients in
three user hosts and one spammer host, our controller in the root namespace.
Every command runs as a subprocess (``python -m xmpp_ofc.lab``), so what is
tested is the command line, and a crash can be simulated with SIGKILL.  After
``down`` nothing may be left: no namespace with the tag, no recorded process,
no state directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from pwd import getpwnam

import pytest

from xmpp_ofc.lab import ejabberd, netns, state
from xmpp_ofc.lab.xmpp_lab import SERVERS, LabDescription
from xmpp_ofc.testing.controller import free_port

pytestmark = pytest.mark.ovs

CLIENTS = 3
USERS_PER_CLIENT = 5
SPAMMERS = 1


def lab_command(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m xmpp_ofc.lab <args>`` and wait (bounded)."""
    return subprocess.run(
        [sys.executable, "-m", "xmpp_ofc.lab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_nothing_left(tag: str, recorded: list[state.RecordedProcess]) -> None:
    assert state.namespaces_of(tag) == []
    assert not state.tag_dir(tag).exists()
    assert [process for process in recorded if process.alive()] == []
    assert tag not in state.known_tags()


def server_process(tag: str, kind: str = "prosody") -> state.RecordedProcess:
    """The server's recorded process: prosody itself, or ejabberd's VM (not ejabberdctl)."""
    needle = "prosody" if kind == "prosody" else "beam.smp"
    (server,) = [p for p in state.LabState.load(tag).processes if needle in p.what]
    return server


def pwd_uid(user: str) -> int:
    return getpwnam(user).pw_uid


def read_until(process: subprocess.Popen[str], needle: str, timeout: float) -> None:
    """Read ``process``'s output up to a line holding ``needle`` (deadline checked per line)."""
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        if needle in line or time.monotonic() > deadline:
            break


@contextmanager
def killed_on_exit(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """``process``, killed on exit if it still runs (a failed test leaves no child)."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)


@contextmanager
def up_until_the_controller_starts(
    tag: str, ports: list[str], start_new_session: bool = False, server: str = "prosody"
) -> Iterator[subprocess.Popen[str]]:
    """``up --tag <tag> --clients 1 --server <server>`` in a subprocess, handed over while
    it starts the controller.

    On exit the builder is killed if it still runs, and whatever it left with
    the tag is removed, so the test's own assertions decide pass or fail.
    """
    builder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xmpp_ofc.lab",
            "up",
            "--tag",
            tag,
            "--clients",
            "1",
            "--server",
            server,
            *ports,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=start_new_session,
    )
    try:
        with killed_on_exit(builder):
            read_until(builder, "starting the controller", timeout=60)
            time.sleep(0.5)  # the controller child exists and is recorded
            yield builder
    finally:
        if state.tag_dir(tag).exists() or state.namespaces_of(tag):
            state.cleanup(tag)


@pytest.fixture(scope="module", params=SERVERS)
def xmpp_lab(request):
    """A lab up for the whole module, per server; ``down`` at the end must leave nothing."""
    tag = state.new_tag()
    of_port, api_port = free_port(), free_port()
    result = lab_command(
        "up", "--tag", tag, "--server", request.param,
        "--clients", str(CLIENTS), "--users", str(USERS_PER_CLIENT),
        "--spammers", str(SPAMMERS),
        "--of-port", str(of_port), "--api-port", str(api_port),
    )  # fmt: skip
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        description = LabDescription.load(tag)
        assert description is not None
        assert description.server_kind == request.param
        yield description, result.stdout
    finally:
        recorded = state.LabState.load(tag).processes
        down = lab_command("down", "--tag", tag)
        if down.returncode != 0:
            state.cleanup(tag)
        assert down.returncode == 0, down.stdout + down.stderr
        assert_nothing_left(tag, recorded)


def test_up_builds_and_prints_the_lab(xmpp_lab):
    description, output = xmpp_lab
    assert description.complete
    server = description.server
    assert server.ip == "10.77.0.10"
    assert [host.name for host in description.clients("user")] == ["c1", "c2", "c3"]
    assert [host.name for host in description.clients("spammer")] == ["x1"]
    assert all(len(host.accounts) == USERS_PER_CLIENT for host in description.clients("user"))
    # What it prints says where things are.
    server_line = f"{description.server_kind} on 10.77.0.10:5222"
    for needle in (server_line, description.api_url, "c3", "10.77.0.101"):
        assert needle in output
    # The controller's REST API answers on the machine's own loopback.
    with urllib.request.urlopen(f"{description.api_url}kytos/core/status/", timeout=5) as reply:
        assert reply.status == 200


def test_the_server_runs_alone_in_the_server_namespace_on_its_ports(xmpp_lab):
    description, _ = xmpp_lab
    kind = description.server_kind
    server = server_process(description.tag, kind)
    assert server.alive()
    assert server.pid in netns.pids(description.server.namespace)
    listening = netns.run_in(description.server.namespace, ["ss", "-Hltnp"]).stdout.split("\n")
    addresses = sorted(line.split()[3] for line in listening if line.strip())
    directory = state.tag_dir(description.tag) / kind
    if kind == "prosody":
        assert addresses == ["10.77.0.10:5222"]  # c2s only, on the server's address; no s2s
        config = (directory / "prosody.cfg.lua").read_text()
        (enabled,) = [line for line in config.splitlines() if line.startswith("modules_enabled")]
        assert "posix" in enabled
        assert "limits" not in enabled  # mod_limits would shape the flood itself
        return
    # ejabberd: c2s on the server's address, Erlang distribution on the namespace's own
    # loopback only, and no epmd (4369) anywhere: the lab's node never needs one.
    assert addresses == sorted(["10.77.0.10:5222", f"127.0.0.1:{ejabberd.DIST_PORT}"])
    assert "epmd" not in " ".join(listening)
    assert all(f"pid={server.pid}," in line for line in listening if line.strip())
    config = (directory / "ejabberd.yml").read_text()
    assert "c2s_shaper: none" in config  # the stock shaper would throttle the flood itself
    command = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
    assert f"xofc_{description.tag}@localhost".encode() in command  # the lab's own node
    assert str(directory / "db").encode() in b" ".join(command)  # and its own spool
    (uids,) = [line for line in Path(f"/proc/{server.pid}/status").read_text().splitlines()
               if line.startswith("Uid:")]  # fmt: skip
    assert set(uids.split()[1:]) == {str(pwd_uid("ejabberd"))}  # not root, no su


def test_load_delivers_messages_and_measures_the_spammer(xmpp_lab, tmp_path):
    description, _ = xmpp_lab
    summary_path = tmp_path / "summary.json"
    result = lab_command(
        "load", "--tag", description.tag,
        "--duration", "6", "--rate", "60", "--spam-rate", "3000",
        "--json", str(summary_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(summary_path.read_text())

    accounts = CLIENTS * USERS_PER_CLIENT + SPAMMERS
    assert (summary["accounts"], summary["connected_at_start"]) == (accounts, accounts)
    assert summary["failures"] == 0
    # Well-behaved users: 15 users at 1/s for 6 s; every message arrives, each with a TTD.
    assert summary["sent"]["user"] >= 30
    assert summary["delivered"]["user"] == summary["sent"]["user"]
    ttd = summary["ttd_ms"]["user"]
    assert ttd["n"] == summary["delivered"]["user"]
    assert 0 < ttd["p50"] <= ttd["p90"] <= ttd["p99"] <= ttd["max"]
    # The spammer host sends far more than any user host (50/s against 5 x 1/s).
    hosts = summary["hosts"]
    spammer_sent = hosts["x1"]["sent"]
    assert hosts["x1"]["role"] == "spam"
    assert all(spammer_sent > 4 * hosts[name]["sent"] for name in ("c1", "c2", "c3"))
    assert summary["sent"]["spam"] == spammer_sent
    # It all went through our controller's pipeline: no OVS NORMAL flow anywhere, and
    # table 0's flows (the dispatcher's miss flow never expires) counted the traffic.
    assert description.forwarding == "controller"
    flows = description.switch().dump_flows()
    assert not [flow for flow in flows if "NORMAL" in flow.actions]
    assert sum(flow.n_packets for flow in flows if flow.table == 0) > summary["sent"]["user"]
    # Per-window progress lines and the totals were printed while it ran.
    assert "[   0-  10 s] connected   16" in result.stdout
    assert "load summary: users logged in 16/16" in result.stdout
    # The workers are gone and no longer recorded.
    assert not [p for p in state.LabState.load(description.tag).processes if "load" in p.what]


def test_status_shows_flows_per_table_and_the_rate_limiter(xmpp_lab):
    description, _ = xmpp_lab
    result = lab_command("status", "--tag", description.tag)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout
    assert "controller connection: connected" in output
    assert "table 0:" in output
    assert "actions=" in output
    assert "monitored clients:" in output
    assert "blocked clients:" in output
    for what in ("ovsdb-server", "ovs-vswitchd", description.server_kind, "controller"):
        assert any(what in line and "running" in line for line in output.splitlines()), what


def test_up_refuses_a_second_lab_with_the_same_tag(xmpp_lab):
    description, _ = xmpp_lab
    result = lab_command("up", "--tag", description.tag, "--no-controller")
    assert result.returncode == 1
    assert "already up" in result.stderr
    assert server_process(description.tag, description.server_kind).alive()  # untouched


@pytest.mark.parametrize("server", SERVERS)
def test_up_after_a_crash_mid_way_and_down_leave_nothing(server):
    """SIGKILL ``up`` while the controller starts; ``up`` again recovers, ``down`` cleans.

    With ejabberd the orphans include its VM, a child of ejabberdctl: it must be
    stopped by its own recorded PID.
    """
    tag = state.new_tag()
    ports = ["--of-port", str(free_port()), "--api-port", str(free_port())]
    with up_until_the_controller_starts(tag, ports, True, server) as builder:
        os.kill(builder.pid, signal.SIGKILL)
        builder.wait(10)
        orphans = state.LabState.load(tag).processes
        assert any("controller" in p.what for p in orphans)
        assert all(p.alive() for p in orphans)
        assert state.namespaces_of(tag)

        if server == "ejabberd":
            assert any("beam.smp" in p.what for p in orphans)
        again = lab_command("up", "--tag", tag, "--clients", "1", "--server", server, *ports)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "removing leftovers" in again.stdout
        assert not [p for p in orphans if p.alive()]
        assert server_process(tag, server).alive()

        recorded = state.LabState.load(tag).processes
        down = lab_command("down", "--tag", tag)
        assert down.returncode == 0, down.stdout + down.stderr
        assert_nothing_left(tag, recorded)
        assert lab_command("down", "--tag", tag).stdout.strip().endswith("nothing to remove")


@pytest.mark.parametrize(
    ("sig", "server"),
    [(signal.SIGINT, "prosody"), (signal.SIGTERM, "prosody"), (signal.SIGINT, "ejabberd")],
)
def test_interrupted_up_removes_what_it_built(sig, server):
    tag = state.new_tag()
    ports = ["--of-port", str(free_port()), "--api-port", str(free_port())]
    with up_until_the_controller_starts(tag, ports, server=server) as builder:
        recorded = state.LabState.load(tag).processes
        names = {p.what.split()[-1] for p in recorded}
        assert {"prosody" if server == "prosody" else "(beam.smp)", "controller"} <= names
        builder.send_signal(sig)
        output, _ = builder.communicate(timeout=60)
        assert builder.returncode == 130, output
        assert "removing what was built" in output
        assert_nothing_left(tag, recorded)


def test_ctrl_c_during_load_stops_the_workers(xmpp_lab):
    description, _ = xmpp_lab
    load = subprocess.Popen(
        [sys.executable, "-m", "xmpp_ofc.lab", "load", "--tag", description.tag,
         "--duration", "60", "--json", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    with killed_on_exit(load):
        read_until(load, "sending for", timeout=30)
        workers = [p for p in state.LabState.load(description.tag).processes if "load" in p.what]
        assert len(workers) == CLIENTS + SPAMMERS
        load.send_signal(signal.SIGINT)
        output, _ = load.communicate(timeout=30)
        assert load.returncode == 130
        assert "load summary (interrupted)" in output
        assert not [p for p in workers if p.alive()]
        assert not [p for p in state.LabState.load(description.tag).processes if "load" in p.what]


def test_state_lives_under_the_tag_directory(xmpp_lab):
    description, _ = xmpp_lab
    directory = state.tag_dir(description.tag)
    assert Path(description.server_log).is_relative_to(directory)
    assert Path(description.controller_log).is_relative_to(directory)
    assert Path(description.switch_rundir).is_relative_to(directory)
