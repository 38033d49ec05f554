"""Memory per learned MAC in the l2_switch's learning table.

Feeds a ``LearningSwitch`` (the module the l2_switch NApp runs) broadcast
packet-ins from N distinct source MACs spread over 48 ports of one switch
(bounds raised so every MAC is learned) and reports tracemalloc's growth per
MAC, next to a run with the default bounds to show the table stops growing.

    .venv/bin/python benchmarks/memory_per_mac.py [--macs 4096 40960]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # napps/ of this checkout

from napps.xmpp_ofc.l2_switch.learning import LearningSettings, LearningSwitch
from xmpp_ofc.messages import DecodedPacketIn
from xmpp_ofc.testing.frames import ethernet

DPID = "00:00:00:00:00:00:00:01"
PORTS = 48


def packet_ins(count: int) -> list[DecodedPacketIn]:
    """Broadcast ARP-type frames from ``count`` distinct MACs (built before measuring)."""
    frames = []
    for index in range(count):
        src = "02:00:" + ":".join(f"{(index >> shift) & 0xFF:02x}" for shift in (24, 16, 8, 0))
        frame = ethernet("ff:ff:ff:ff:ff:ff", src, 0x0806, b"\x00" * 28)
        frames.append(
            DecodedPacketIn.from_frame(dpid=DPID, in_port=1 + index % PORTS, data=frame, table_id=1)
        )
    return frames


def measure(count: int, settings: LearningSettings) -> tuple[int, int]:
    """Return (MACs in the table, bytes of growth) after learning ``count`` MACs."""
    switch = LearningSwitch(settings)
    inputs = packet_ins(count)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for number, packet_in in enumerate(inputs):
        switch.handle_packet_in(packet_in, now=float(number) / 1000)
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return len(switch.mac_table(DPID, now=count / 1000)), grown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--macs", type=int, nargs="+", default=[4096, 40960])
    args = parser.parse_args()
    print(f"{'MACs offered':>12} {'bounds':>10} {'learned':>8} {'bytes':>12} {'per MAC':>8}")
    for count in args.macs:
        unbounded = LearningSettings(max_macs_per_switch=count, max_macs_per_port=count)
        for label, settings in (("raised", unbounded), ("default", LearningSettings())):
            learned, grown = measure(count, settings)
            per_mac = grown / learned if learned else 0
            print(f"{count:12} {label:>10} {learned:8} {grown:12} {per_mac:8.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
