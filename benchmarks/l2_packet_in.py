"""Packet-in -> FlowMod latency and throughput: our controller beside os-ken and Faucet.

One command runs everything on loopback:

* the *reflector* (``ofgen.py reflector``: one FlowMod per packet-in, no logic),
  once, to show the load generator's own ceiling on this machine;
* ``--rounds`` rounds, alternating the order, of our controller
  (``xmpp-ofc-controller`` via ControllerProcess: Kytos, of_core, flow_manager,
  dispatcher, l2_switch), the project's os-ken 3.1.0 L2 app (``osken_l2.py``, in
  ``benchmarks/.venv-osken``) and Faucet from PyPI (in ``.bench-venv-faucet``),
  each venv created on first use and each controller a fresh process per round;
  the table shows the medians;
* with ``--baseline REF``, our controller as of git ``REF`` too (``git archive``
  into the work directory, run with ``PYTHONPATH`` on it): before/after figures
  from one run, each next to the os-ken measured in the same run;
* ``--shapes 1x1,16x64``: the whole comparison once per switches x window shape;
* ``--cpu N``: every controller pinned to core N with taskset, the generator to
  the other cores, so a controller gets one core, as in production;
* with ``--profile``, one more throughput run of ours under py-spy, summarised.

Each controller gets the same N emulated switches (``ofgen.LoadGenerator``).
After the pipeline is installed, 8 hosts per port are learned; then every
packet-in carries a fresh source MAC and an already learned destination on
another port, so ours answers with FlowMod + PacketOut and Faucet with its
learning FlowMods.  Latency: one packet-in outstanding, time to the answering
FlowMod.  Throughput: every switch keeps ``--window`` packet-ins outstanding for
``--seconds``.  The controller's CPU time (``/proc/<pid>/stat``) over each
phase divided by the packet-ins it answered gives the CPU per packet-in.

    .venv/bin/python benchmarks/l2_packet_in.py [--switches 4 --window 32 --seconds 10]
        [--shapes 1x1,16x64] [--cpu 1] [--baseline REF] [--skip-osken]
        [--rounds 3] [--latency-samples 2000] [--profile] [--skip-faucet] [--keep]

Every wait is bounded; every child process is stopped by PID at the end, also
on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import faucet_runner
import ofgen
import osken_runner
import pyspy_summary

from xmpp_ofc import cookies, pipeline
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.testing.controller import ControllerProcess, free_port

_FORWARDING_COOKIE, _FORWARDING_MASK = cookies.select_kind(Owner.L2_SWITCH, Kind.FORWARDING)

#: Our pipeline: frames reach the controller through l2_switch's table-miss flow
#: (table 1, priority 0), which the switch reports as OFPR_NO_MATCH; l2_switch
#: answers a known destination with a forwarding FlowMod, then a PacketOut.
OURS_PROFILE = ofgen.Profile(
    name="ours",
    packet_in_table=pipeline.TABLE_FORWARDING,
    packet_in_cookie=cookies.encode(Owner.L2_SWITCH, Kind.TABLE_MISS),
    packet_in_reason=ofgen.OFPR_NO_MATCH,
    vlan_vid=None,
    reply_table=pipeline.TABLE_FORWARDING,
    reply_cookie=_FORWARDING_COOKIE,
    reply_cookie_mask=_FORWARDING_MASK,
    completed_by="packet_out",
)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def process_cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of a process and its threads, or None without /proc."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuCost:
    """Controller CPU seconds over a phase and the packet-ins answered in it."""

    seconds: float = 0.0
    answered: int = 0

    @property
    def per_packet_in(self) -> float:
        return self.seconds / self.answered if self.answered else 0.0


@dataclass
class Figures:
    """The measured rounds of one controller; the table shows their medians."""

    name: str
    rounds: list[tuple[ofgen.PhaseResult, ofgen.PhaseResult]] = field(default_factory=list)
    #: (latency phase, throughput phase) CPU cost per round.
    cpu: list[tuple[CpuCost, CpuCost]] = field(default_factory=list)

    @staticmethod
    def percentile(values: list[float], fraction: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0

    @classmethod
    def round_row(cls, latency: ofgen.PhaseResult, load: ofgen.PhaseResult) -> dict[str, float]:
        return {
            "p50": cls.percentile(latency.latencies, 0.5),
            "p99": cls.percentile(latency.latencies, 0.99),
            "rate": load.rate,
            "load_p50": cls.percentile(load.latencies, 0.5),
            "load_p99": cls.percentile(load.latencies, 0.99),
        }

    def row(self) -> dict[str, float]:
        """Median over the rounds of each figure (other load on the box comes and goes)."""
        rows = [self.round_row(*pair) for pair in self.rounds]
        for row, (latency_cpu, load_cpu) in zip(rows, self.cpu, strict=False):
            row["cpu_latency"] = latency_cpu.per_packet_in
            row["cpu_load"] = load_cpu.per_packet_in
        return {key: statistics.median(row.get(key, 0.0) for row in rows) for key in rows[0]}

    def rates(self) -> str:
        return ", ".join(f"{load.rate:.0f}" for _, load in self.rounds)


class Children:
    """Every child process we start, stopped by PID however the run ends."""

    def __init__(self) -> None:
        self._stoppers: list[tuple[str, Callable[[], object]]] = []

    def add(self, name: str, stop: Callable[[], object]) -> None:
        self._stoppers.append((name, stop))

    def stop_all(self) -> None:
        while self._stoppers:
            name, stop = self._stoppers.pop()
            try:
                stop()
            except Exception as error:  # keep stopping the others
                say(f"stopping {name} failed: {error!r}")


def stop_popen(process: subprocess.Popen, timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@dataclass
class Target:
    """One controller under test.

    ``launch`` starts a fresh process and returns its OpenFlow port; ``shutdown``
    stops it.  Every round gets a fresh controller: Faucet slows down as learned
    hosts pile up (per-host Prometheus labels, host cache sorted per packet-in), so
    rounds on one long-lived process would measure the host count, not the round.
    """

    name: str
    profile: ofgen.Profile
    launch: Callable[[int], int]
    shutdown: Callable[[], object]
    once: bool = False  # measured in the first round only (the reflector)
    #: The PID of the process started by the last launch (for its CPU time).
    pid: Callable[[], int | None] = lambda: None


def answered(generator: ofgen.LoadGenerator) -> int:
    return sum(switch.answered for switch in generator.switches)


async def measure_round(port: int, target: Target, args: argparse.Namespace) -> Figures:
    """Connect, learn the hosts, then latency (one outstanding) and throughput."""
    generator = ofgen.LoadGenerator(
        "127.0.0.1", port, target.profile, dpids=dpids(args), ports=ports(args)
    )
    pid = target.pid()
    try:
        await generator.connect(timeout=args.timeout * 4)
        await generator.prelearn(timeout=args.timeout * 2)
        cpu0, answered0 = process_cpu_seconds(pid), answered(generator)
        latency = await generator.latency(args.latency_samples, timeout=args.timeout)
        cpu1, answered1 = process_cpu_seconds(pid), answered(generator)
        load = await generator.throughput(
            args.window, args.seconds, warmup=args.warmup, timeout=args.timeout
        )
        cpu2, answered2 = process_cpu_seconds(pid), answered(generator)
    finally:
        generator.close()
    costs = (CpuCost(), CpuCost())
    if cpu0 is not None and cpu1 is not None and cpu2 is not None:
        costs = (
            CpuCost(cpu1 - cpu0, answered1 - answered0),
            CpuCost(cpu2 - cpu1, answered2 - answered1),
        )
    row = Figures.round_row(latency, load)
    say(
        f"{target.name}: p50 {row['p50'] * 1e6:.0f} µs, p99 {row['p99'] * 1e6:.0f} µs "
        f"(1 outstanding, {costs[0].per_packet_in * 1e6:.0f} µs CPU each); "
        f"{row['rate']:.0f} packet-ins/s, p50 {row['load_p50'] * 1e3:.1f} ms, "
        f"p99 {row['load_p99'] * 1e3:.1f} ms under load ({costs[1].per_packet_in * 1e6:.0f} µs "
        f"CPU each); generator used {load.generator_cpu:.0%} of a core; lost {load.lost}, "
        f"without FlowMod {load.without_flow_mod}, unanswered at the end "
        f"{load.unanswered_at_end}; per second {load.per_second}"
    )
    return Figures(target.name, [(latency, load)], [costs])


def compare(targets: list[Target], args: argparse.Namespace, failures: list[str]) -> list[Figures]:
    """Every controller in every round, alternating the order, so drift hits all alike."""
    results = {target.name: Figures(target.name) for target in targets}
    alive = list(targets)
    for number in range(args.rounds):
        order = alive if number % 2 == 0 else alive[::-1]
        for target in [t for t in order if not (t.once and number)]:
            say(f"round {number + 1}/{args.rounds}: {target.name}")
            try:
                port = target.launch(number)
                figures = asyncio.run(measure_round(port, target, args))
                results[target.name].rounds += figures.rounds
                results[target.name].cpu += figures.cpu
            except (ofgen.ControllerSilent, TimeoutError, OSError, RuntimeError) as error:
                failures.append(f"{target.name}: {error}")
                say(f"{target.name} FAILED: {error}")
                alive.remove(target)
            finally:
                target.shutdown()
    return [figures for figures in results.values() if figures.rounds]


async def profile_ours(port: int, pid: int, out: Path, args: argparse.Namespace) -> str:
    """A throughput run with py-spy sampling the controller's GIL holder."""
    generator = ofgen.LoadGenerator(
        "127.0.0.1", port, OURS_PROFILE, dpids=dpids(args), ports=ports(args)
    )
    spy = None
    try:
        await generator.connect(timeout=args.timeout * 4)
        await generator.prelearn(timeout=args.timeout * 2)
        duration = int(args.seconds)
        spy = subprocess.Popen(
            [
                str(py_spy()),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(duration),
                "--rate",
                "200",
                "--gil",
                "--full-filenames",
                "--format",
                "raw",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        result = await generator.throughput(args.window, duration, warmup=0.5, timeout=args.timeout)
        say(f"ours under py-spy: {result.rate:.0f} packet-ins/s")
        await asyncio.get_running_loop().run_in_executor(None, spy.wait, duration + 30)
    finally:
        generator.close()
        if spy is not None:
            stop_popen(spy)
    if not out.exists():
        stderr = spy.stderr.read().decode(errors="replace") if spy and spy.stderr else ""
        return f"py-spy wrote no profile: {stderr[-500:]}"
    return pyspy_summary.render(pyspy_summary.summarise(pyspy_summary.load(out)))


def py_spy() -> Path:
    """py-spy from the os-ken venv, else from Faucet's (both install it)."""
    tool = osken_runner.venv_tool("py-spy")
    return tool if tool.exists() else faucet_runner.venv_tool("py-spy")


def dpids(args: argparse.Namespace, offset: int = 0) -> list[int]:
    return [offset + index + 1 for index in range(args.switches)]


def ports(args: argparse.Namespace) -> list[int]:
    return list(range(1, args.ports + 1))


def table(rows: list[Figures]) -> str:
    """Markdown table; the ratio columns compare each row with os-ken (else Faucet)."""
    names = [figures.name for figures in rows]
    reference = "os-ken" if "os-ken" in names else "faucet"
    base = next((figures.row() for figures in rows if figures.name == reference), None)
    lines = [
        "| controller | p50 latency | p99 latency | CPU/packet-in (1 outstanding) | "
        "packet-ins/s | p50 under load | p99 under load | CPU/packet-in under load | "
        f"throughput vs {reference} | p50 latency vs {reference} | CPU under load vs {reference} |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def ratio(row: dict[str, float], key: str) -> str:
        return f"{row[key] / base[key]:.2f}x" if base and base.get(key) else "-"

    for figures in rows:
        row = figures.row()
        lines.append(
            f"| {figures.name} | {row['p50'] * 1e6:.0f} µs | {row['p99'] * 1e6:.0f} µs | "
            f"{row.get('cpu_latency', 0) * 1e6:.0f} µs | "
            f"{row['rate']:.0f} | {row['load_p50'] * 1e3:.1f} ms | "
            f"{row['load_p99'] * 1e3:.1f} ms | {row.get('cpu_load', 0) * 1e6:.0f} µs | "
            f"{ratio(row, 'rate')} | {ratio(row, 'p50')} | {ratio(row, 'cpu_load')} |"
        )
    return "\n".join(lines)


def pin(pid: int, cpu: int | None) -> None:
    """Pin every thread of ``pid`` (and so the threads it starts later) to ``cpu``."""
    if cpu is not None:
        subprocess.run(
            ["taskset", "-a", "-p", "-c", str(cpu), str(pid)],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=10,
        )


def reflector_target(children: Children, args: argparse.Namespace) -> Target:
    """The reflector runs once; its process is started on launch and stopped after."""
    process: list[subprocess.Popen] = []

    def launch(_: int) -> int:
        port = free_port()
        script = str(Path(__file__).with_name("ofgen.py"))
        process.append(
            subprocess.Popen(
                [sys.executable, script, "reflector", "--port", str(port)],
                start_new_session=True,
            )
        )
        children.add("reflector", lambda: stop_popen(process[-1]))
        pin(process[-1].pid, args.cpu)
        wait_listening(port, args.timeout)
        return port

    return Target(
        "reflector",
        ofgen.REFLECTOR_PROFILE,
        launch,
        lambda: process and stop_popen(process[-1]),
        once=True,
        pid=lambda: process[-1].pid if process else None,
    )


def ours_target(
    children: Children,
    workdir: Path,
    args: argparse.Namespace,
    name: str = "ours",
    source: Path | None = None,
) -> tuple[Target, list[ControllerProcess]]:
    """Our controller, a fresh ControllerProcess (own base dir) per round.

    ``source``: a checkout whose ``src`` goes first on PYTHONPATH (the baseline);
    its ``napps/`` come along, as bundle_root() finds them next to the package.
    """
    started: list[ControllerProcess] = []
    env = {"PYTHONPATH": str(source / "src")} if source is not None else {}

    def launch(number: int) -> int:
        controller = ControllerProcess(workdir / f"{name}-{args.shape}-{number + 1}", env=env)
        started.append(controller)
        children.add(name, controller.stop)
        controller.start(timeout=60)
        pin(controller.process.pid, args.cpu)
        return controller.of_port

    def pid() -> int | None:
        return started[-1].process.pid if started and started[-1].process else None

    target = Target(name, OURS_PROFILE, launch, lambda: started and started[-1].stop(), pid=pid)
    return target, started


def osken_target(children: Children, workdir: Path, args: argparse.Namespace) -> Target:
    """The project's os-ken L2 app, a fresh osken-manager per round."""
    started: list[osken_runner.OskenProcess] = []

    def launch(number: int) -> int:
        osken = osken_runner.OskenProcess(workdir / f"osken-{args.shape}-{number + 1}")
        started.append(osken)
        children.add("os-ken", osken.stop)
        osken.start(timeout=60)
        pin(osken.pid, args.cpu)
        return osken.of_port

    return Target(
        "os-ken",
        osken_runner.OSKEN_PROFILE,
        launch,
        lambda: started and started[-1].stop(),
        pid=lambda: started[-1].pid if started else None,
    )


def faucet_target(children: Children, workdir: Path, args: argparse.Namespace) -> Target:
    """Faucet from its venv, a fresh process (own config and logs) per round."""
    started: list[faucet_runner.FaucetProcess] = []

    def launch(number: int) -> int:
        faucet = faucet_runner.FaucetProcess(
            workdir / f"faucet-{args.shape}-{number + 1}", dpids(args), ports(args)
        )
        started.append(faucet)
        children.add("faucet", faucet.stop)
        faucet.start(timeout=60)
        pin(faucet.pid, args.cpu)
        return faucet.of_port

    return Target(
        "faucet",
        faucet_runner.FAUCET_PROFILE,
        launch,
        lambda: started and started[-1].stop(),
        pid=lambda: started[-1].pid if started else None,
    )


def baseline_tree(ref: str, workdir: Path) -> Path:
    """``git archive ref`` of this repository, unpacked under ``workdir``."""
    repo = Path(__file__).resolve().parent.parent
    tree = workdir / f"baseline-{ref.replace('/', '_')}"
    tree.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", ref],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True, timeout=60)
    return tree


def parse_shapes(text: str | None, args: argparse.Namespace) -> list[tuple[int, int]]:
    if not text:
        return [(args.switches, args.window)]
    shapes = []
    for item in text.split(","):
        switches, _, window = item.strip().partition("x")
        shapes.append((int(switches), int(window)))
    return shapes


def run(args: argparse.Namespace, children: Children, workdir: Path) -> int:
    failures: list[str] = []
    targets: list[Target] = []
    if not args.skip_faucet:
        faucet_runner.ensure_venv(progress=say)
    if not args.skip_osken or args.profile:
        osken_runner.ensure_venv(progress=say)
    if args.cpu is not None:
        others = (os.sched_getaffinity(0) - {args.cpu}) or {args.cpu}
        os.sched_setaffinity(0, others)
        say(f"controllers pinned to core {args.cpu}; generator on cores {sorted(others)}")
    if not args.skip_reflector:
        targets.append(reflector_target(children, args))
    ours, controllers = ours_target(children, workdir, args)
    targets.append(ours)
    if args.baseline:
        tree = baseline_tree(args.baseline, workdir)
        targets.append(ours_target(children, workdir, args, f"ours@{args.baseline}", tree)[0])
    if not args.skip_osken:
        targets.append(osken_target(children, workdir, args))
    if not args.skip_faucet:
        targets.append(faucet_target(children, workdir, args))
    say(
        f"logs under {workdir}; os-ken {osken_runner.OSKEN_VERSION}, "
        f"faucet {faucet_runner.FAUCET_VERSION}"
    )

    by_shape: list[tuple[str, list[Figures]]] = []
    for switches, window in parse_shapes(args.shapes, args):
        args.switches, args.window, args.shape = switches, window, f"{switches}x{window}"
        say(f"shape {args.shape}: {switches} switches x {window} outstanding")
        by_shape.append((args.shape, compare(targets, args, failures)))
    profile_text = ""
    if args.profile and any(f.name == "ours" for _, results in by_shape for f in results):
        say("ours: one more throughput run under py-spy (the figures above are without it)")
        port = ours.launch(args.rounds)
        try:
            profile_text = asyncio.run(
                profile_ours(port, controllers[-1].process.pid, workdir / "ours.pyspy", args)
            )
        finally:
            ours.shutdown()
    report(args, by_shape, failures, profile_text)
    return 1 if failures else 0


def report(
    args: argparse.Namespace,
    by_shape: list[tuple[str, list[Figures]]],
    failures: list[str],
    profile_text: str,
) -> None:
    """The summary printed at the end: setup, machine, one table per shape, notes, profile."""
    print()
    print(
        f"{args.ports} ports per switch; latency: {args.latency_samples} packet-ins one at a "
        f"time; throughput: {args.seconds:g} s after {args.warmup:g} s warm-up; median of "
        f"{args.rounds} rounds; controllers pinned to core {args.cpu}"
    )
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}"
    )
    for shape, results in by_shape:
        print()
        print(f"### {shape} (switches x outstanding per switch)")
        print()
        print(table(results))
        print()
        for figures in results:
            print(f"{figures.name}: packet-ins/s per round: {figures.rates()}")
        for figures in results:
            for number, (_, load) in enumerate(figures.rounds, 1):
                print(f"{figures.name} round {number}: answers per second {load.per_second}")
        for figures in results:
            lost = sum(load.lost + load.unanswered_at_end for _, load in figures.rounds)
            bare = sum(load.without_flow_mod for _, load in figures.rounds)
            if lost or bare:
                print(
                    f"note: {figures.name}: {lost} packet-ins unanswered, "
                    f"{bare} answered without a FlowMod"
                )
    for failure in failures:
        print(f"FAILED {failure}")
    if profile_text:
        print()
        print("profile of ours during the throughput phase (py-spy --gil):")
        print(profile_text)


def wait_listening(port: int, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=4)
    parser.add_argument("--ports", type=int, default=4, help="ports per switch (>= 2)")
    parser.add_argument("--window", type=int, default=32, help="outstanding per switch")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput phase")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--latency-samples", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians")
    parser.add_argument("--timeout", type=float, default=5.0, help="per reply / step")
    parser.add_argument("--profile", action="store_true", help="py-spy our controller")
    parser.add_argument("--skip-faucet", action="store_true")
    parser.add_argument("--skip-osken", action="store_true")
    parser.add_argument("--shapes", help="comma-separated SWITCHESxWINDOW, e.g. 1x1,16x64")
    parser.add_argument("--cpu", type=int, help="pin every controller to this core")
    parser.add_argument("--baseline", help="also run our controller as of this git ref")
    parser.add_argument("--skip-reflector", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep logs and profile")
    args = parser.parse_args()
    args.shape = f"{args.switches}x{args.window}"
    if args.ports < 2 or args.switches < 1 or args.window < 1:
        parser.error("need --ports >= 2, --switches >= 1, --window >= 1")

    workdir = Path(tempfile.mkdtemp(prefix="xmpp_ofc-l2bench-"))
    children = Children()
    # SIGTERM behaves like Ctrl-C: unwind, stop the children, exit.  SIGINT is set
    # explicitly too: a shell starts background jobs with SIGINT ignored.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run(args, children, workdir)
    except ofgen.ControllerSilent as error:
        say(f"FAILED: {error}")
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        children.stop_all()
        if args.keep:
            say(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
