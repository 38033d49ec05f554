"""A live controller monitoring 50k XMPP clients of one fake switch, for the dashboard at scale.

Shared by ``test_dashboard_scale.py`` and ``benchmarks/dashboard_scale.py``. The
fake switch holds 50k client monitor flows and answers every rate-limiter poll
(the cookie-filtered flow-stats request) with all of them, counters rising at
per-client speeds. The rate limiter adopts monitor flows it finds on a switch
(``clients._adopt``, the path after a controller restart): one client connects
(a capture packet-in, so the switch has a monitored client and is polled) and the
first poll brings all 50k in; 50k capture packet-ins and flow mods would only add minutes of
set-up on a 2-core box without touching what the dashboard reads.

At this size the switch side must be cheap, or it would starve the controller:
the FlowStats entries are packed once (from a pyof-packed template) and only
their counters are rewritten per poll (``struct.pack_into``).

The controller runs in ``monitor`` mode (rates and flags, no blocks: all 50k stay
monitored) and polls every 5 s: a 50k reply costs ~1.5-3 s of one core here
(of_core, dispatcher and limiter together), and with 1 s polls the controller
would spend all of it on polls.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

from pyof.v0x04.asynchronous.packet_in import PacketIn

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.flows import Client
from tests.browser.scene import DASHBOARD_PATH, RATE_LIMITER, SERVER_IP, XMPP_PORT, wait_until
from xmpp_ofc import cookies
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.openflow.match import match_from_dict
from xmpp_ofc.testing import frames
from xmpp_ofc.testing.controller import ControllerProcess
from xmpp_ofc.testing.fake_switch import FakeSwitch, flow_stats

CLIENTS = 50_000
PER_ADDRESS = 40  # under the 64 monitored per address
DPID = 0x5CA1E
OFPT_FLOW_MOD = 14
OFPT_MULTIPART_REQUEST = 18
OFPT_MULTIPART_REPLY = 19
OFPMP_FLOW = 1
OFPMPF_REPLY_MORE = 1
#: Bytes of FlowStats entries per MULTIPART_REPLY, about what Open vSwitch sends.
PART_BYTES = 64_000
#: ofp_flow_stats offsets: duration_sec/nsec at 4, packet_count/byte_count at 32.
DURATION_AT, COOKIE_AT, COUNTS_AT = 4, 24, 32
MONITOR_POLL = flows.monitor_poll_selector()
CONTROLLER_ENV = {
    "XMPP_OFC_RATE_LIMITER_MODE": "monitor",
    "XMPP_OFC_RATE_LIMITER_XMPP_PORTS": str(XMPP_PORT),
    "XMPP_OFC_RATE_LIMITER_POLL_INTERVAL": "5",
    "XMPP_OFC_RATE_LIMITER_TIMER_INTERVAL": "0.5",
    "XMPP_OFC_DISPATCHER_HISTORY_INTERVAL": "1",
    "KYTOS_OF_CORE_STATS_INTERVAL": "3600",
}


def population(count: int = CLIENTS) -> list[Client]:
    """``count`` clients, ``PER_ADDRESS`` connections per address."""
    result = []
    for index in range(count):
        address = index // PER_ADDRESS
        ip = f"10.{100 + address // 256}.{address % 256}.1"
        result.append(Client(ip, 20_000 + index % PER_ADDRESS))
    return result


def packets_per_poll(index: int) -> int:
    """A spread of speeds: most clients idle or slow, a few fast ones (0..996 a poll)."""
    if index % 1000 == 7:
        return 500 + index % 497
    return index % 5


class _Template:
    """One IPv4 monitor flow's packed FlowStats, and where cookie, address and port sit."""

    def __init__(self, sample: Client) -> None:
        self.packed = bytes(self._pyof(sample))
        # OXM TLVs: OFPXMC_OPENFLOW_BASIC, IPV4_SRC (11) and TCP_SRC (13), no mask.
        self.ip_at = self._only(b"\x80\x00\x16\x04" + socket.inet_aton(sample.ip)) + 4
        self.port_at = self._only(b"\x80\x00\x1a\x02" + sample.port.to_bytes(2, "big")) + 4
        assert self._pyof(Client("10.0.0.1", 1)) == self.entry(Client("10.0.0.1", 1))

    @staticmethod
    def _pyof(client: Client) -> bytes:
        return flow_stats(flows.monitor_flow(client, XMPP_PORT, idle_timeout=120)).pack()

    def _only(self, needle: bytes) -> int:
        at = self.packed.find(needle)
        assert at > 0 and self.packed.find(needle, at + 1) == -1, needle
        return at

    def entry(self, client: Client) -> bytes:
        data = bytearray(self.packed)
        cookie = flows.monitor_flow(client, XMPP_PORT, idle_timeout=120)["cookie"]
        struct.pack_into("!Q", data, COOKIE_AT, cookie)
        data[self.ip_at : self.ip_at + 4] = socket.inet_aton(client.ip)
        struct.pack_into("!H", data, self.port_at, client.port)
        return bytes(data)


