"""Packet-in -> FlowMod latency and throughput: our controller side by side with Faucet.

One command runs everything on loopback:

* the *reflector* (``ofgen.py reflector``: one FlowMod per packet-in, no logic),
  once, to show the load generator's own ceiling on this machine;
* ``--rounds`` rounds, alternating the order, of our controller
  (``xmpp-ofc-controller`` via ControllerProcess: Kytos, of_core, flow_manager,
  dispatcher, l2_switch) and Faucet from PyPI (in ``.bench-venv-faucet``, created
  on first use), each a fresh process per round; the table shows the medians;
* with ``--profile``, one more throughput run of ours under py-spy, summarised.

Each controller gets the same N emulated switches (``ofgen.LoadGenerator``).
After the pipeline is installed, 8 hosts per port are learned; then every
packet-in carries a fresh source MAC and an already learned destination on
another port, so ours answers with FlowMod + PacketOut and Faucet with its
learning FlowMods.  Latency: one packet-in outstanding, time to the answering
FlowMod.  Throughput: every switch keeps ``--window`` packet-ins outstanding for
``--seconds``.

    .venv/bin/python benchmarks/l2_packet_in.py [--switches 4 --window 32 --seconds 10]
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


@dataclass
class Figures:
    """The measured rounds of one controller; the table shows their medians."""

    name: str
    rounds: list[tuple[ofgen.PhaseResult, ofgen.PhaseResult]] = field(default_factory=list)

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
        return {key: statistics.median(row[key] for row in rows) for key in rows[0]}

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


async def measure_round(port: int, target: Target, args: argparse.Namespace) -> Figures:
    """Connect, learn the hosts, then latency (one outstanding) and throughput."""
    generator = ofgen.LoadGenerator(
        "127.0.0.1", port, target.profile, dpids=dpids(args), ports=ports(args)
    )
    try:
        await generator.connect(timeout=args.timeout * 4)
        await generator.prelearn(timeout=args.timeout * 2)
        latency = await generator.latency(args.latency_samples, timeout=args.timeout)
        load = await generator.throughput(
            args.window, args.seconds, warmup=args.warmup, timeout=args.timeout
        )
    finally:
        generator.close()
    row = Figures.round_row(latency, load)
    say(
        f"{target.name}: p50 {row['p50'] * 1e6:.0f} µs, p99 {row['p99'] * 1e6:.0f} µs "
        f"(1 outstanding); {row['rate']:.0f} packet-ins/s, p50 {row['load_p50'] * 1e3:.1f} ms "
        f"under load; generator used {load.generator_cpu:.0%} of a core; lost {load.lost}, "
        f"without FlowMod {load.without_flow_mod}, unanswered at the end "
        f"{load.unanswered_at_end}; per second {load.per_second}"
    )
    return Figures(target.name, [(latency, load)])


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
                str(faucet_runner.venv_tool("py-spy")),
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


def dpids(args: argparse.Namespace, offset: int = 0) -> list[int]:
    return [offset + index + 1 for index in range(args.switches)]


def ports(args: argparse.Namespace) -> list[int]:
    return list(range(1, args.ports + 1))


def table(rows: list[Figures], reference: str = "faucet") -> str:
    """Markdown table; the ratio column compares each row with Faucet."""
    base = next((figures.row() for figures in rows if figures.name == reference), None)
    lines = [
        "| controller | p50 latency | p99 latency | packet-ins/s | p50 under load | "
        "p99 under load | throughput vs Faucet | p50 latency vs Faucet |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for figures in rows:
        row = figures.row()
        ratio_rate = f"{row['rate'] / base['rate']:.2f}x" if base and base["rate"] else "-"
        ratio_p50 = f"{row['p50'] / base['p50']:.2f}x" if base and base["p50"] else "-"
        lines.append(
            f"| {figures.name} | {row['p50'] * 1e6:.0f} µs | {row['p99'] * 1e6:.0f} µs | "
            f"{row['rate']:.0f} | {row['load_p50'] * 1e3:.1f} ms | "
            f"{row['load_p99'] * 1e3:.1f} ms | "
            f"{ratio_rate} | {ratio_p50} |"
        )
    return "\n".join(lines)


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
        wait_listening(port, args.timeout)
        return port

    return Target(
        "reflector",
        ofgen.REFLECTOR_PROFILE,
        launch,
        lambda: process and stop_popen(process[-1]),
        once=True,
    )


def ours_target(children: Children, workdir: Path) -> tuple[Target, list[ControllerProcess]]:
    """Our controller, a fresh ControllerProcess (own base dir) per round."""
    started: list[ControllerProcess] = []

    def launch(number: int) -> int:
        controller = ControllerProcess(workdir / f"ours-{number + 1}")
        started.append(controller)
        children.add("controller", controller.stop)
        controller.start(timeout=60)
        return controller.of_port

    return Target("ours", OURS_PROFILE, launch, lambda: started and started[-1].stop()), started


def faucet_target(children: Children, workdir: Path, args: argparse.Namespace) -> Target:
    """Faucet from its venv, a fresh process (own config and logs) per round."""
    started: list[faucet_runner.FaucetProcess] = []

    def launch(number: int) -> int:
        faucet = faucet_runner.FaucetProcess(
            workdir / f"faucet-{number + 1}", dpids(args), ports(args)
        )
        started.append(faucet)
        children.add("faucet", faucet.stop)
        faucet.start(timeout=60)
        return faucet.of_port

    return Target(
        "faucet", faucet_runner.FAUCET_PROFILE, launch, lambda: started and started[-1].stop()
    )


def run(args: argparse.Namespace, children: Children, workdir: Path) -> int:
    failures: list[str] = []
    targets: list[Target] = []
    if not args.skip_faucet or args.profile:
        faucet_runner.ensure_venv(progress=say)
    if not args.skip_reflector:
        targets.append(reflector_target(children, args))
    ours, controllers = ours_target(children, workdir)
    targets.append(ours)
    if not args.skip_faucet:
        targets.append(faucet_target(children, workdir, args))
    say(f"logs under {workdir}; faucet {faucet_runner.FAUCET_VERSION}")

    results = compare(targets, args, failures)
    profile_text = ""
    if args.profile and any(figures.name == "ours" for figures in results):
        say("ours: one more throughput run under py-spy (the figures above are without it)")
        port = ours.launch(args.rounds)
        try:
            profile_text = asyncio.run(
                profile_ours(port, controllers[-1].process.pid, workdir / "ours.pyspy", args)
            )
        finally:
            ours.shutdown()
    report(args, results, failures, profile_text)
    return 1 if failures else 0


def report(
    args: argparse.Namespace, results: list[Figures], failures: list[str], profile_text: str
) -> None:
    """The summary printed at the end: setup, machine, table, notes, profile."""
    print()
    print(
        f"{args.switches} switches x {args.ports} ports, latency: {args.latency_samples} "
        f"packet-ins one at a time; throughput: {args.window} outstanding per switch, "
        f"{args.seconds:g} s after {args.warmup:g} s warm-up; median of {args.rounds} rounds"
    )
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}"
    )
    print()
    print(table(results))
    print()
    for figures in results:
        print(f"{figures.name}: packet-ins/s per round: {figures.rates()}")
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
    parser.add_argument("--skip-reflector", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep logs and profile")
    args = parser.parse_args()
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
