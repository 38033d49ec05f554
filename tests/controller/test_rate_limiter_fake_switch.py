"""rate_limiter in the real controller process, against scripted fake switches.

What a switch receives is what the whole stack sent: of_core's events ->
dispatcher routing -> rate_limiter -> flow_manager / msg_out. The fake switch
answers the rate limiter's cookie-filtered flow-stats polls with counters that
rise as fast as the test wants, and its meter-features request when asked to.
Polls run every second (environment override), so "within two polls" is seconds.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from pyof.v0x04.asynchronous.error_msg import ErrorMsg, ErrorType, FlowModFailedCode
from pyof.v0x04.asynchronous.flow_removed import FlowRemoved
from pyof.v0x04.asynchronous.packet_in import PacketIn
from pyof.v0x04.common.header import Type
from pyof.v0x04.controller2switch.common import MultipartType
from pyof.v0x04.controller2switch.flow_mod import FlowModCommand
from pyof.v0x04.controller2switch.multipart_reply import MeterFeatures, MultipartReply

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.flows import Client
from tests.kytos_helpers import pyof_packet_in, running_controller
from tests.waiting import wait_until
from xmpp_ofc import cookies, pipeline
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.openflow.flow_json import flow_mod_from_dict, flow_mod_to_dict
from xmpp_ofc.openflow.match import match_from_dict
from xmpp_ofc.testing import frames
from xmpp_ofc.testing.fake_switch import FakeSwitch, Received, flow_stats

API = "xmpp_ofc/rate_limiter/v1"
PORTS = (5222, 5269)
OFPMP_METER_FEATURES = 11
OFPRR_HARD_TIMEOUT = 1
_dpids = itertools.count(0x300)


@pytest.fixture(scope="module")
def controller(tmp_path_factory):
    base = tmp_path_factory.mktemp("rate_limiter_controller")
    env = {
        "XMPP_OFC_RATE_LIMITER_TIMER_INTERVAL": "0.2",
        "XMPP_OFC_RATE_LIMITER_XMPP_PORTS": ",".join(map(str, PORTS)),
        "XMPP_OFC_RATE_LIMITER_DB_PATH": str(base / "rate_limiter.sqlite"),
        "KYTOS_OF_CORE_STATS_INTERVAL": "3600",
    }
    with running_controller(base, env=env) as process:
        yield process


class CountingSwitch(FakeSwitch):
    """A fake switch whose monitor flows count ``packets_per_poll`` more at each of our polls.

    It records every cookie-filtered OFPMP_FLOW request and answers it with the
    monitor flows it was given (``monitor``), counters rising; with
    ``meter_features`` it answers OFPMP_METER_FEATURES too.
    """

    def __init__(self, *args, meters: int = 0, **kwargs) -> None:
        super().__init__(*args, on_message=self._on_message, **kwargs)
        self.meters = meters
        #: Answer every drop-flow FlowMod ADD with OFPT_ERROR TABLE_FULL (same xid).
        self.refuse_blocks = False
        self.polls: list[Received] = []
        self.monitors: dict[Client, dict] = {}
        self.packets_per_poll: dict[Client, int] = {}
        self._counts: dict[Client, int] = {}
        self._started = time.monotonic()
        self._lock = threading.Lock()

    def monitor(self, client: Client, packets_per_poll: int) -> None:
        with self._lock:
            self.monitors[client] = flows.monitor_flow(client, 5222, idle_timeout=120)
            self.packets_per_poll[client] = packets_per_poll

    def _on_message(self, item: Received) -> None:
        if item.message_type == Type.OFPT_FLOW_MOD and self.refuse_blocks and item.message:
            is_block = (int(item.message.cookie) >> cookies.KIND_SHIFT) & 0xFF == Kind.BLOCK
            if is_block and int(item.message.command) == FlowModCommand.OFPFC_ADD:
                self.send(
                    ErrorMsg(
                        xid=item.xid,
                        error_type=ErrorType.OFPET_FLOW_MOD_FAILED,
                        code=FlowModFailedCode.OFPFMFC_TABLE_FULL,
                        data=item.raw[:64],
                    )
                )
            return
        if item.message_type != Type.OFPT_MULTIPART_REQUEST or item.message is None:
            return
        kind = int(item.message.multipart_type)
        if kind == OFPMP_METER_FEATURES and self.meters:
            features = MeterFeatures(
                max_meter=self.meters,
                band_types=1 << 1,
                capabilities=0b1111,
                max_bands=1,
                max_color=0,
            )
            reply = MultipartReply(xid=item.xid, multipart_type=kind, flags=0, body=features)
            self.send(reply)
        elif kind == MultipartType.OFPMP_FLOW and int(item.message.body.cookie_mask):
            self.polls.append(item)
            with self._lock:
                self.flows = [self._stats(client) for client in self.monitors]

    def _stats(self, client: Client):
        count = self._counts.get(client, 0) + self.packets_per_poll[client]
        self._counts[client] = count
        age = time.monotonic() - self._started
        stats = flow_stats(
            self.monitors[client],
            packet_count=count,
            byte_count=count * 400,
            duration_sec=int(age),
        )
        stats.duration_nsec = int((age % 1) * 1e9)
        return stats


@pytest.fixture
def switch(controller):
    with CountingSwitch("127.0.0.1", controller.of_port, dpid=next(_dpids), ports=(1, 2)) as sw:
        sw.handshake()
        wait_for_capture(sw)
        yield sw


def flow_mods(sw: FakeSwitch, since: int = 0) -> list[tuple[int, dict]]:
    return [
        (int(r.message.command), flow_mod_to_dict(r.message))
        for r in sw.received[since:]
        if r.message_type == Type.OFPT_FLOW_MOD
    ]


def canonical(flow: dict) -> dict:
    return flow_mod_to_dict(flow_mod_from_dict(flow, "add"))


def wait_for_capture(sw: FakeSwitch) -> list[tuple[int, dict]]:
    wanted = [canonical(flow) for flow in flows.capture_flows(PORTS)]
    assert wait_until(lambda: all(f in [m for _, m in flow_mods(sw)] for f in wanted)), (
        "capture flows not installed"
    )
    return flow_mods(sw)


def capture_packet_in(client: Client, server_port: int = 5222) -> PacketIn:
    frame = frames.tcp4_frame(
        eth_src="02:00:00:00:00:02",
        eth_dst="02:00:00:00:00:01",
        ip_src=client.ip,
        ip_dst="10.0.0.1",
        tp_src=client.port,
        tp_dst=server_port,
        flags=0x02,
    )
    capture = cookies.encode(Owner.RATE_LIMITER, Kind.CAPTURE, flows.CAPTURE_ID_IPV4)
    return pyof_packet_in(frame, 2, cookie=capture, table_id=0, reason=1)


def wait_for_flow(
    sw: FakeSwitch,
    wanted: dict,
    since: int = 0,
    timeout: float = 10.0,
    ignoring: tuple[str, ...] = (),
) -> int:
    """Index (in ``received``) of the FlowMod ADD of ``wanted``.

    Keys in ``ignoring`` may differ (a hard timeout that depends on when it was sent).
    """
    wanted = {k: v for k, v in canonical(wanted).items() if k not in ignoring}

    def find():
        for index, item in enumerate(sw.received[since:], since):
            if item.message_type == Type.OFPT_FLOW_MOD and (
                int(item.message.command) == FlowModCommand.OFPFC_ADD
                and {k: v for k, v in flow_mod_to_dict(item.message).items() if k not in ignoring}
                == wanted
            ):
                return index + 1  # truthy even for index 0
        return None

    found = wait_until(find, timeout)
    assert found, f"flow not installed: {wanted}"
    return found - 1


def test_connect_installs_capture_flows_for_each_port_and_ip_version_after_the_base(switch):
    mods = flow_mods(switch)
    added = [flow for command, flow in mods if command == FlowModCommand.OFPFC_ADD]
    base = added.index(canonical(pipeline.base_table_miss()))
    captures = [added.index(canonical(flow)) for flow in flows.capture_flows(PORTS)]
    assert min(captures) > base
    matches = {
        (added[i]["match"]["dl_type"], added[i]["match"]["tp_dst"], added[i]["priority"])
        for i in captures
    }
    assert matches == {(eth, port, 150) for eth in (0x0800, 0x86DD) for port in PORTS}


def test_packet_in_monitor_poll_block_then_expiry(controller, switch):
    client = Client("10.0.0.7", 40001)
    since = switch.mark()
    switch.send(capture_packet_in(client))
    monitor = flows.monitor_flow(client, 5222, idle_timeout=120)
    installed = flow_mod_to_dict(switch.received[wait_for_flow(switch, monitor, since)].message)
    assert (installed["table_id"], installed["priority"], installed["idle_timeout"]) == (
        0,
        200,
        120,
    )
    assert installed["flags"] == ["send_flow_rem"]

    polls_before = len(switch.polls)
    switch.monitor(client, packets_per_poll=1000)  # 60000 packets/min, 400 B each
    block = flows.block_flows(client, [5222], 60)[0]
    dropped = flow_mod_to_dict(switch.received[wait_for_flow(switch, block, since, 8.0)].message)
    assert (dropped["priority"], dropped["hard_timeout"], dropped["instructions"]) == (300, 60, [])
    assert dropped["flags"] == ["send_flow_rem"]
    # Over at its first poll (a zero baseline), blocked once over for sustain_s (2 s):
    # three polls, four if the flow grew only after a poll. One poll per switch each time.
    assert len(switch.polls) - polls_before <= 4
    for poll in switch.polls:
        body = poll.message.body
        assert (int(body.cookie), int(body.cookie_mask)) == flows.monitor_poll_selector()
        assert int(body.table_id) == 0

    # The delete is the event after the block's install: it may reach the switch a
    # moment after the block flow (each is its own send).
    def monitor_deleted() -> bool:
        return any(
            command == FlowModCommand.OFPFC_DELETE and flow["cookie"] == monitor["cookie"]
            for command, flow in flow_mods(switch, since)
        )

    assert wait_until(monitor_deleted), "monitor flow of the blocked client not deleted"

    status, body = controller.get(f"{API}/blocked?dpid={switch.dpid_str}")
    assert status == 200
    assert [(b["ip"], b["port"]) for b in body["blocked"]] == [(client.ip, client.port)]

    switch.send(
        FlowRemoved(
            xid=0,
            cookie=block["cookie"],
            priority=300,
            reason=OFPRR_HARD_TIMEOUT,
            table_id=0,
            duration_sec=0,
            duration_nsec=0,
            idle_timeout=0,
            hard_timeout=60,
            packet_count=3,
            byte_count=200,
            match=match_from_dict(block["match"]),
        )
    )
    assert wait_until(
        lambda: controller.get(f"{API}/blocked?dpid={switch.dpid_str}")[1]["blocked"] == []
    )
    _, status = controller.get(f"{API}/status")
    assert status["unblocks_total"].get("expired", 0) >= 1
    _, events = controller.get(f"{API}/events")
    mine = [e for e in events["events"] if e["dpid"] == switch.dpid_str]
    assert [e["kind"] for e in mine] == ["block", "unblock"]


def test_slow_client_is_polled_but_never_blocked(controller, switch):
    client = Client("10.0.0.8", 40002)
    since = switch.mark()
    switch.send(capture_packet_in(client))
    wait_for_flow(switch, flows.monitor_flow(client, 5222, idle_timeout=120), since)
    switch.monitor(client, packets_per_poll=1)
    polls = len(switch.polls)
    assert wait_until(lambda: len(switch.polls) >= polls + 3)
    assert not [f for c, f in flow_mods(switch, since) if f["priority"] == 300]
    _, body = controller.get(f"{API}/monitored?dpid={switch.dpid_str}")
    (entry,) = body["monitored"]
    assert entry["packets_per_min"] is not None and entry["packets_per_min"] < 100


def test_meter_mode_puts_the_meter_on_the_wire_before_the_monitor_that_uses_it(controller):
    status, body = controller.patch(f"{API}/settings", {"mode": "meter"})
    assert status == 200, body
    try:
        with CountingSwitch(
            "127.0.0.1", controller.of_port, dpid=next(_dpids), ports=(1, 2), meters=64
        ) as sw:
            sw.handshake()
            wait_for_capture(sw)
            assert wait_until(
                lambda: (
                    controller.get(f"{API}/status")[1]["switches"].get(sw.dpid_str, {}).get("mode")
                    == "meter"
                )
            )
            client = Client("10.0.0.9", 40003)
            since = sw.mark()
            sw.send(capture_packet_in(client))
            monitor = flows.monitor_flow(client, 5222, idle_timeout=120, meter_id=1)
            flow_index = wait_for_flow(sw, monitor, since)
            meter_adds = [
                index
                for index, item in enumerate(sw.received[:flow_index])
                if item.message_type == Type.OFPT_METER_MOD
                and int(item.message.command) == 0
                and int(item.message.meter_id) == 1
            ]
            assert meter_adds, "no METER_MOD add before the monitor flow"
            band = sw.received[meter_adds[-1]].message.bands[0]
            assert (int(band.rate), int(band.burst_size)) == (2, 50)
    finally:
        controller.patch(f"{API}/settings", {"mode": "block"})


def block_by_flooding(sw: CountingSwitch, client: Client, since: int) -> dict:
    """Monitor ``client``, make it flood, wait for its drop flow; return that flow."""
    sw.send(capture_packet_in(client))
    wait_for_flow(sw, flows.monitor_flow(client, 5222, idle_timeout=120), since)
    sw.monitor(client, packets_per_poll=1000)
    block = flows.block_flows(client, [5222], 60)[0]
    return flow_mod_to_dict(sw.received[wait_for_flow(sw, block, since, 8.0)].message)


def test_reconnect_from_a_new_port_is_blocked_at_once_with_per_ip_aggregate(controller, switch):
    status, body = controller.patch(f"{API}/settings", {"per_ip_aggregate": True})
    assert status == 200, body
    try:
        spammer = Client("10.0.0.20", 40001)
        block_by_flooding(switch, spammer, switch.mark())
        with switch._lock:
            del switch.monitors[spammer]  # the blocked connection's monitor is gone
        reconnect = Client("10.0.0.20", 40002)
        since = switch.mark()
        switch.send(capture_packet_in(reconnect))
        index = wait_for_flow(
            switch,
            flows.block_flows(reconnect, [5222], 60)[0],
            since,
            ignoring=("hard_timeout",),
        )
        assert 1 <= flow_mod_to_dict(switch.received[index].message)["hard_timeout"] <= 60
        monitor_cookie = flows.monitor_cookie(reconnect)
        assert not [f for _, f in flow_mods(switch, since) if f["cookie"] == monitor_cookie]
        _, body = controller.get(f"{API}/blocked?dpid={switch.dpid_str}")
        blocks = {b["port"]: b for b in body["blocked"]}
        assert set(blocks) == {spammer.port, reconnect.port}
        assert blocks[reconnect.port]["expires"] == blocks[spammer.port]["expires"]
        _, status_body = controller.get(f"{API}/status")
        assert status_body["blocks_total"].get("reconnect", 0) >= 1
    finally:
        controller.patch(f"{API}/settings", {"per_ip_aggregate": False})


def test_a_drop_flow_the_switch_refuses_is_not_reported_as_a_block(controller, switch):
    switch.refuse_blocks = True
    client = Client("10.0.0.30", 40001)
    since = switch.mark()
    block_by_flooding(switch, client, since)  # the FlowMod was sent, and refused

    def failure():
        _, body = controller.get(f"{API}/events")
        return [
            e
            for e in body["events"]
            if e["dpid"] == switch.dpid_str and e["kind"] == "block_failed"
        ]

    assert wait_until(failure), "no block_failed event"
    assert failure()[0]["reason"] == "block failed: OFPFMFC_TABLE_FULL"
    assert (failure()[0]["ip"], failure()[0]["port"]) == (client.ip, client.port)
    _, body = controller.get(f"{API}/blocked?dpid={switch.dpid_str}")
    assert body["blocked"] == []
    _, status = controller.get(f"{API}/status")
    assert status["flow_errors_total"].get("block", 0) >= 1
    assert status["switches"][switch.dpid_str]["blocked"] == 0
    # Still monitored: its monitor flow is added again after the refused block.
    monitor = flows.monitor_flow(client, 5222, idle_timeout=120)
    failed_at = next(
        i
        for i, item in enumerate(switch.received)
        if item.message_type == Type.OFPT_FLOW_MOD
        and int(item.message.cookie) == flows.block_cookie(client)
    )
    wait_for_flow(switch, monitor, failed_at)
    _, body = controller.get(f"{API}/monitored?dpid={switch.dpid_str}")
    assert [(m["ip"], m["port"]) for m in body["monitored"]] == [(client.ip, client.port)]

    # The controller keeps serving: this switch's echo, and another switch.
    mark = switch.mark()
    switch.send_echo_request(0x5EC0)
    switch.wait_for(Type.OFPT_ECHO_REPLY, since=mark, predicate=lambda r: r.xid == 0x5EC0)
    with CountingSwitch("127.0.0.1", controller.of_port, dpid=next(_dpids), ports=(1, 2)) as other:
        other.handshake()
        wait_for_capture(other)
        neighbour = Client("10.0.0.31", 40001)
        mark = other.mark()
        block_by_flooding(other, neighbour, mark)
        _, body = controller.get(f"{API}/blocked?dpid={other.dpid_str}")
        assert [(b["ip"], b["port"]) for b in body["blocked"]] == [(neighbour.ip, neighbour.port)]
