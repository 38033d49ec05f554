"""The learning switch's decisions, without Kytos: packet-ins in, commands out."""

import logging

import pytest

from napps.xmpp_ofc.l2_switch.learning import LearningSettings, LearningSwitch
from xmpp_ofc import cookies, pipeline
from xmpp_ofc.commands import DeleteFlows, InstallFlow, PacketOut
from xmpp_ofc.messages import NO_BUFFER, DecodedPacketIn, PortStatus, PortStatusReason
from xmpp_ofc.packet import BROADCAST_MAC, ETH_TYPE_ARP, ETH_TYPE_LLDP
from xmpp_ofc.testing import frames as f

DPID = "00:00:00:00:00:00:00:01"
OTHER_DPID = "00:00:00:00:00:00:00:02"
H1, H2, H3 = "00:00:00:00:00:01", "00:00:00:00:00:02", "00:00:00:00:00:03"


def frame(src, dst, eth_type=0x0800):
    return f.ethernet(dst, src, eth_type, b"payload")


def packet_in(src, dst, in_port, *, dpid=DPID, buffer_id=NO_BUFFER, eth_type=0x0800):
    return DecodedPacketIn.from_frame(
        dpid=dpid,
        in_port=in_port,
        data=frame(src, dst, eth_type),
        cookie=pipeline.l2_table_miss()["cookie"],
        table_id=1,
        buffer_id=buffer_id,
    )


def flood(src, dst, in_port, *, dpid=DPID, eth_type=0x0800):
    return PacketOut(
        dpid=dpid, in_port=in_port, out_port=pipeline.OFPP_FLOOD, data=frame(src, dst, eth_type)
    )


@pytest.fixture
def switch():
    return LearningSwitch(LearningSettings(max_macs_per_switch=8, max_macs_per_port=4))


# --- the seed's two cases ------------------------------------------------------------


def test_seed_case_a_packet_in_yields_a_packet_out(switch):
    assert switch.handle_packet_in(packet_in(H1, H2, 1), now=0) == [flood(H1, H2, 1)]


def test_seed_case_reverse_frame_seen_yields_a_flow_mod(switch):
    switch.handle_packet_in(packet_in(H1, H2, 1), now=0)
    commands = switch.handle_packet_in(packet_in(H2, H1, 2), now=1)
    assert commands == [
        InstallFlow(
            DPID,
            pipeline.l2_forwarding(
                in_port=2, eth_dst=H1, out_port=1, idle_timeout=10, hard_timeout=30
            ),
        ),
        PacketOut(dpid=DPID, in_port=2, out_port=1, data=frame(H2, H1)),
    ]
    flow = commands[0].flow
    assert (flow["table_id"], flow["priority"]) == (1, 100)
    assert (flow["idle_timeout"], flow["hard_timeout"]) == (10, 30), "both timeouts (seed bug)"
    assert cookies.owner_of(flow["cookie"]) is cookies.Owner.L2_SWITCH


# --- flooding rules ------------------------------------------------------------------


def test_broadcast_and_multicast_destinations_flood_even_when_known(switch):
    assert switch.handle_packet_in(packet_in(H1, BROADCAST_MAC, 1, eth_type=ETH_TYPE_ARP), 0) == [
        flood(H1, BROADCAST_MAC, 1, eth_type=ETH_TYPE_ARP)
    ]
    mcast = "01:00:5e:00:00:fb"
    assert switch.handle_packet_in(packet_in(H2, mcast, 2), 0) == [flood(H2, mcast, 2)]
    assert switch.where_is(DPID, H1, 0) == 1, "the broadcast's source was learned"


@pytest.mark.parametrize("dst", ["01:80:c2:00:00:00", "01:80:c2:00:00:0e", "01:80:c2:00:00:03"])
def test_link_local_control_frames_are_never_flooded_nor_learned(switch, dst):
    assert switch.handle_packet_in(packet_in(H1, dst, 1), 0) == []
    assert switch.where_is(DPID, H1, 0) is None


def test_lldp_to_any_destination_is_never_flooded(switch):
    assert switch.handle_packet_in(packet_in(H1, BROADCAST_MAC, 1, eth_type=ETH_TYPE_LLDP), 0) == []


def test_destination_on_the_ingress_port_is_dropped_not_reflected(switch):
    switch.handle_packet_in(packet_in(H2, H3, 1), 0)
    assert switch.handle_packet_in(packet_in(H1, H2, 1), 1) == []


