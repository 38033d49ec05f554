"""Cost of one rate-limiter poll at 1k / 10k / 50k monitored clients, and memory per client.

One poll is what the controller does with the switch's answer to one
cookie-filtered flow-stats request.  The switch's MULTIPART_REPLY messages
(split at ~64 KB with REPLY_MORE, as Open vSwitch does) go through the real
code path, module by module, on one thread:

1. of_core: each message's bytes through its framer (``stream.MessageFramer``),
   ``inbound.parse_message`` (the struct codec for OFPMP_FLOW) and the
   connection state machine (``SwitchSession``: per-message delivery and
   REPLY_MORE assembly), as ``Main.on_raw_in`` does on the event loop;
2. dispatcher: ``pyof_decode.flow_stats_entries`` (records -> FlowStatsEntry) and
   ``Router.route_flow_stats`` (split by cookie owner), as
   ``Main.on_multipart_reply`` does on a handler thread;
3. rate limiter: :meth:`RateLimiter.handle_flow_stats` (usage, the policy's buckets,
   blocks; 1 % of the clients flood, so the block path runs too).

Kytos' event queues and threads are not in the measurement.  Each phase is
timed over the second poll (the first only sets the baselines).  For
comparison, the old path (pyof ``unpack_message`` per message, then the same
dispatcher decoder on pyof FlowStats) is timed up to ``--pyof-up-to`` clients
(default 10k: at 50k it takes half a minute).  Memory per monitored client is
the tracemalloc growth of the limiter from 0 to N clients after two polls.

    .venv/bin/python benchmarks/rate_limiter_poll.py [--clients 1000 10000 50000]
        [--pyof-up-to 10000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import ipaddress
import os
import pstats
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterable
from pathlib import Path

os.environ.setdefault("VIRTUAL_ENV", tempfile.mkdtemp(prefix="xmpp_ofc-bench-"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyof.v0x04.common.header import Type
from pyof.v0x04.common.utils import unpack_message
from pyof.v0x04.controller2switch.common import MultipartType
from pyof.v0x04.controller2switch.features_reply import FeaturesReply

from napps.kytos.of_core.connection_fsm import SwitchSession
from napps.kytos.of_core.inbound import parse_message
from napps.kytos.of_core.multipart import CompletedReply
from napps.kytos.of_core.stream import MessageFramer
from napps.xmpp_ofc.dispatcher.routing import Router
from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.limiter import Instant, RateLimiter
from napps.xmpp_ofc.rate_limiter.settings_model import LimiterSettings
from xmpp_ofc.messages import FlowStatsReply
from xmpp_ofc.pyof_decode import flow_stats_entries
from xmpp_ofc.testing.fake_switch import flow_stats, hello_bytes, multipart_parts

DPID = "00:00:00:00:00:00:00:01"
MODULE = "rate_limiter"
#: OVS splits multipart replies at about this many bytes.
PART_BYTES = 65_000
FLOOD_EVERY = 100  # 1 % of the clients flood


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def clients(count: int) -> list[Client]:
    """``count`` distinct IPv4 clients, 100 connections per address."""
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    return [
        Client(str(ipaddress.IPv4Address(base + 1 + i // 100)), 20000 + i % 100)
        for i in range(count)
    ]


def build_stats(population: list[Client]) -> list:
    """The FlowStats a switch keeps for each monitor flow (counters set per poll)."""
    result = []
    for index, client in enumerate(population):
        result.append(flow_stats(flows.monitor_flow(client, 5222, idle_timeout=120)))
        if index and index % 10_000 == 0:
            progress(f"    built {index} flow stats")
    return result


def reply_bytes(stats: list, poll: int, xid: int) -> list[bytes]:
    """Pack the reply of poll ``poll`` (counters advanced) into ~64 KB parts."""
    for index, entry in enumerate(stats):
        flooding = index % FLOOD_EVERY == 0
        packets = poll * (600 if flooding else 10)  # per 60 s window
        entry.packet_count = packets
        entry.byte_count = packets * (366 if flooding else 120)
        entry.duration_sec = 10 + 60 * poll
    per_part = max(1, PART_BYTES // stats[0].get_size())
    return [part.pack() for part in multipart_parts(xid, MultipartType.OFPMP_FLOW, stats, per_part)]


def established_session() -> SwitchSession:
    """of_core's state machine for one connection, past the handshake."""
    session = SwitchSession(0.0)
    session.on_hello(hello_bytes(4), 0.0)
    features = FeaturesReply(
        xid=2, datapath_id=DPID, n_buffers=0, n_tables=254, auxiliary_id=0,
        capabilities=0, reserved=0,
    ).pack()  # fmt: skip
    session.on_message(unpack_message(features), Type.OFPT_FEATURES_REPLY, 0.0)
    return session


class OfCore:
    """What ``of_core.Main.on_raw_in`` runs per chunk, minus Kytos' event plumbing."""

    def __init__(self) -> None:
        self.session = established_session()
        self.framer = MessageFramer(65535)
        self.framer.version = 4
        self.longest_chunk = 0.0

    def receive(self, chunks: Iterable[bytes]) -> CompletedReply:
        completed: list[CompletedReply] = []
        for chunk in chunks:
            started = time.perf_counter()
            self.framer.feed(chunk)
            while (frame := self.framer.next_message()) is not None:
                out = self.session.on_message(parse_message(frame), frame[1], 1.0)
                completed += [reply for reply, _poll in out.completed]
            self.longest_chunk = max(self.longest_chunk, time.perf_counter() - started)
        (reply,) = completed
        return reply


