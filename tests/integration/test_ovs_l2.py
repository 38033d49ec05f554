"""The learning switch end to end: real Open vSwitch, three hosts, our controller.

Issue 3's acceptance test: ping works between every pair of hosts through the
controller; ``ovs-ofctl -O OpenFlow13 dump-flows`` shows the learned forwarding
flows in table 1 with their timeouts and the l2 cookie; a MAC that moves to
another port keeps its connectivity; disabling l2_switch on the switch over the
dispatcher's REST removes its flows and stops forwarding, enabling it restores
both.

The hosts have no ``ping`` binary (iputils is not installed), so :data:`PING`
is a small ICMP echo client run by this interpreter inside the namespace.
"""

from __future__ import annotations

import sys

import pytest

from tests.waiting import wait_for
from xmpp_ofc import cookies
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.lab import FlowEntry, Host

pytestmark = pytest.mark.ovs

DPID = 0x0B
DISPATCHER = "xmpp_ofc/dispatcher/v1"
L2 = "xmpp_ofc/l2_switch/v1"
L2_FORWARDING = cookies.select_kind(Owner.L2_SWITCH, Kind.FORWARDING)

PING = r"""
import os, socket, struct, sys, time

def checksum(data):
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF

target, count, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ident = os.getpid() & 0xFFFF
replies = 0
with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
    for seq in range(count):
        body = struct.pack("!d", time.time()) + bytes(48)
        header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        packet = struct.pack("!BBHHH", 8, 0, checksum(header + body), ident, seq) + body
        sock.sendto(packet, (target, 0))
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data, (source, _) = sock.recvfrom(2048)
            except socket.timeout:
                break
            icmp = data[(data[0] & 0x0F) * 4 :]
            kind, _, _, rid, rseq = struct.unpack("!BBHHH", icmp[:8])
            if source == target and kind == 0 and rid == ident and rseq == seq:
                replies += 1
                break
print(f"{replies}/{count}")
sys.exit(0 if replies else 1)
"""


def ping(source: Host, target_ip: str, count: int = 3, wait: float = 1.0) -> bool:
    """Whether at least one ICMP echo from ``source`` to ``target_ip`` is answered."""
    result = source.run(
        [sys.executable, "-c", PING, target_ip, str(count), str(wait)],
        timeout=count * wait + 10,
        check=False,
    )
    return result.returncode == 0


def l2_flows(flows: list[FlowEntry]) -> list[FlowEntry]:
    return [flow for flow in flows if cookies.owner_of(flow.cookie) is Owner.L2_SWITCH]


def forwarding_flows(flows: list[FlowEntry]) -> list[FlowEntry]:
    return [flow for flow in flows if cookies.selects(L2_FORWARDING, flow.cookie)]


def port_of(flow: FlowEntry) -> str:
    """The in_port of a flow as OVS prints it (a number, or ``p<n>`` with port names)."""
    return flow.match["in_port"].removeprefix("p")


def all_pairs_ping(hosts: list[Host]) -> dict[tuple[str, str], bool]:
    return {
        (a.name, b.name): ping(a, b.ip) for index, a in enumerate(hosts) for b in hosts[index + 1 :]
    }


