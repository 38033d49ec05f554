"""Cost of one rate-limiter poll at 1k / 10k / 50k monitored clients, and memory per client.

One poll is what the controller does with the switch's answer to one
cookie-filtered flow-stats request: the MULTIPART_REPLY messages (split at ~64 KB
with REPLY_MORE, as Open vSwitch does) are

1. unpacked with pyof (``unpack_message``, what of_core does per message),
2. decoded to :class:`xmpp_ofc.messages.FlowStatsEntry` by the dispatcher's
   decoder, :func:`xmpp_ofc.pyof_decode.flow_stats_entries`,
3. evaluated by :meth:`RateLimiter.handle_flow_stats` (rates, thresholds, blocks;
   1 % of the clients flood, so the block path runs too).

Each phase is timed separately over the second poll (the first one only sets the
baselines). Memory per monitored client is the tracemalloc growth of the limiter
from 0 to N clients after a baseline poll, divided by N.

    .venv/bin/python benchmarks/rate_limiter_poll.py [--clients 1000 10000 50000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import ipaddress
import os
import pstats
import struct
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterable
from pathlib import Path

os.environ.setdefault("VIRTUAL_ENV", tempfile.mkdtemp(prefix="xmpp_ofc-bench-"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyof.v0x04.common.utils import unpack_message
from pyof.v0x04.controller2switch.common import MultipartType

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.limiter import Instant, Monitored, RateLimiter
from napps.xmpp_ofc.rate_limiter.settings_model import LimiterSettings
from xmpp_ofc.messages import FlowStatsEntry, FlowStatsReply
from xmpp_ofc.pyof_decode import flow_stats_entries
from xmpp_ofc.testing.fake_switch import flow_stats, multipart_parts

DPID = "00:00:00:00:00:00:00:01"
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


def unpack(parts: Iterable[bytes]) -> list:
    body = []
    for raw in parts:
        body.extend(unpack_message(raw).body)
    return body


#: OXM field number -> match key, for the fields of a monitor flow (prototype only).
_RAW_OXM = {5: "dl_type", 10: "nw_proto", 11: "nw_src", 13: "tp_src", 14: "tp_dst", 26: "ipv6_src"}
_ENTRY = struct.Struct("!HBxIIHHHH4xQQQ")


def raw_flow_stats(parts: Iterable[bytes]) -> FlowStatsReply:
    """PROTOTYPE for comparison, not used by the bundle: OFPMP_FLOW bodies parsed with
    ``struct`` straight to FlowStatsEntry, to show what a pyof-free path would cost.
    """
    entries = []
    for raw in parts:
        offset = 16  # ofp_header + multipart header
        while offset < len(raw):
            (length, table, dsec, dnsec, prio, idle, hard, _flags, cookie, packets, octets) = (
                _ENTRY.unpack_from(raw, offset)
            )
            match_len = struct.unpack_from("!H", raw, offset + 50)[0]
            match: dict[str, object] = {}
            oxm, end = offset + 52, offset + 48 + match_len
            while oxm < end:
                field, size = raw[oxm + 2] >> 1, raw[oxm + 3]
                value = raw[oxm + 4 : oxm + 4 + size]
                name = _RAW_OXM.get(field)
                if name in ("nw_src", "ipv6_src"):
                    match[name] = str(ipaddress.ip_address(value))
                elif name is not None:
                    match[name] = int.from_bytes(value, "big")
                oxm += 4 + size
            entries.append(
                FlowStatsEntry(
                    DPID, table, cookie, prio, match, packets, octets, dsec, dnsec, idle, hard
                )
            )
            offset += length
    return FlowStatsReply(DPID, tuple(entries))


def decode(body: list) -> FlowStatsReply:
    return FlowStatsReply(DPID, tuple(flow_stats_entries(DPID, body)))


def monitored_limiter(population: list[Client]) -> RateLimiter:
    """A limiter that already monitors ``population`` (as capture packet-ins would do)."""
    limiter = RateLimiter(LimiterSettings(poll_interval_s=60))
    limiter.restore(DPID, Instant(0.0, 0.0))
    switch = limiter._switch(DPID)  # bulk set-up; packet-in parsing is not what we measure
    for client in population:
        switch.clients[client] = Monitored(client, 5222, Instant(0.0, 0.0), False)
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


def run(count: int, profile: bool) -> dict[str, float]:
    progress(f"{count} clients: building the switch's flow table")
    population = clients(count)
    stats = build_stats(population)
    first = reply_bytes(stats, 0, xid=1)
    second = reply_bytes(stats, 1, xid=2)
    progress(f"    reply: {len(second)} messages, {sum(map(len, second)) / 1e6:.1f} MB")

    limiter = monitored_limiter(population)
    limiter.handle_flow_stats(decode(unpack(first)), Instant(10.0, 10.0))

    started = time.perf_counter()
    body = unpack(second)
    unpacked = time.perf_counter()
    reply = decode(body)
    decoded = time.perf_counter()
    commands = limiter.handle_flow_stats(reply, Instant(70.0, 70.0))
    evaluated = time.perf_counter()
    raw_started = time.perf_counter()
    raw_reply = raw_flow_stats(second)
    raw_parse = time.perf_counter() - raw_started
    assert raw_reply.entries == reply.entries, "prototype parser disagrees with pyof"
    blocks = len(limiter.blocked())
    assert blocks == len(range(0, count, FLOOD_EVERY)), blocks
    progress(f"    {blocks} blocked, {len(commands)} commands")

    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        unpack(second)
        profiler.disable()
        print(f"\ncProfile of unpacking {count} entries (top 12 by own time):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)

    progress("    measuring memory")
    per_client = memory_per_client(count, decode(unpack(first)), reply)
    return {
        "clients": count,
        "messages": len(second),
        "unpack": unpacked - started,
        "decode": decoded - unpacked,
        "evaluate": evaluated - decoded,
        "total": evaluated - started,
        "bytes_per_client": per_client,
        "raw_parse": raw_parse,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 10_000, 50_000])
    parser.add_argument("--profile", action="store_true", help="cProfile the pyof unpack")
    args = parser.parse_args()
    rows = [run(count, args.profile) for count in args.clients]
    print(
        "\n| clients | reply msgs | pyof unpack | decode | evaluate | one poll | per client"
        " | memory/client | struct prototype (unpack+decode) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['clients']:,} | {row['messages']} | {row['unpack'] * 1e3:.0f} ms"
            f" | {row['decode'] * 1e3:.0f} ms | {row['evaluate'] * 1e3:.0f} ms"
            f" | {row['total'] * 1e3:.0f} ms | {row['total'] / row['clients'] * 1e6:.1f} µs"
            f" | {row['bytes_per_client']:.0f} B | {row['raw_parse'] * 1e3:.0f} ms |"
        )


if __name__ == "__main__":
    main()