def test_buffered_packet_in_gets_a_packet_out_by_buffer_without_data(switch):
    commands = switch.handle_packet_in(packet_in(H1, H2, 1, buffer_id=77), 0)
    assert commands == [PacketOut(dpid=DPID, in_port=1, out_port=pipeline.OFPP_FLOOD, buffer_id=77)]
    switch.handle_packet_in(packet_in(H2, H1, 2), 1)
    commands = switch.handle_packet_in(packet_in(H1, H2, 1, buffer_id=78), 2)
    assert commands[-1] == PacketOut(dpid=DPID, in_port=1, out_port=2, buffer_id=78)
    assert commands[-1].data == b""


def test_frame_without_ethernet_header_is_dropped(switch):
    bad = DecodedPacketIn.from_frame(dpid=DPID, in_port=1, data=b"\x01\x02")
    assert switch.handle_packet_in(bad, 0) == []


def test_multicast_or_zero_source_is_not_learned(switch):
    switch.handle_packet_in(packet_in("01:00:5e:00:00:01", H2, 1), 0)
    switch.handle_packet_in(packet_in("00:00:00:00:00:00", H2, 1), 0)
    assert switch.mac_table(DPID, 0) == []


# --- aging, moves, switches ----------------------------------------------------------


def test_entries_age_out_and_the_destination_is_flooded_again():
    switch = LearningSwitch(LearningSettings(mac_aging=60))
    switch.handle_packet_in(packet_in(H1, H2, 1), now=0)
    assert switch.where_is(DPID, H1, 59) == 1
    assert switch.where_is(DPID, H1, 61) is None
    assert switch.handle_packet_in(packet_in(H2, H1, 2), now=62)[-1].out_port == (
        pipeline.OFPP_FLOOD
    )


def test_traffic_refreshes_an_entry():
    switch = LearningSwitch(LearningSettings(mac_aging=60))
    switch.handle_packet_in(packet_in(H1, H2, 1), now=0)
    switch.handle_packet_in(packet_in(H1, H2, 1), now=50)
    assert switch.where_is(DPID, H1, 100) == 1


def test_expire_deletes_flows_only_when_they_could_outlive_the_entry():
    short_flows = LearningSwitch(LearningSettings(mac_aging=60, hard_timeout=30))
    short_flows.handle_packet_in(packet_in(H1, H2, 1), now=0)
    assert short_flows.expire(now=100) == []
    assert short_flows.mac_table(DPID, 100) == []

    idle_only = LearningSwitch(LearningSettings(mac_aging=60, idle_timeout=10, hard_timeout=0))
    idle_only.handle_packet_in(packet_in(H1, H2, 1), now=0)
    assert idle_only.expire(now=30) == []
    assert idle_only.expire(now=100) == [DeleteFlows(DPID, pipeline.l2_delete_towards(H1))]


def test_a_moved_mac_is_relearned_and_flows_towards_the_old_port_deleted(switch):
    switch.handle_packet_in(packet_in(H1, H2, 1), 0)
    commands = switch.handle_packet_in(packet_in(H1, H2, 5), 1)
    assert commands[0] == DeleteFlows(DPID, pipeline.l2_delete_towards(H1))
    assert switch.where_is(DPID, H1, 1) == 5
    assert switch.stats(DPID).moves == 1
    assert switch.handle_packet_in(packet_in(H2, H1, 2), 2)[1].out_port == 5


def test_switches_learn_independently(switch):
    switch.handle_packet_in(packet_in(H1, H2, 1), 0)
    assert switch.where_is(OTHER_DPID, H1, 0) is None
    commands = switch.handle_packet_in(packet_in(H2, H1, 2, dpid=OTHER_DPID), 0)
    assert commands == [flood(H2, H1, 2, dpid=OTHER_DPID)]


def test_restore_installs_the_table_miss_and_starts_from_an_empty_table(switch):
    switch.handle_packet_in(packet_in(H1, H2, 1), 0)
    assert switch.restore(DPID) == [InstallFlow(DPID, pipeline.l2_table_miss())]
    assert switch.mac_table(DPID, 0) == []


