"""A lean asyncio OpenFlow 1.3 switch emulator that drives packet-in load.

Why not :class:`xmpp_ofc.testing.fake_switch.FakeSwitch`: it parses every
message with pyof on a thread per switch, which is right for tests but costs
more per message than the controllers we measure, so the generator would be
the bottleneck.  Here every switch is an ``asyncio.Protocol`` on one event loop,
hot-path messages are built from byte templates and read with ``struct`` at
fixed offsets, and nothing else is parsed.

A switch answers what a controller needs before it handles packet-ins
(HELLO, ECHO, FEATURES, the multipart requests, BARRIER, GET_CONFIG, ROLE) and
ignores the rest.  A :class:`Profile` says what the controller's pipeline makes
the switch send (the packet-in's table, cookie, reason, VLAN tag) and which
reply completes a packet-in, because the two controllers answer differently:

* ours (l2_switch) answers a packet-in whose destination is known with a FlowMod
  (``in_port + eth_dst``) and then a PacketOut carrying the frame.  The FlowMod
  does not name the frame's source, so the PacketOut identifies the packet-in
  and the latency is taken at the FlowMod received just before it;
* Faucet learns the source of each packet-in and installs an ``eth_src`` flow:
  the first FlowMod whose match names the frame's source completes it.

Every packet-in carries a fresh source MAC, so both controllers do work for
every one of them (Faucet ignores sources it already knows).

Also a *reflector* (``python benchmarks/ofgen.py reflector --port N``): the
smallest controller that answers each packet-in with one FlowMod, run as its
own process to measure the generator's ceiling on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

OFP_VERSION = 0x04
OFPT_HELLO = 0
OFPT_ERROR = 1
OFPT_ECHO_REQUEST = 2
OFPT_ECHO_REPLY = 3
OFPT_FEATURES_REQUEST = 5
OFPT_FEATURES_REPLY = 6
OFPT_GET_CONFIG_REQUEST = 7
OFPT_GET_CONFIG_REPLY = 8
OFPT_PACKET_IN = 10
OFPT_PACKET_OUT = 13
OFPT_FLOW_MOD = 14
OFPT_MULTIPART_REQUEST = 18
OFPT_MULTIPART_REPLY = 19
OFPT_BARRIER_REQUEST = 20
OFPT_BARRIER_REPLY = 21
OFPT_ROLE_REQUEST = 24
OFPT_ROLE_REPLY = 25
OFPT_GET_ASYNC_REQUEST = 26
OFPT_GET_ASYNC_REPLY = 27

OFPMP_DESC = 0
OFPMP_PORT_DESC = 13
OFPFC_ADD = 0
OFPR_NO_MATCH = 0
OFPR_ACTION = 1
OFP_NO_BUFFER = 0xFFFFFFFF
OXM_CLASS_BASIC = 0x8000
OXM_IN_PORT = 0
OXM_ETH_DST = 3
OXM_ETH_SRC = 4

HEADER = struct.Struct("!BBHI")
BROADCAST = b"\xff" * 6
FULL_COOKIE_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class Profile:
    """How one controller's pipeline looks from the switch, and how it answers.

    ``packet_in_*`` are what the switch puts in a PACKET_IN from the flow that
    sends frames to the controller (Faucet's ``eth_src`` table flow, our table-1
    miss).  A FlowMod ADD with that table and cookie means the pipeline is
    installed.  ``reply_*`` select the FlowMods that answer a packet-in.
    """

    name: str
    packet_in_table: int
    packet_in_cookie: int
    packet_in_reason: int
    vlan_vid: int | None
    reply_table: int
    reply_cookie: int
    reply_cookie_mask: int
    #: "packet_out": the PacketOut carrying the frame identifies the packet-in and the
    #: FlowMod before it times it (ours); "flow_mod": a FlowMod matching the frame's
    #: eth_src identifies and times it (Faucet, the reflector).
    completed_by: str


#: What the reflector installs and answers; see :func:`serve_reflector`.
REFLECTOR_PROFILE = Profile(
    name="reflector",
    packet_in_table=1,
    packet_in_cookie=0x1,
    packet_in_reason=OFPR_ACTION,
    vlan_vid=None,
    reply_table=1,
    reply_cookie=0x1,
    reply_cookie_mask=FULL_COOKIE_MASK,
    completed_by="flow_mod",
)


# --- message builders -----------------------------------------------------------------


def header(message_type: int, length: int, xid: int) -> bytes:
    return HEADER.pack(OFP_VERSION, message_type, length, xid)


def message(message_type: int, xid: int, body: bytes = b"") -> bytes:
    return header(message_type, 8 + len(body), xid) + body


def hello() -> bytes:
    """HELLO with a version bitmap offering 1.3 only."""
    element = struct.pack("!HHI", 1, 8, 1 << OFP_VERSION)
    return message(OFPT_HELLO, 0, element)


def features_reply(xid: int, dpid: int) -> bytes:
    return message(OFPT_FEATURES_REPLY, xid, struct.pack("!QIBBxxII", dpid, 0, 254, 0, 0x4F, 0))


def multipart_reply(xid: int, multipart_type: int, body: bytes) -> bytes:
    return message(OFPT_MULTIPART_REPLY, xid, struct.pack("!HH4x", multipart_type, 0) + body)


def port_desc(number: int) -> bytes:
    """An ofp_port that is up, 1 Gb/s full duplex copper."""
    return struct.pack(
        "!I4x6s2x16sIIIIIIII",
        number,
        bytes([0x02, 0, 0, 0, number >> 8 & 0xFF, number & 0xFF]),
        f"eth{number}".encode(),
        0,  # config
        4,  # state: OFPPS_LIVE
        0x20 | 0x800,  # curr: 1GB_FD | COPPER
        0,
        0,
        0,
        1_000_000,
        1_000_000,
    )


def desc_body(dpid: int) -> bytes:
    return struct.pack(
        "!256s256s256s32s256s",
        b"xmpp_ofc benchmarks",
        b"ofgen",
        b"ofgen.py",
        f"{dpid:x}".encode(),
        f"ofgen switch {dpid:#x}".encode(),
    )


def frame(dst: bytes, src: bytes, vlan_vid: int | None) -> bytes:
    """A 64-byte IPv4/UDP frame, VLAN-tagged when the pipeline pushed a tag."""
    tag = b"" if vlan_vid is None else struct.pack("!HH", 0x8100, vlan_vid)
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0, b"\x0a\0\0\x01", b"\x0a\0\0\x02"
    )
    udp = struct.pack("!HHHH", 4000, 4001, 8, 0)
    data = dst + src + tag + b"\x08\x00" + ip + udp
    return data + bytes(max(0, 60 - len(data)))


class PacketInTemplate:
    """PACKET_INs of one profile on one port: everything fixed but the MACs and xid.

    Layout: header(8) buffer_id(4) total_len(2) reason(1) table_id(1) cookie(8)
    match(type, length, IN_PORT OXM, padding = 16) pad(2) frame.
    """

    def __init__(self, profile: Profile, in_port: int) -> None:
        oxm = struct.pack("!HBBI", OXM_CLASS_BASIC, OXM_IN_PORT << 1, 4, in_port)
        match = struct.pack("!HH", 1, 4 + len(oxm)) + oxm
        match += bytes(-len(match) % 8)
        self._vlan_vid = profile.vlan_vid
        sample = frame(BROADCAST, BROADCAST, profile.vlan_vid)
        fixed = struct.pack(
            "!IHBBQ",
            OFP_NO_BUFFER,
            len(sample),
            profile.packet_in_reason,
            profile.packet_in_table,
            profile.packet_in_cookie,
        )
        self._before_frame = fixed + match + b"\0\0"
        self._frame_tail = sample[12:]
        self._length = 8 + len(self._before_frame) + len(sample)

    def build(self, xid: int, dst: bytes, src: bytes) -> bytes:
        return (
            header(OFPT_PACKET_IN, self._length, xid)
            + self._before_frame
            + dst
            + src
            + self._frame_tail
        )


def flow_mod_eth_src(xid: int, table_id: int, cookie: int, eth_src: bytes) -> bytes:
    """FlowMod ADD matching one eth_src, no instructions (the reflector's answer)."""
    oxm = struct.pack("!HBB", OXM_CLASS_BASIC, OXM_ETH_SRC << 1, 6) + eth_src
    match = struct.pack("!HH", 1, 4 + len(oxm)) + oxm
    match += bytes(-len(match) % 8)
    body = struct.pack(
        "!QQBBHHHIIIH2x", cookie, 0, table_id, OFPFC_ADD, 0, 0, 100, OFP_NO_BUFFER, 0, 0, 0
    )
    return message(OFPT_FLOW_MOD, xid, body + match)


# --- message readers (fixed offsets, no parsing library) ------------------------------


def flow_mod_fields(raw: bytes) -> tuple[int, int, int]:
    """(cookie, table_id, command) of a FlowMod."""
    cookie = int.from_bytes(raw[8:16], "big")
    return cookie, raw[24], raw[25]


def flow_mod_match(raw: bytes) -> dict[int, bytes]:
    """The unmasked OXM fields (field number -> value) a FlowMod matches on."""
    fields: dict[int, bytes] = {}
    if len(raw) < 52:
        return fields
    match_length = int.from_bytes(raw[50:52], "big")
    offset, end = 52, min(len(raw), 48 + match_length)
    while offset + 4 <= end:
        oxm_class = int.from_bytes(raw[offset : offset + 2], "big")
        field_and_mask, length = raw[offset + 2], raw[offset + 3]
        if oxm_class == OXM_CLASS_BASIC and not field_and_mask & 1:
            fields[field_and_mask >> 1] = raw[offset + 4 : offset + 4 + length]
        offset += 4 + length
    return fields


def packet_out_frame(raw: bytes) -> tuple[int, bytes, bytes] | None:
    """(in_port, dst, src) of the frame a PacketOut carries (None when it has none)."""
    if len(raw) < 24:
        return None
    data_at = 24 + int.from_bytes(raw[16:18], "big")
    if len(raw) < data_at + 12:
        return None
    in_port = int.from_bytes(raw[12:16], "big")
    return in_port, raw[data_at : data_at + 6], raw[data_at + 6 : data_at + 12]


def packet_in_src(raw: bytes) -> bytes:
    """The source MAC of a PACKET_IN's frame (for the reflector)."""
    match_length = int.from_bytes(raw[26:28], "big")
    data_at = 24 + match_length + (-match_length % 8) + 2
    return raw[data_at + 6 : data_at + 12]


def mac(dpid_index: int, number: int) -> bytes:
    """A locally administered unicast MAC, unique per (switch, number)."""
    return bytes([0x06, dpid_index & 0xFF]) + number.to_bytes(4, "big")


# --- the emulated switch ---------------------------------------------------------------


@dataclass
class Stats:
    """Counters of one switch connection."""

    sent: int = 0
    completed: int = 0
    completed_without_flow_mod: int = 0
    lost: int = 0
    latencies: list[float] = field(default_factory=list)


class EmulatedSwitch(asyncio.Protocol):
    """One OpenFlow 1.3 switch connection on the generator's event loop."""

    def __init__(
        self, index: int, dpid: int, ports: list[int], profile: Profile, loop_time: Callable
    ) -> None:
        self.index = index
        self.dpid = dpid
        self.ports = ports
        self.profile = profile
        self._now = loop_time
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._xids = itertools.count(1)
        self._templates = {port: PacketInTemplate(profile, port) for port in ports}
        self._source_numbers = itertools.count(1)
        #: Ours: (in_port, eth_dst) -> arrival times of forwarding FlowMods that came
        #: before their PacketOut, and sources whose PacketOut came before the FlowMod.
        self._flow_mod_times: dict[tuple[int, bytes], collections.deque[float]] = {}
        self._awaiting_flow_mod: dict[tuple[int, bytes], collections.deque[bytes]] = {}
        #: src MAC -> (send time, waiter future or None)
        self.outstanding: dict[bytes, tuple[float, asyncio.Future | None]] = {}
        self.stats = Stats()
        self.recording = False
        self.answered = 0
        self.last_message_at = 0.0
        self.pipeline_ready = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.received_types: collections.Counter[int] = collections.Counter()
        #: Called with this switch after each completion (the throughput refill).
        self.on_completed: Callable[[EmulatedSwitch], None] | None = None

    # asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(hello())  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        now = self._now()
        self.last_message_at = now
        offset = 0
        while len(buffer) - offset >= 8:
            length = (buffer[offset + 2] << 8) | buffer[offset + 3]
            if length < 8:
                self.transport.close()
                return
            if len(buffer) - offset < length:
                break
            self._handle(bytes(buffer[offset : offset + length]), now)
            offset += length
        del buffer[:offset]

    # messages --------------------------------------------------------------------------

    def _handle(self, raw: bytes, now: float) -> None:
        message_type = raw[1]
        self.received_types[message_type] += 1
        if message_type == OFPT_FLOW_MOD:
            self._on_flow_mod(raw, now)
        elif message_type == OFPT_PACKET_OUT:
            self._on_packet_out(raw, now)
        else:
            self._answer(message_type, raw)

    def _answer(self, message_type: int, raw: bytes) -> None:
        xid = int.from_bytes(raw[4:8], "big")
        write = self.transport.write
        if message_type == OFPT_ECHO_REQUEST:
            write(message(OFPT_ECHO_REPLY, xid, raw[8:]))
        elif message_type == OFPT_FEATURES_REQUEST:
            write(features_reply(xid, self.dpid))
        elif message_type == OFPT_MULTIPART_REQUEST:
            multipart_type = int.from_bytes(raw[8:10], "big")
            if multipart_type == OFPMP_PORT_DESC:
                body = b"".join(port_desc(port) for port in self.ports)
            elif multipart_type == OFPMP_DESC:
                body = desc_body(self.dpid)
            else:  # flows, stats, table features...: an empty table answers with nothing
                body = b""
            write(multipart_reply(xid, multipart_type, body))
        elif message_type == OFPT_BARRIER_REQUEST:
            write(message(OFPT_BARRIER_REPLY, xid))
        elif message_type == OFPT_GET_CONFIG_REQUEST:
            write(message(OFPT_GET_CONFIG_REPLY, xid, struct.pack("!HH", 0, 0xFFFF)))
        elif message_type == OFPT_ROLE_REQUEST:
            write(message(OFPT_ROLE_REPLY, xid, raw[8:]))
        elif message_type == OFPT_GET_ASYNC_REQUEST:
            write(message(OFPT_GET_ASYNC_REPLY, xid, bytes(24)))
        # HELLO, SET_CONFIG, SET_ASYNC, GROUP_MOD, METER_MOD, ERROR...: nothing to answer

    def _on_flow_mod(self, raw: bytes, now: float) -> None:
        profile = self.profile
        cookie, table_id, command = flow_mod_fields(raw)
        if command != OFPFC_ADD:
            return
        if (
            not self.pipeline_ready.done()
            and table_id == profile.packet_in_table
            and cookie == profile.packet_in_cookie
        ):
            self.pipeline_ready.set_result(now)
        if table_id != profile.reply_table or (
            cookie & profile.reply_cookie_mask != profile.reply_cookie
        ):
            return
        fields = flow_mod_match(raw)
        if profile.completed_by == "packet_out":
            in_port, eth_dst = fields.get(OXM_IN_PORT), fields.get(OXM_ETH_DST)
            if in_port is not None and eth_dst is not None:
                self._pair_flow_mod((int.from_bytes(in_port, "big"), eth_dst), now)
            return
        source = fields.get(OXM_ETH_SRC)
        if source is not None:
            self._complete(source, now, with_flow_mod=True)

    def _on_packet_out(self, raw: bytes, now: float) -> None:
        """Ours: the PacketOut names the packet-in (its frame's source MAC).

        A flood (broadcast destination: the learning packet-ins) completes it; a
        forwarded frame completes it once the FlowMod for the same in_port and
        destination is there too, whichever of the two came first (ours sends the
        PacketOut directly and the FlowMod through flow_manager).  The latency is
        taken at the FlowMod.
        """
        if self.profile.completed_by != "packet_out":
            return
        found = packet_out_frame(raw)
        if found is None or found[2] not in self.outstanding:
            return
        in_port, dst, source = found
        if dst[0] & 1:
            self._complete(source, now, with_flow_mod=False)
            return
        key = (in_port, dst)
        sent_at = self.outstanding[source][0]
        times = self._flow_mod_times.get(key)
        while times and times[0] < sent_at:  # re-sent or replayed flows, not this answer
            times.popleft()
        if times:
            self._complete(source, times.popleft(), with_flow_mod=True)
        else:
            self._awaiting_flow_mod.setdefault(key, collections.deque()).append(source)

    def _pair_flow_mod(self, key: tuple[int, bytes], now: float) -> None:
        waiting = self._awaiting_flow_mod.get(key)
        while waiting:
            source = waiting.popleft()
            if source in self.outstanding:  # not expired meanwhile
                self._complete(source, now, with_flow_mod=True)
                return
        self._flow_mod_times.setdefault(key, collections.deque()).append(now)

    def _complete(self, source: bytes, at: float, *, with_flow_mod: bool) -> None:
        entry = self.outstanding.pop(source, None)
        if entry is None:
            return
        sent_at, waiter = entry
        self.answered += 1
        if self.recording:
            self.stats.completed += 1
            self.stats.latencies.append(at - sent_at)
            if not with_flow_mod:
                self.stats.completed_without_flow_mod += 1
        if waiter is not None and not waiter.done():
            waiter.set_result(with_flow_mod)
        if self.on_completed is not None:
            self.on_completed(self)

    # load --------------------------------------------------------------------------------

    def send_packet_in(
        self,
        in_port: int,
        dst: bytes,
        src: bytes | None = None,
        waiter: asyncio.Future | None = None,
    ) -> bytes:
        """Send one packet-in from ``src`` (fresh when None) to ``dst``; return ``src``."""
        if src is None:
            src = mac(self.index, next(self._source_numbers))
        raw = self._templates[in_port].build(next(self._xids) & 0xFFFFFFFF, dst, src)
        self.outstanding[src] = (self._now(), waiter)
        if self.recording:
            self.stats.sent += 1
        self.transport.write(raw)
        return src

    def forget_in_flight(self) -> None:
        """Start the next phase clean: no outstanding packet-ins, no unpaired FlowMods."""
        self.outstanding.clear()
        self._flow_mod_times.clear()
        self._awaiting_flow_mod.clear()

    def expire(self, older_than: float) -> int:
        """Forget packet-ins sent before ``older_than``; count them as lost."""
        stale = [src for src, (sent_at, _) in self.outstanding.items() if sent_at < older_than]
        for src in stale:
            _, waiter = self.outstanding.pop(src)
            if waiter is not None and not waiter.done():
                waiter.set_exception(TimeoutError("no reply"))
        if self.recording:
            self.stats.lost += len(stale)
        return len(stale)


# --- the load driver ---------------------------------------------------------------------


#: Pre-learned hosts behind each port: destinations vary, so the FlowMods that
#: answer the packet-ins of one window rarely share an (in_port, eth_dst) key.
HOSTS_PER_PORT = 8


def host_mac(switch_index: int, port: int, number: int = 0) -> bytes:
    """A pre-learned host behind ``port``: a destination of the measured traffic."""
    return bytes([0x0E, switch_index & 0xFF, 0, 0, number & 0xFF, port & 0xFF])


@dataclass
class PhaseResult:
    """What one measured phase produced."""

    seconds: float
    completed: int
    lost: int
    without_flow_mod: int
    latencies: list[float]
    generator_cpu: float  # fraction of one core the generator used
    #: Completions in each second of the phase (throughput only): shows drift.
    per_second: list[int] = field(default_factory=list)
    #: Packet-ins still unanswered after the bounded drain at the end.
    unanswered_at_end: int = 0

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0


class ControllerSilent(RuntimeError):
    """The controller under test did not do what the benchmark needs in time."""


class LoadGenerator:
    """N emulated switches against one controller address."""

    def __init__(
        self,
        host: str,
        port: int,
        profile: Profile,
        *,
        dpids: list[int],
        ports: list[int],
    ) -> None:
        self.address = (host, port)
        self.profile = profile
        self.dpids = dpids
        self.ports = ports
        self.switches: list[EmulatedSwitch] = []

    async def connect(self, timeout: float = 20.0, settle: float = 0.5) -> None:
        """Connect every switch and wait until its pipeline is installed and quiet."""
        loop = asyncio.get_running_loop()
        for index, dpid in enumerate(self.dpids):
            _, switch = await asyncio.wait_for(
                loop.create_connection(
                    lambda i=index, d=dpid: EmulatedSwitch(
                        i, d, self.ports, self.profile, loop.time
                    ),
                    *self.address,
                ),
                timeout,
            )
            switch.transport.get_extra_info("socket").setsockopt(6, 1, 1)  # TCP_NODELAY
            self.switches.append(switch)
        deadline = loop.time() + timeout
        for switch in self.switches:
            try:
                await asyncio.wait_for(
                    asyncio.shield(switch.pipeline_ready), max(0.1, deadline - loop.time())
                )
            except TimeoutError:
                seen = {k: v for k, v in sorted(switch.received_types.items())}
                raise ControllerSilent(
                    f"{self.profile.name}: switch {switch.dpid:#x} saw no FlowMod ADD for table "
                    f"{self.profile.packet_in_table} cookie {self.profile.packet_in_cookie:#x} "
                    f"within {timeout} s (message types received: {seen})"
                ) from None
        # Controllers send their pipeline in bursts; wait until every switch is quiet.
        while loop.time() < deadline:
            quiet_since = max(switch.last_message_at for switch in self.switches)
            if loop.time() - quiet_since >= settle:
                return
            await asyncio.sleep(0.05)

    async def prelearn(self, timeout: float = 10.0) -> None:
        """Teach the controller one host per port (broadcast frames from them)."""
        loop = asyncio.get_running_loop()
        waiters = []
        for switch in self.switches:
            for port in self.ports:
                for number in range(HOSTS_PER_PORT):
                    waiter = loop.create_future()
                    host = host_mac(switch.index, port, number)
                    switch.send_packet_in(port, BROADCAST, host, waiter)
                    waiters.append(waiter)
        _, pending = await asyncio.wait(waiters, timeout=timeout)
        if pending:
            raise ControllerSilent(
                f"{self.profile.name}: {len(pending)} of {len(waiters)} learning packet-ins "
                f"got no answer within {timeout} s"
            )
        await asyncio.sleep(0.2)  # let trailing FlowMods (Faucet sends several) drain

    def _route(self, switch: EmulatedSwitch, turn: int) -> tuple[int, bytes]:
        """In-port and known destination (on another port) of the ``turn``-th packet-in."""
        count = len(self.ports)
        in_index = turn % count
        out_index = (in_index + 1 + (turn // count) % (count - 1)) % count
        number = (turn // (count * (count - 1))) % HOSTS_PER_PORT
        return self.ports[in_index], host_mac(switch.index, self.ports[out_index], number)

    async def latency(self, samples: int, timeout: float = 5.0) -> PhaseResult:
        """One packet-in outstanding at a time, on the first switch."""
        loop = asyncio.get_running_loop()
        switch = self.switches[0]
        switch.stats = Stats()
        switch.recording = True
        cpu0, wall0 = time.process_time(), time.perf_counter()
        try:
            for turn in range(samples):
                waiter = loop.create_future()
                in_port, dst = self._route(switch, turn)
                switch.send_packet_in(in_port, dst, waiter=waiter)
                try:
                    await asyncio.wait_for(waiter, timeout)
                except TimeoutError:
                    switch.expire(loop.time() + 1)
                    if switch.stats.completed == 0:
                        raise ControllerSilent(
                            f"{self.profile.name}: first packet-in got no FlowMod in {timeout} s"
                        ) from None
        finally:
            switch.recording = False
        wall = time.perf_counter() - wall0
        stats = switch.stats
        return PhaseResult(
            wall,
            stats.completed,
            stats.lost,
            stats.completed_without_flow_mod,
            stats.latencies,
            (time.process_time() - cpu0) / wall,
        )

    async def throughput(
        self, window: int, seconds: float, warmup: float = 1.0, timeout: float = 5.0
    ) -> PhaseResult:
        """Every switch keeps ``window`` packet-ins outstanding for ``seconds``."""
        turns = itertools.count()

        def refill(switch: EmulatedSwitch) -> None:
            while len(switch.outstanding) < window:
                in_port, dst = self._route(switch, next(turns))
                switch.send_packet_in(in_port, dst)

        for switch in self.switches:
            switch.stats = Stats()
            switch.on_completed = refill
        try:
            for switch in self.switches:
                refill(switch)
            await self._run_expiring(warmup, timeout)
            if not any(switch.answered for switch in self.switches):
                raise ControllerSilent(
                    f"{self.profile.name}: no packet-in answered during the {warmup} s warm-up"
                )
            for switch in self.switches:
                switch.recording = True
            cpu0, wall0 = time.process_time(), time.perf_counter()
            per_second = await self._run_expiring(seconds, timeout)
            wall = time.perf_counter() - wall0
            cpu = time.process_time() - cpu0
        finally:
            for switch in self.switches:
                switch.recording = False
                switch.on_completed = None
        completed = sum(s.stats.completed for s in self.switches)
        if completed == 0:
            raise ControllerSilent(f"{self.profile.name}: no packet-in answered in {seconds} s")
        unanswered = await self._drain(timeout)
        return PhaseResult(
            wall,
            completed,
            sum(s.stats.lost for s in self.switches),
            sum(s.stats.completed_without_flow_mod for s in self.switches),
            [latency for s in self.switches for latency in s.stats.latencies],
            cpu / wall,
            per_second,
            unanswered,
        )

    async def _run_expiring(self, seconds: float, timeout: float) -> list[int]:
        """Let the load run, expiring (and so refilling) packet-ins that got no answer.

        Returns the completions of each whole second.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        end = start + seconds
        per_second: list[int] = []
        mark = sum(s.stats.completed for s in self.switches)
        while (remaining := end - loop.time()) > 0:
            if loop.time() - start >= len(per_second) + 1:
                total = sum(s.stats.completed for s in self.switches)
                per_second.append(total - mark)
                mark = total
            await asyncio.sleep(min(0.25, remaining))
            for switch in self.switches:
                if switch.closed.done():
                    raise ControllerSilent(
                        f"{self.profile.name}: controller closed switch {switch.dpid:#x}"
                    )
                if switch.expire(loop.time() - timeout) and switch.on_completed:
                    switch.on_completed(switch)
        return per_second

    async def _drain(self, timeout: float) -> int:
        """Wait (bounded) for the answers still in flight, so phases don't overlap.

        Returns how many never came.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and any(s.outstanding for s in self.switches):
            await asyncio.sleep(0.05)
        unanswered = sum(len(s.outstanding) for s in self.switches)
        for switch in self.switches:
            switch.forget_in_flight()
        return unanswered

    def close(self) -> None:
        for switch in self.switches:
            if switch.transport is not None:
                switch.transport.close()


# --- the reflector -----------------------------------------------------------------------


class _Reflector(asyncio.Protocol):
    """Handshake, install the "pipeline" marker, answer each packet-in with a FlowMod."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = bytearray()
        self.xids = itertools.count(1)
        transport.get_extra_info("socket").setsockopt(6, 1, 1)
        transport.write(hello() + message(OFPT_FEATURES_REQUEST, next(self.xids)))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        offset = 0
        out = []
        while len(buffer) - offset >= 8:
            length = (buffer[offset + 2] << 8) | buffer[offset + 3]
            if length < 8 or len(buffer) - offset < length:
                break
            raw = bytes(buffer[offset : offset + length])
            offset += length
            message_type = raw[1]
            profile = REFLECTOR_PROFILE
            if message_type == OFPT_PACKET_IN:
                out.append(
                    flow_mod_eth_src(
                        next(self.xids),
                        profile.reply_table,
                        profile.reply_cookie,
                        packet_in_src(raw),
                    )
                )
            elif message_type == OFPT_ECHO_REQUEST:
                out.append(message(OFPT_ECHO_REPLY, int.from_bytes(raw[4:8], "big"), raw[8:]))
            elif message_type == OFPT_FEATURES_REPLY:
                out.append(
                    flow_mod_eth_src(
                        next(self.xids),
                        profile.packet_in_table,
                        profile.packet_in_cookie,
                        BROADCAST,
                    )
                )
        del buffer[:offset]
        if out:
            self.transport.write(b"".join(out))


async def serve_reflector(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Reflector, host, port)
    async with server:
        await server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    reflector = sub.add_parser("reflector", help="run the one-FlowMod-per-packet-in controller")
    reflector.add_argument("--host", default="127.0.0.1")
    reflector.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_reflector(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