def dispatch(router: Router, reply: CompletedReply) -> FlowStatsReply:
    """The dispatcher's flow-stats path: decode to FlowStatsEntry, split by owner."""
    entries = flow_stats_entries(DPID, reply.body)
    routed = router.route_flow_stats(DPID, entries)
    return FlowStatsReply(DPID, routed[MODULE])


def pyof_path(parts: Iterable[bytes]) -> FlowStatsReply:
    """The old path, for comparison: pyof per message, then the same decoder."""
    body = []
    for raw in parts:
        body.extend(unpack_message(raw).body)
    return FlowStatsReply(DPID, tuple(flow_stats_entries(DPID, body)))


def monitored_limiter(population: list[Client]) -> RateLimiter:
    """A limiter that already monitors ``population`` (as capture packet-ins would do)."""
    # sustain_s 0: the floods are blocked at this one measured poll, so the block path runs.
    limiter = RateLimiter(LimiterSettings(poll_interval_s=60, sustain_s=0))
    limiter.restore(DPID, Instant(0.0, 0.0))
    # Bulk set-up: packet-in parsing is not what we measure.
    for client in population:
        limiter.monitors.add(DPID, client, 5222, Instant(0.0, 0.0), whitelisted=False)
    return limiter


def memory_per_client(count: int, baseline: FlowStatsReply, second: FlowStatsReply) -> float:
    """Growth of a limiter from 0 to ``count`` clients in steady state (two polls).

    The clients' keys are built inside the traced region (a real limiter owns them);
    the decoded replies are not (they are freed after each poll).
    """
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    limiter = monitored_limiter(clients(count))
    limiter.handle_flow_stats(baseline, Instant(10.0, 10.0))
    limiter.handle_flow_stats(second, Instant(70.0, 70.0))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    del limiter
    return grown / count


def run(count: int, pyof_up_to: int, profile: bool) -> dict[str, float]:
    progress(f"{count} clients: building the switch's flow table")
    population = clients(count)
    stats = build_stats(population)
    first = reply_bytes(stats, 0, xid=1)
    second = reply_bytes(stats, 1, xid=2)
    del stats  # the switch's table is not in the controller's heap: keep GC honest
    gc.collect()
    progress(f"    reply: {len(second)} messages, {sum(map(len, second)) / 1e6:.1f} MB")

    of_core, router = OfCore(), Router()
    limiter = monitored_limiter(population)
    baseline = dispatch(router, of_core.receive(first))
    limiter.handle_flow_stats(baseline, Instant(10.0, 10.0))

    of_core.longest_chunk = 0.0
    started = time.perf_counter()
    completed = of_core.receive(second)
    received = time.perf_counter()
    reply = dispatch(router, completed)
    dispatched = time.perf_counter()
    commands = limiter.handle_flow_stats(reply, Instant(70.0, 70.0))
    evaluated = time.perf_counter()
    assert len(reply.entries) == count, len(reply.entries)
    blocks = len(limiter.blocked())
    assert blocks == len(range(0, count, FLOOD_EVERY)), blocks
    progress(f"    {blocks} blocked, {len(commands)} commands")

    pyof_seconds = None
    if count <= pyof_up_to:
        progress("    timing the old pyof path")
        pyof_started = time.perf_counter()
        old = pyof_path(second)
        pyof_seconds = time.perf_counter() - pyof_started
        assert old.entries == reply.entries, "the struct path disagrees with pyof"

    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        dispatch(router, OfCore().receive(second))
        profiler.disable()
        print(f"\ncProfile of of_core + dispatcher for {count} entries (top 12 by own time):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)

    progress("    measuring memory")
    per_client = memory_per_client(count, baseline, reply)
    return {
        "clients": count,
        "messages": len(second),
        "of_core": received - started,
        "longest_chunk": of_core.longest_chunk,
        "dispatch": dispatched - received,
        "evaluate": evaluated - dispatched,
        "total": evaluated - started,
        "bytes_per_client": per_client,
        "pyof": pyof_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 10_000, 50_000])
    parser.add_argument(
        "--pyof-up-to", type=int, default=10_000, help="time the old pyof path up to N clients"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile of_core + dispatcher")
    args = parser.parse_args()
    rows = [run(count, args.pyof_up_to, args.profile) for count in args.clients]
    print(
        "\n| clients | reply msgs | of_core (longest msg) | dispatcher | rate limiter"
        " | one poll | per client | memory/client | old path: pyof + decode |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        old = "-" if row["pyof"] is None else f"{row['pyof'] * 1e3:.0f} ms"
        print(
            f"| {row['clients']:,} | {row['messages']}"
            f" | {row['of_core'] * 1e3:.0f} ms ({row['longest_chunk'] * 1e3:.1f} ms)"
            f" | {row['dispatch'] * 1e3:.0f} ms | {row['evaluate'] * 1e3:.0f} ms"
            f" | {row['total'] * 1e3:.0f} ms | {row['total'] / row['clients'] * 1e6:.1f} µs"
            f" | {row['bytes_per_client']:.0f} B | {old} |"
        )


if __name__ == "__main__":
    main()