def test_flush_forgets_macs_and_deletes_forwarding_flows_of_that_switch_only(switch):
    switch.handle_packet_in(packet_in(H1, H2, 1), 0)
    switch.handle_packet_in(packet_in(H1, H2, 1, dpid=OTHER_DPID), 0)
    assert switch.flush(DPID) == [DeleteFlows(DPID, pipeline.l2_delete_forwarding())]
    assert switch.mac_table(DPID, 0) == []
    assert switch.where_is(OTHER_DPID, H1, 0) == 1


def test_forget_switch_drops_its_state(switch):
    switch.handle_packet_in(packet_in(H1, H2, 1), 0)
    switch.forget_switch(DPID)
    assert DPID not in switch.switches()
    assert switch.stats(DPID).learned == 0


def test_port_down_forgets_its_macs_and_deletes_flows_towards_them(switch):
    switch.handle_packet_in(packet_in(H1, H2, 1), 0)
    switch.handle_packet_in(packet_in(H3, H2, 2), 0)
    link_down = PortStatus(dpid=DPID, port_no=1, reason=PortStatusReason.MODIFY, link_down=True)
    assert switch.handle_port_status(link_down) == [
        DeleteFlows(DPID, pipeline.l2_delete_towards(H1))
    ]
    assert switch.where_is(DPID, H1, 0) is None
    assert switch.where_is(DPID, H3, 0) == 2
    link_up = PortStatus(dpid=DPID, port_no=2, reason=PortStatusReason.MODIFY)
    assert switch.handle_port_status(link_up) == []
    deleted = PortStatus(dpid=DPID, port_no=2, reason=PortStatusReason.DELETE)
    assert len(switch.handle_port_status(deleted)) == 1


# --- bounds (MAC flooding) -----------------------------------------------------------


def random_macs(count, start=0x10):
    return [
        f"02:00:00:00:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}" for n in range(start, start + count)
    ]


def test_per_port_bound_stops_learning_counts_and_logs_once(switch, caplog):
    caplog.set_level(logging.WARNING)
    for mac in random_macs(50):
        commands = switch.handle_packet_in(packet_in(mac, H2, 3), 0)
        assert commands[-1].out_port == pipeline.OFPP_FLOOD, "frames are still forwarded"
    stats = switch.stats(DPID)
    assert stats.learned == 4
    assert stats.refused == 46
    assert stats.refused_per_port == {3: 46}
    assert len([r for r in caplog.records if "MAC table full" in r.message]) == 1
    # Another port still learns.
    switch.handle_packet_in(packet_in(H1, H2, 4), 0)
    assert switch.where_is(DPID, H1, 0) == 4


def test_per_switch_bound_holds_across_ports(switch):
    macs = random_macs(40)
    for index, mac in enumerate(macs):
        switch.handle_packet_in(packet_in(mac, H2, 1 + index % 10), 0)
    assert switch.stats(DPID).learned == 8
    assert len(switch.mac_table(DPID, 0)) == 8
    assert switch.stats(DPID).refused == 32


def test_room_comes_back_when_entries_age_out():
    switch = LearningSwitch(LearningSettings(max_macs_per_switch=2, mac_aging=10))
    for mac in random_macs(3):
        switch.handle_packet_in(packet_in(mac, H2, 1), 0)
    assert switch.stats(DPID).learned == 2
    switch.handle_packet_in(packet_in(H1, H2, 1), 20)
    assert switch.where_is(DPID, H1, 20) == 1


def test_known_macs_keep_refreshing_while_the_table_is_full(switch):
    macs = random_macs(4)
    for mac in macs:
        switch.handle_packet_in(packet_in(mac, H2, 3), 0)
    switch.handle_packet_in(packet_in(H1, H2, 3), 0)  # refused
    switch.handle_packet_in(packet_in(macs[0], H2, 3), 250)
    assert switch.where_is(DPID, macs[0], 500) == 3


# --- settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"idle_timeout": -1},
        {"hard_timeout": 70000},
        {"idle_timeout": 0, "hard_timeout": 0},
        {"idle_timeout": 1.5},
        {"mac_aging": 0},
        {"max_macs_per_switch": 0},
        {"max_macs_per_port": True},
        {"priority": 0},
    ],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        LearningSettings(**kwargs)


def test_timeouts_are_configurable():
    switch = LearningSwitch(LearningSettings(idle_timeout=5, hard_timeout=60))
    switch.handle_packet_in(packet_in(H1, H2, 1), 0)
    flow = switch.handle_packet_in(packet_in(H2, H1, 2), 0)[0].flow
    assert (flow["idle_timeout"], flow["hard_timeout"]) == (5, 60)
