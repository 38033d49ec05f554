"""OpenFlow fuzzing: one peer sends random, truncated and bit-flipped messages (issue 13 item 7).

For a bounded time (30 s, ``XMPP_OFC_OF_FUZZ_SECONDS``) a fuzzing peer that
completed a real handshake sends about 400 malformed messages a second: valid
messages of every kind a switch sends (packet-ins of the L2 and capture paths,
multipart replies, port status, flow removed, errors, echo) with bits flipped
in the body or anywhere, cut short (with and without a header that admits
it), and random bodies behind a valid header or plain random bytes. When the
controller closes it (as it may for a message it cannot frame), the peer
reconnects and goes on.

Meanwhile a good fake switch keeps probing: an echo request every 20 ms and an
ARP packet-in every 100 ms, each answered by the controller (echo reply,
l2_switch's flooding packet-out). The test asserts that every echo probe was
answered (the output path never stopped: issue 13's finding was that it did,
for good, after about 860 bit-flipped messages), that the good switch and a
new switch are served after the fuzz, and that the controller's RSS grew by
less than :data:`RSS_GROWTH_BOUND`. Latencies are printed, not asserted beyond
a liveness bound (the issue's 100 ms p99 is a speed target: docs/benchmarks.md).

Measured on the 2-core development box, seed 13, 30 s
(``.venv/bin/pytest -s tests/controller/test_of_fuzz.py``): 8316 fuzz messages over
369 connections; good switch echo RTT p50 4.4 ms, p99 65.0 ms, max 142 ms;
300/300 packet-ins answered, p99 61.2 ms; RSS 72.3 -> 93.7 MiB.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pyof.v0x04.asynchronous.error_msg import BadRequestCode, ErrorMsg, ErrorType
from pyof.v0x04.asynchronous.flow_removed import FlowRemoved, FlowRemovedReason
from pyof.v0x04.asynchronous.port_status import PortReason, PortStatus
from pyof.v0x04.common.header import Type
from pyof.v0x04.controller2switch.barrier_reply import BarrierReply
from pyof.v0x04.controller2switch.common import MultipartType
from pyof.v0x04.controller2switch.multipart_reply import MultipartReply
from pyof.v0x04.symmetric.echo_reply import EchoReply
from pyof.v0x04.symmetric.echo_request import EchoRequest

from tests.kytos_helpers import pyof_packet_in, running_controller
from xmpp_ofc import cookies, pipeline
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.openflow.match import match_from_dict
from xmpp_ofc.packet import ETH_TYPE_ARP
from xmpp_ofc.testing import frames
from xmpp_ofc.testing.fake_switch import FakeSwitch, flow_stats, make_port

FUZZ_SECONDS = float(os.environ.get("XMPP_OFC_OF_FUZZ_SECONDS", "30"))
FUZZ_RATE = 400  # messages per second, the figure
SEED = int(os.environ.get("XMPP_OFC_OF_FUZZ_SEED", "13"))
ECHO_EVERY_S = 0.02
PACKET_IN_EVERY_S = 0.1
#: Liveness, not speed: an echo probe unanswered this long counts as lost.
ANSWER_TIMEOUT_S = 5.0
#: RSS the controller may gain over the fuzz (measured: see the test's printout).
RSS_GROWTH_BOUND = 64 * 1024 * 1024
GOOD_DPID, FUZZER_DPID, LATE_DPID = 0x1, 0x2, 0x3
L2_MISS = cookies.encode(Owner.L2_SWITCH, Kind.TABLE_MISS)
CAPTURE = cookies.encode(Owner.RATE_LIMITER, Kind.CAPTURE)


# --- what the fuzzer sends -------------------------------------------------------------


def arp_frame(src: str) -> bytes:
    body = frames.arp(1, src, "10.0.0.1", "00:00:00:00:00:00", "10.0.0.2")
    return frames.ethernet("ff:ff:ff:ff:ff:ff", src, ETH_TYPE_ARP, body)


def templates() -> list[bytes]:
    """One valid message of every kind a switch sends, packed."""
    flow = {"priority": 200, "cookie": CAPTURE, "match": {"in_port": 1}}
    messages = [
        pyof_packet_in(arp_frame("02:00:00:00:00:01"), 1, cookie=L2_MISS),
        pyof_packet_in(
            frames.tcp4_frame(
                eth_src="02:00:00:00:00:01",
                eth_dst="02:00:00:00:00:02",
                ip_src="10.0.0.7",
                ip_dst="10.0.0.1",
                tp_src=40000,
                tp_dst=5222,
            ),
            1,
            cookie=CAPTURE,
            table_id=pipeline.TABLE_POLICY,
        ),
        MultipartReply(
            xid=7, multipart_type=MultipartType.OFPMP_FLOW, flags=0, body=[flow_stats(flow)]
        ),
        MultipartReply(
            xid=8, multipart_type=MultipartType.OFPMP_PORT_DESC, flags=0, body=[make_port(1)]
        ),
        PortStatus(reason=PortReason.OFPPR_MODIFY, desc=make_port(2)),
        FlowRemoved(
            cookie=CAPTURE,
            priority=200,
            reason=FlowRemovedReason.OFPRR_IDLE_TIMEOUT,
            table_id=0,
            duration_sec=1,
            duration_nsec=0,
            idle_timeout=10,
            hard_timeout=0,
            packet_count=1,
            byte_count=60,
            match=match_from_dict({"in_port": 1}),
        ),
        ErrorMsg(
            xid=9,
            error_type=ErrorType.OFPET_BAD_REQUEST,
            code=BadRequestCode.OFPBRC_BAD_TYPE,
            data=b"\x04\x0e\x00\x08\x00\x00\x00\x09",
        ),
        EchoRequest(xid=10, data=b"fuzz"),
        EchoReply(xid=11, data=b"fuzz"),
        BarrierReply(xid=12),
    ]
    return [message.pack() for message in messages]


def with_length(data: bytes) -> bytes:
    return data[:2] + len(data).to_bytes(2, "big") + data[4:]


def flip_bits(rng: random.Random, data: bytes, start: int) -> bytes:
    flipped = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        position = rng.randrange(start, len(flipped)) if len(flipped) > start else 0
        flipped[position] ^= 1 << rng.randrange(8)
    return bytes(flipped)


def fuzz_message(rng: random.Random, valid: list[bytes]) -> bytes:
    """One malformed message (the weights favour those that get past the framing)."""
    template = rng.choice(valid)
    kind = rng.choices(
        ["flip_body", "flip_any", "cut_framed", "cut_raw", "random_body", "random_bytes"],
        weights=[40, 8, 20, 6, 20, 6],
    )[0]
    if kind == "flip_body":
        return flip_bits(rng, template, 8)
    if kind == "flip_any":
        return flip_bits(rng, template, 0)
    if kind == "cut_framed":  # a short body behind a header that says so
        return with_length(template[: rng.randint(8, max(8, len(template) - 1))])
    if kind == "cut_raw":  # the header promises more than comes: the next messages fill it
        return template[: rng.randint(1, max(1, len(template) - 1))]
    if kind == "random_body":
        body = rng.randbytes(rng.randint(0, 200))
        return with_length(bytes([4, rng.randrange(30)]) + b"\0\0" + rng.randbytes(4) + body)
    return rng.randbytes(rng.randint(1, 100))


class Fuzzer(threading.Thread):
    """Send fuzz messages at FUZZ_RATE from one (re)connecting peer until ``stop``."""

    def __init__(self, port: int, seed: int) -> None:
        super().__init__(name="of-fuzzer", daemon=True)
        self.port = port
        self.rng = random.Random(seed)
        self.valid = templates()
        self.stop = threading.Event()
        self.sent = 0
        self.connections = 0
        self.errors: list[BaseException] = []

    def _connect(self) -> FakeSwitch | None:
        peer = FakeSwitch("127.0.0.1", self.port, dpid=FUZZER_DPID)
        try:
            peer.handshake(timeout=10)
        except (OSError, TimeoutError):
            peer.close()
            return None
        self.connections += 1
        return peer

    def run(self) -> None:
        peer = None
        next_send = time.monotonic()
        try:
            while not self.stop.is_set():
                if peer is None or peer.closed_by_peer:
                    if peer is not None:
                        peer.close()
                    peer = self._connect()
                    if peer is None:
                        self.stop.wait(0.2)
                    next_send = time.monotonic()
                    continue
                try:
                    peer.send(fuzz_message(self.rng, self.valid))
                    self.sent += 1
                except OSError:
                    peer.close()
                    peer = None
                    continue
                next_send += 1 / FUZZ_RATE
                self.stop.wait(max(0.0, next_send - time.monotonic()))
        except BaseException as error:  # reported by the test
            self.errors.append(error)
        finally:
            if peer is not None:
                peer.close()


# --- what the good switch measures -----------------------------------------------------


class Probe:
    """Echo and packet-in round trips of the good switch, timed by its reader thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.echo_sent: dict[int, float] = {}
        self.echo_rtt: dict[int, float] = {}
        self.packet_in_sent: dict[bytes, float] = {}
        self.packet_in_rtt: dict[bytes, float] = {}

    def on_message(self, item) -> None:
        now = time.monotonic()
        with self.lock:
            if item.message_type == Type.OFPT_ECHO_REPLY and item.xid in self.echo_sent:
                self.echo_rtt.setdefault(item.xid, now - self.echo_sent[item.xid])
            elif item.message_type == Type.OFPT_PACKET_OUT and item.message is not None:
                data = item.message.data.value
                if data in self.packet_in_sent:
                    self.packet_in_rtt.setdefault(data, now - self.packet_in_sent[data])

    def run(self, switch: FakeSwitch, until: float) -> None:
        xids = itertools.count(0x10000)
        macs = itertools.count(1)
        next_packet_in = time.monotonic()
        while time.monotonic() < until:
            xid = next(xids)
            with self.lock:
                self.echo_sent[xid] = time.monotonic()
            switch.send(EchoRequest(xid=xid, data=b"probe"))
            if time.monotonic() >= next_packet_in:
                number = next(macs)
                frame = arp_frame(f"02:00:00:01:{number >> 8 & 0xFF:02x}:{number & 0xFF:02x}")
                with self.lock:
                    self.packet_in_sent[frame] = time.monotonic()
                switch.send(pyof_packet_in(frame, 1, cookie=L2_MISS))
                next_packet_in += PACKET_IN_EVERY_S
            time.sleep(ECHO_EVERY_S)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def wait_true(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


@pytest.fixture
def controller(tmp_path):
    with running_controller(tmp_path / "of_fuzz_controller") as process:
        yield process


def test_a_fuzzing_peer_stops_nothing_and_grows_no_memory(controller):
    probe = Probe()
    good = FakeSwitch(
        "127.0.0.1", controller.of_port, dpid=GOOD_DPID, on_message=probe.on_message
    ).handshake()
    fuzzer = Fuzzer(controller.of_port, SEED)
    try:
        # Warm up (pipeline installed, first packet-ins learned) before the baseline RSS.
        probe.run(good, time.monotonic() + 2)
        rss_before = rss_bytes(controller.process.pid)
        with probe.lock:
            warm_up_probes = len(probe.echo_sent)
        fuzzer.start()
        probe.run(good, time.monotonic() + FUZZ_SECONDS)
        fuzzer.stop.set()
        fuzzer.join(15)
        assert not fuzzer.errors, fuzzer.errors
        assert controller.running, controller.log_text()[-4000:]
        with probe.lock:
            sent_xids = list(probe.echo_sent)
        assert wait_true(
            lambda: all(xid in probe.echo_rtt for xid in sent_xids), ANSWER_TIMEOUT_S
        ), f"{len(sent_xids) - len(probe.echo_rtt)} of {len(sent_xids)} echo probes unanswered"
        rss_after = rss_bytes(controller.process.pid)

        echo = [probe.echo_rtt[xid] for xid in sent_xids[warm_up_probes:]]
        with probe.lock:
            packet_in = list(probe.packet_in_rtt.values())
            packet_ins_sent = len(probe.packet_in_sent)
        print(
            f"\nOF fuzz: {fuzzer.sent} messages in {FUZZ_SECONDS:g} s over "
            f"{fuzzer.connections} connection(s), seed {SEED}\n"
            f"good switch echo RTT during the fuzz: n={len(echo)} "
            f"p50={statistics.median(echo) * 1000:.1f} ms "
            f"p99={percentile(echo, 0.99) * 1000:.1f} ms max={max(echo) * 1000:.1f} ms\n"
            f"packet-in -> packet-out: {len(packet_in)}/{packet_ins_sent} answered, "
            f"p99={percentile(packet_in, 0.99) * 1000:.1f} ms\n"
            f"controller RSS {rss_before / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB"
        )
        # Reconnects after the controller closed it cost time (measured: about 300/s get out).
        assert fuzzer.sent >= FUZZ_RATE * FUZZ_SECONDS * 0.25, "the fuzzer did not get its load out"
        assert packet_in, "l2_switch answered no packet-in of the good switch"
        assert rss_after - rss_before < RSS_GROWTH_BOUND

        # After the fuzz: the good switch is still answered, and a new switch is served.
        since = good.mark()
        good.send(EchoRequest(xid=0xE0, data=b"after"))
        assert good.wait_for(Type.OFPT_ECHO_REPLY, since=since, timeout=5).xid == 0xE0
        with FakeSwitch("127.0.0.1", controller.of_port, dpid=LATE_DPID) as late:
            late.handshake(timeout=10)
            late.wait_for(Type.OFPT_FLOW_MOD, timeout=10)
        assert controller.get("kytos/core/status/")[0] == 200
        # No handler failed on what the fuzzer sent (they are logged with a traceback).
        log = controller.log_text()
        assert "Traceback" not in log, log[log.find("Traceback") - 600 :][:3000]
    finally:
        fuzzer.stop.set()
        with contextlib.suppress(RuntimeError):
            fuzzer.join(15)
        good.close()