def test_learning_switch_through_the_controller(controller_factory, lab):
    # Only the learning switch: the rate limiter's capture flows would add to the dumps.
    controller = controller_factory(env={"XMPP_OFC_DISPATCHER_DISABLED_MODULES": "rate_limiter"})
    topology = lab()
    switch = topology.add_switch("s1", dpid=DPID, controller_port=controller.of_port)
    hosts = [topology.add_host(f"h{n}") for n in (1, 2, 3)]
    spare = topology.add_host("h4")  # where h3's MAC moves to
    topology.start()
    h1, h2, h3 = hosts
    assert switch.ovs.wait_connected(timeout=30), "OVS never connected to the controller"

    # The connect sequence left the base pipeline and the l2 table-miss flow.
    def pipeline_installed():
        return {(flow.table, flow.priority, flow.cookie) for flow in switch.ovs.dump_flows()}

    expected_base = {
        (0, 0, cookies.encode(Owner.DISPATCHER, Kind.TABLE_MISS)),
        (1, 0, cookies.encode(Owner.L2_SWITCH, Kind.TABLE_MISS)),
    }
    assert wait_for(lambda: expected_base <= pipeline_installed(), timeout=20), (
        switch.ovs.dump_flows()
    )

    # Ping between every pair, through the controller.
    results = all_pairs_ping(hosts)
    assert all(results.values()), results

    # The learned flows: table 1, in_port + dl_dst, idle 10 / hard 30, our l2 cookie.
    flows = forwarding_flows(switch.ovs.dump_flows(table=1))
    learned = {(port_of(flow), flow.match.get("dl_dst")) for flow in flows}
    for a in hosts:
        for b in hosts:
            if a is not b:
                assert (str(a.port), b.mac) in learned, (a.name, b.name, flows)
    for flow in flows:
        assert (flow.table, flow.priority) == (1, 100), flow
        assert (flow.idle_timeout, flow.hard_timeout) == (10, 30), flow
        assert flow.cookie == cookies.encode(
            Owner.L2_SWITCH, Kind.FORWARDING, int(flow.match["dl_dst"].replace(":", ""), 16)
        ), flow
    status, table = controller.get(f"{L2}/mac_table/{switch.dpid}")
    assert status == 200
    assert {(entry["mac"], entry["port"]) for entry in table["entries"]} >= {
        (host.mac, host.port) for host in hosts
    }

    # MAC move: h3's address and MAC reappear behind port 4; h3 takes another MAC.
    h3.run(["ip", "addr", "flush", "dev", "eth0"])
    h3.run(["ip", "link", "set", "eth0", "address", "02:00:00:00:00:99"])
    spare.run(["ip", "link", "set", "eth0", "down"])
    spare.run(["ip", "link", "set", "eth0", "address", h3.mac])
    spare.run(["ip", "addr", "flush", "dev", "eth0"])
    spare.run(["ip", "addr", "add", str(h3.interface), "dev", "eth0"])
    spare.run(["ip", "link", "set", "eth0", "up"])
    assert wait_for(lambda: ping(spare, h1.ip), timeout=15), "moved MAC cannot reach h1"
    assert ping(h1, h3.ip), "h1 cannot reach the moved MAC"
    assert ping(h2, h3.ip), "h2 cannot reach the moved MAC"
    towards_moved = [
        flow
        for flow in forwarding_flows(switch.ovs.dump_flows(table=1))
        if flow.match.get("dl_dst") == h3.mac
    ]
    assert towards_moved, "no flow towards the moved MAC"
    assert {flow.actions.removeprefix("output:").removeprefix("p") for flow in towards_moved} == {
        str(spare.port)
    }, towards_moved
    status, table = controller.get(f"{L2}/mac_table/{switch.dpid}")
    assert (h3.mac, spare.port) in {(e["mac"], e["port"]) for e in table["entries"]}
    assert table["stats"]["moves"] >= 1

    # Disable l2_switch on this switch: its flows go, forwarding stops.
    module = f"{DISPATCHER}/switches/{switch.dpid}/modules/l2_switch"
    status, body = controller.patch(module, {"enabled": False})
    assert status == 200 and body["enabled"] is False, body
    assert wait_for(lambda: not l2_flows(switch.ovs.dump_flows()), timeout=10), (
        switch.ovs.dump_flows()
    )
    assert not ping(h1, h2.ip, count=2), "forwarding went on with l2_switch disabled"
    assert not l2_flows(switch.ovs.dump_flows()), "l2 flows came back while disabled"
    base = cookies.encode(Owner.DISPATCHER, Kind.TABLE_MISS)
    assert [flow.cookie for flow in switch.ovs.dump_flows()] == [base]

    # Enable again: the miss flow is restored and ping works.
    status, body = controller.patch(module, {"enabled": True})
    assert status == 200 and body["enabled"] is True, body
    assert wait_for(lambda: expected_base <= pipeline_installed(), timeout=10)
    assert wait_for(lambda: ping(h1, h2.ip), timeout=10), "no forwarding after re-enabling"

    status, view = controller.get(f"{DISPATCHER}/switches/{switch.dpid}")
    assert status == 200 and view["connected"] is True
    assert view["messages"]["in"]["ofpt_packet_in"] > 0
    assert view["messages"]["out"]["ofpt_packet_out"] > 0
    log = controller.log_text()
    assert "Traceback" not in log, log[-6000:]
