"""A switch that floods packet-ins and never reads, against the real controller (issue 13).

Starts the controller (shipped settings, rate limiter off so l2_switch answers
every broadcast packet-in with a flood packet-out), one well-behaved fake
switch, and a never-reading flooder for ``--seconds``.  Reports the controller's
RSS before, at the peak and 5 s after the flood, whether and when the flooder
was disconnected, the good switch's echo round-trips during the flood, and how
long SIGTERM takes at the end with a fresh flooder connected.

    .venv/bin/python benchmarks/never_reading_flood.py [--seconds 15]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path

from pyof.v0x04.common.header import Type

from xmpp_ofc import cookies, pipeline
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.testing import frames
from xmpp_ofc.testing.controller import ControllerProcess
from xmpp_ofc.testing.fake_switch import FakeSwitch
from xmpp_ofc.testing.flooder import NeverReadingFlooder


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def packet_in() -> bytes:
    from pyof.v0x04.asynchronous.packet_in import PacketIn

    from xmpp_ofc.openflow.match import match_from_dict

    frame = frames.ethernet("ff:ff:ff:ff:ff:ff", "02:00:00:00:99:01", 0x0800, bytes(1010))
    return PacketIn(
        buffer_id=0xFFFFFFFF,
        total_len=len(frame),
        reason=0,
        table_id=pipeline.TABLE_FORWARDING,
        cookie=cookies.encode(Owner.L2_SWITCH, Kind.TABLE_MISS),
        match=match_from_dict({"in_port": 1}),
        data=frame,
    ).pack()


def echo_rtts(sw: FakeSwitch, stop: threading.Event, out: list[float]) -> None:
    xid = 1
    while not stop.is_set():
        since = sw.mark()
        started = time.monotonic()
        sw.send_echo_request(xid)
        try:
            sw.wait_for(
                Type.OFPT_ECHO_REPLY, since=since, timeout=5, predicate=lambda r, x=xid: r.xid == x
            )
            out.append(time.monotonic() - started)
        except TimeoutError:
            out.append(float("inf"))
        xid += 1
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    env = {"XMPP_OFC_DISPATCHER_DISABLED_MODULES": "rate_limiter"}
    base = Path(tempfile.mkdtemp(prefix="xmpp_ofc-flood-"))
    controller = ControllerProcess(base, env=env).start()
    pid = controller.process.pid
    try:
        with FakeSwitch("127.0.0.1", controller.of_port, dpid=0x99).handshake() as good:
            time.sleep(2)
            before = rss_mb(pid)
            flooder = NeverReadingFlooder(controller.of_port, 0x9A, packet_in()).start()
            stop, rtts = threading.Event(), []
            prober = threading.Thread(target=echo_rtts, args=(good, stop, rtts), daemon=True)
            prober.start()
            started, peak, closed_at = time.monotonic(), before, None
            while time.monotonic() - started < args.seconds:
                peak = max(peak, rss_mb(pid))
                if closed_at is None and "does not read" in controller.log_text():
                    closed_at = time.monotonic() - started
                time.sleep(0.25)
            stop.set()
            prober.join(10)
            sent = flooder.sent
            flooder.close()
            time.sleep(5)
            after = rss_mb(pid)
            finite = sorted(r for r in rtts if r != float("inf"))
            print(f"flood: {sent} packet-ins offered in {args.seconds:g} s")
            print(f"RSS MB: before {before:.0f}, peak {peak:.0f}, 5 s after {after:.0f}")
            print(
                "flooder disconnected (output queue full): "
                + (f"after {closed_at:.1f} s" if closed_at is not None else "no")
            )
            if finite:
                p99 = finite[min(len(finite) - 1, int(0.99 * len(finite)))]
                print(
                    f"good switch echo RTT ms: median {statistics.median(finite) * 1000:.1f}, "
                    f"p99 {p99 * 1000:.1f}, lost {len(rtts) - len(finite)} of {len(rtts)}"
                )
        flooder = NeverReadingFlooder(controller.of_port, 0x9B, packet_in()).start()
        time.sleep(3)
        started = time.monotonic()
        controller.process.send_signal(signal.SIGTERM)
        code = controller.process.wait(30)
        took = time.monotonic() - started
        print(f"SIGTERM with a flooder connected: exited {code} after {took:.1f} s")
        flooder.close()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