class ScaleSwitch(FakeSwitch):
    """A fake switch with ``len(clients)`` monitor flows whose counters rise at each poll."""

    def __init__(self, host: str, port: int, clients: list[Client], **kwargs: Any) -> None:
        super().__init__(host, port, dpid=DPID, ports=(1, 2), **kwargs)
        self.clients = clients
        self.flow_mods = 0
        self.polls = 0
        self._started = time.monotonic()
        self._per_poll = [packets_per_poll(i) for i in range(len(clients))]
        self._counts = [0] * len(clients)
        self._entries, self._offsets, self._parts = self._packed_stats()
        self._poll_lock = threading.Lock()

    def _packed_stats(self) -> tuple[bytearray, list[int], list[tuple[int, int]]]:
        """Every monitor flow's FlowStats; parts of about PART_BYTES.

        pyof packs one entry per address family; the others are that template with
        the client's cookie, source address and port written in (pyof takes ~1 ms an
        entry: a minute for 50k).
        """
        blob = bytearray()
        offsets = []
        parts: list[tuple[int, int]] = []
        start = 0
        template = _Template(self.clients[0])
        for client in self.clients:
            packed = template.entry(client)
            if len(blob) + len(packed) - start > PART_BYTES:
                parts.append((start, len(blob)))
                start = len(blob)
            offsets.append(len(blob))
            blob += packed
        parts.append((start, len(blob)))
        return blob, offsets, parts

    def poll_reply(self, xid: int) -> bytes:
        """The reply to one poll: every counter advanced by its client's speed."""
        with self._poll_lock:
            age = time.monotonic() - self._started
            seconds, nanos = int(age), int((age % 1) * 1e9)
            blob = self._entries
            for index, offset in enumerate(self._offsets):
                count = self._counts[index] + self._per_poll[index]
                self._counts[index] = count
                struct.pack_into("!II", blob, offset + DURATION_AT, seconds, nanos)
                struct.pack_into("!QQ", blob, offset + COUNTS_AT, count, count * 120)
            messages = []
            for number, (start, end) in enumerate(self._parts):
                flags = OFPMPF_REPLY_MORE if number < len(self._parts) - 1 else 0
                header = struct.pack(
                    "!BBHIHH4x", 4, OFPT_MULTIPART_REPLY, 16 + end - start, xid, OFPMP_FLOW, flags
                )
                messages.append(header + blob[start:end])
            self.polls += 1
            return b"".join(messages)

    def connection_opened(self, client: Client) -> None:
        """The client's SYN reaches the capture flow: a capture packet-in."""
        frame = frames.tcp4_frame(
            eth_src="02:00:00:00:00:02",
            eth_dst="02:00:00:00:00:01",
            ip_src=client.ip,
            ip_dst=SERVER_IP,
            tp_src=client.port,
            tp_dst=XMPP_PORT,
            flags=0x02,
        )
        self.send(
            PacketIn(
                buffer_id=0xFFFFFFFF,
                total_len=len(frame),
                reason=1,
                table_id=0,
                cookie=cookies.encode(Owner.RATE_LIMITER, Kind.CAPTURE, flows.CAPTURE_ID_IPV4),
                match=match_from_dict({"in_port": 2}),
                data=frame,
            )
        )

    def _handle(self, raw: bytes) -> None:
        """Flow mods counted, our polls answered from the packed table; the rest as usual."""
        kind = raw[1]
        if kind == OFPT_FLOW_MOD:
            self.flow_mods += 1
            return
        if kind == OFPT_MULTIPART_REQUEST and int.from_bytes(raw[8:10], "big") == OFPMP_FLOW:
            cookie, mask = int.from_bytes(raw[32:40], "big"), int.from_bytes(raw[40:48], "big")
            if (cookie, mask) == MONITOR_POLL:  # not flow_manager's consistency checks
                self.send(self.poll_reply(int.from_bytes(raw[4:8], "big")))
                return
        super()._handle(raw)


class ScaleScene:
    """Controller + a switch with ``clients`` monitored connections; ``url`` is the dashboard."""

    def __init__(self, base_dir: Path, clients: int = CLIENTS) -> None:
        env = {**CONTROLLER_ENV, "XMPP_OFC_RATE_LIMITER_DB_PATH": str(base_dir / "rl.sqlite")}
        self.controller = ControllerProcess(base_dir, env=env)
        self.count = clients
        self.switch: ScaleSwitch | None = None
        self.setup_seconds: dict[str, float] = {}

    @property
    def url(self) -> str:
        return self.controller.api_url(DASHBOARD_PATH)

    @property
    def dpid(self) -> str:
        assert self.switch is not None
        return self.switch.dpid_str

    def monitored_total(self) -> int:
        status, body = self.controller.get(f"{RATE_LIMITER}/monitored?limit=1")
        assert status == 200, body
        return body["total"]

    def start(self) -> ScaleScene:
        started = time.monotonic()
        clients = population(self.count)
        self.controller.start()
        try:
            self.switch = ScaleSwitch("127.0.0.1", self.controller.of_port, clients)
            self.setup_seconds["pack"] = time.monotonic() - started
            self.switch.connect()
            self.switch.handshake()
            wait_until(self._rate_limiter_active, what="rate limiter active on the switch")
            sent = time.monotonic()
            # A switch without monitored clients is not polled: one client connects
            # (packet-in, monitor flow); the first poll's reply brings the others in.
            self.switch.connection_opened(clients[0])
            wait_until(
                lambda: self.monitored_total() >= self.count,
                timeout=120,
                what=f"{self.count} clients monitored",
            )
            self.setup_seconds["monitor"] = time.monotonic() - sent
            rated = time.monotonic()
            wait_until(self._fastest_rated, timeout=120, what="the fastest clients rated")
            self.setup_seconds["rated"] = time.monotonic() - rated
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.switch is not None:
            self.switch.close()
        self.controller.stop()

    def __enter__(self) -> ScaleScene:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _rate_limiter_active(self) -> bool:
        status, body = self.controller.get(f"{RATE_LIMITER}/status")
        return status == 200 and body["switches"].get(self.dpid, {}).get("connected", False)

    def _fastest_rated(self) -> bool:
        status, body = self.controller.get(f"{RATE_LIMITER}/monitored?limit=1")
        return status == 200 and bool(body["monitored"]) and body["monitored"][0]["packets_per_min"]
