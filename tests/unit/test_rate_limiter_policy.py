"""RateLimiter: capture -> monitor -> poll -> block -> unblock, without Kytos."""

from __future__ import annotations

import pytest
from test_rate_limiter_helpers import DPID, at, packet_in, removed, stats, stats_entry

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.limiter import (
    InvalidRequestError,
    MeterSupport,
    NotBlockedError,
    RateLimiter,
    UnknownSwitchError,
    WhitelistedError,
)
from napps.xmpp_ofc.rate_limiter.settings_model import LimiterSettings, SettingsError
from xmpp_ofc import cookies
from xmpp_ofc.commands import DeleteFlows, InstallFlow, ModifyMeter, RequestFlowStats
from xmpp_ofc.cookies import Kind
from xmpp_ofc.messages import FlowRemovedReason
from xmpp_ofc.openflow.meter import OFPM_ALL
from xmpp_ofc.packet import TCP_ACK, TCP_RST

ALICE = Client.of("10.0.0.7", 40001)
BOB = Client.of("10.0.0.8", 40002)
CHAT_BYTES = 66 + 300  # one data packet carrying a ~300-byte stanza
ACK_BYTES = 66


def kinds(commands: list) -> list[tuple[str, Kind | str | None]]:
    """(command type, flow kind or meter command) of each command, in order."""
    result = []
    for command in commands:
        if isinstance(command, InstallFlow | DeleteFlows):
            kind = cookies.decode(command.flow["cookie"]).kind
            result.append((type(command).__name__, kind))
        elif isinstance(command, ModifyMeter):
            result.append(("ModifyMeter", command.command))
        else:
            result.append((type(command).__name__, None))
    return result


def monitored_limiter(*clients: Client, **settings) -> RateLimiter:
    """A limiter monitoring ``clients`` since t=0.

    ``sustain_s`` 0 unless given: these tests are about what follows a verdict
    (flows, state, history); when a verdict comes is test_rate_limiter_shaper.py's.
    """
    settings.setdefault("sustain_s", 0)
    limiter = RateLimiter(LimiterSettings(**settings))
    limiter.restore(DPID, at(0))
    for client in clients:
        limiter.handle_packet_in(packet_in(client.ip, client.port), at(0))
    return limiter


def poll_twice(limiter: RateLimiter, client: Client, packets: int, octets: int, window: float = 60):
    """A baseline poll at t=10 and one ``window`` later with the given increments."""
    limiter.handle_flow_stats(stats(stats_entry(client, 5, 500, 10.0)), at(10))
    return limiter.handle_flow_stats(
        stats(stats_entry(client, 5 + packets, 500 + octets, 10.0 + window)), at(10 + window)
    )


# --- capture and monitor --------------------------------------------------------------


def test_new_connection_gets_one_monitor_flow() -> None:
    limiter = monitored_limiter()
    commands = limiter.handle_packet_in(packet_in(ALICE.ip, ALICE.port), at(1))
    assert kinds(commands) == [("InstallFlow", Kind.MONITOR)]
    flow = commands[0].flow
    assert flow["match"]["nw_src"] == ALICE.ip and flow["match"]["tp_src"] == ALICE.port
    assert flow["idle_timeout"] == LimiterSettings().monitor_idle_timeout_s
    # Copies queued before the monitor took effect change nothing.
    assert limiter.handle_packet_in(packet_in(ALICE.ip, ALICE.port, flags=TCP_ACK), at(1.2)) == []
    assert [c["ip"] for c in limiter.monitored(DPID)] == [ALICE.ip]


def test_capture_copy_long_after_install_reinstalls_the_missing_monitor() -> None:
    limiter = monitored_limiter(ALICE)
    commands = limiter.handle_packet_in(packet_in(ALICE.ip, ALICE.port, flags=TCP_ACK), at(30))
    assert kinds(commands) == [("InstallFlow", Kind.MONITOR)]


def test_ipv6_client_is_monitored_and_polled_back() -> None:
    limiter = monitored_limiter()
    client = Client.of("2001:db8::42", 50000)
    commands = limiter.handle_packet_in(packet_in(client.ip, client.port), at(1))
    assert commands[0].flow["match"]["ipv6_src"] == client.ip
    poll_twice(limiter, client, 10, 10 * 86)
    [row] = limiter.monitored()
    assert row["packets_per_min"] == pytest.approx(10.0)


@pytest.mark.parametrize(
    "message",
    [
        packet_in(ALICE.ip, ALICE.port, server_port=80),  # not an XMPP port
        packet_in(ALICE.ip, ALICE.port, flags=TCP_RST),  # connection is over
    ],
)
def test_packets_that_need_no_monitor_are_ignored(message) -> None:
    assert monitored_limiter().handle_packet_in(message, at(1)) == []


def test_packet_in_of_another_flow_kind_is_ignored() -> None:
    message = packet_in(ALICE.ip, ALICE.port)
    foreign = type(message)(**{**message.__dict__, "cookie": flows.monitor_cookie(ALICE)})
    assert monitored_limiter().handle_packet_in(foreign, at(1)) == []


# --- polling ----------------------------------------------------------------------


def test_one_cookie_filtered_request_per_switch_per_interval() -> None:
    limiter = monitored_limiter(ALICE, BOB, poll_interval_s=10)
    [request] = limiter.poll_requests(at(1))
    assert request == RequestFlowStats(
        DPID, *cookies.select_kind(cookies.Owner.RATE_LIMITER, Kind.MONITOR), table_id=0
    )
    assert request.cookie_mask == cookies.OWNER_KIND_MASK  # not the seed's mask of 0
    assert limiter.poll_requests(at(5)) == []
    assert len(limiter.poll_requests(at(11))) == 1


def test_switch_without_clients_or_down_is_not_polled() -> None:
    limiter = monitored_limiter()
    assert limiter.poll_requests(at(1)) == []
    limiter.handle_packet_in(packet_in(ALICE.ip, ALICE.port), at(1))
    limiter.switch_down(DPID)
    assert limiter.poll_requests(at(20)) == []


# --- the policy --------------------------------------------------------------------


def test_sender_over_threshold_is_blocked_and_its_monitor_deleted() -> None:
    limiter = monitored_limiter(ALICE)
    commands = poll_twice(limiter, ALICE, 600, 600 * CHAT_BYTES)
    assert kinds(commands) == [("InstallFlow", Kind.BLOCK), ("DeleteFlows", Kind.MONITOR)]
    block_flow = commands[0].flow
    assert block_flow["hard_timeout"] == LimiterSettings().block_duration_s
    assert block_flow["match"]["tp_src"] == ALICE.port and block_flow["instructions"] == []
    [blocked] = limiter.blocked(DPID)
    assert (blocked["ip"], blocked["port"], blocked["manual"]) == (ALICE.ip, ALICE.port, False)
    assert blocked["expires"] - blocked["since"] == LimiterSettings().block_duration_s
    assert limiter.monitored() == []
    assert limiter.history()[-1]["kind"] == "block"
    assert limiter.history()[-1]["packet_count"] == 605
    assert limiter.status()["blocks_total"] == {"auto": 1}


def test_heavy_receiver_sending_only_acks_is_not_blocked() -> None:
    limiter = monitored_limiter(ALICE)
    assert poll_twice(limiter, ALICE, 600, 600 * ACK_BYTES) == []
    [row] = limiter.monitored()
    assert row["packets_per_min"] == pytest.approx(600)
    assert row["payload_bytes_per_min"] == 0
    assert limiter.blocked() == []


def test_recreated_flow_restarting_its_counters_is_not_blocked() -> None:
    limiter = monitored_limiter(ALICE)
    limiter.handle_flow_stats(stats(stats_entry(ALICE, 5000, 5_000_000, 100.0)), at(10))
    # Re-created: small counters, short duration. No rate, no block.
    assert limiter.handle_flow_stats(stats(stats_entry(ALICE, 3, 300, 2.0)), at(20)) == []
    assert limiter.blocked() == []


def test_whitelisted_client_is_monitored_flagged_once_and_never_blocked() -> None:
    limiter = monitored_limiter(ALICE, whitelist=["10.0.0.0/24"])
    assert poll_twice(limiter, ALICE, 600, 600 * CHAT_BYTES) == []
    limiter.handle_flow_stats(
        stats(stats_entry(ALICE, 1205, 500 + 1200 * CHAT_BYTES, 130.0)), at(130)
    )
    flags = [e for e in limiter.history() if e["kind"] == "flag"]
    assert len(flags) == 1 and "whitelisted" in flags[0]["reason"]
    assert limiter.monitored()[0]["over_threshold"] is True
    with pytest.raises(WhitelistedError):
        limiter.block(DPID, ALICE.ip, ALICE.port, duration=10, reason="", now=at(131))


def test_monitor_only_mode_flags_without_blocking() -> None:
    limiter = monitored_limiter(ALICE, mode="monitor")
    assert poll_twice(limiter, ALICE, 600, 600 * CHAT_BYTES) == []
    assert limiter.status()["flags_total"] == 1
    assert limiter.blocked() == []


def test_per_ip_aggregate_blocks_the_address_on_every_xmpp_port() -> None:
    clients = [Client.of("10.0.0.9", port) for port in (41001, 41002, 41003)]
    limiter = monitored_limiter(
        *clients, per_ip_aggregate=True, aggregate_messages_per_s=2, xmpp_ports=[5222, 5223]
    )
    limiter.handle_flow_stats(stats(*(stats_entry(c, 0, 0, 10.0) for c in clients)), at(10))
    # 50 chat messages/min each: every connection within its allowance, the address
    # at 2.5 msg/s.
    commands = limiter.handle_flow_stats(
        stats(*(stats_entry(c, 50, 50 * CHAT_BYTES, 70.0) for c in clients)), at(70)
    )
    installs = [c.flow for c in commands if isinstance(c, InstallFlow)]
    assert [f["match"]["tp_dst"] for f in installs] == [5222, 5223]
    assert all("tp_src" not in f["match"] for f in installs)
    assert sum(isinstance(c, DeleteFlows) for c in commands) == 3  # the monitors
    [blocked] = limiter.blocked()
    assert blocked["port"] is None and "3 connections" in blocked["reason"]
    # A new connection from the address is covered by the block: no monitor.
    assert limiter.handle_packet_in(packet_in("10.0.0.9", 41004), at(70.5)) == []


def test_aggregate_is_off_by_default() -> None:
    clients = [Client.of("10.0.0.9", port) for port in (41001, 41002, 41003)]
    limiter = monitored_limiter(*clients)
    limiter.handle_flow_stats(stats(*(stats_entry(c, 0, 0, 10.0) for c in clients)), at(10))
    commands = limiter.handle_flow_stats(
        stats(*(stats_entry(c, 90, 90 * CHAT_BYTES, 70.0) for c in clients)), at(70)
    )
    assert commands == []


def test_unknown_monitor_flow_in_a_reply_is_adopted() -> None:
    limiter = monitored_limiter()
    limiter.handle_flow_stats(stats(stats_entry(BOB, 10, 1000, 30.0)), at(10))
    assert [(r["ip"], r["port"]) for r in limiter.monitored()] == [(BOB.ip, BOB.port)]


def test_entries_of_other_kinds_in_a_reply_are_skipped() -> None:
    limiter = monitored_limiter()
    entry = stats_entry(BOB, 10, 1000, 30.0)
    capture = type(entry)(**{**entry.__dict__, "cookie": flows.capture_flows([5222])[0]["cookie"]})
    assert limiter.handle_flow_stats(stats(capture), at(10)) == []
    assert limiter.monitored() == []


# --- unblock ------------------------------------------------------------------------


def blocked_limiter() -> RateLimiter:
    limiter = monitored_limiter(ALICE)
    poll_twice(limiter, ALICE, 600, 600 * CHAT_BYTES)  # blocked at t=70 for 60 s
    return limiter


def test_block_expiry_flow_removed_unblocks_and_counts() -> None:
    limiter = blocked_limiter()
    [block_flow] = flows.block_flows(ALICE, [5222], 60)
    commands = limiter.handle_flow_removed(
        removed(block_flow, FlowRemovedReason.HARD_TIMEOUT, 60), at(130)
    )
    assert kinds(commands) == [("DeleteFlows", Kind.BLOCK)]
    assert limiter.blocked() == []
    assert limiter.status()["unblocks_total"] == {"expired": 1}
    assert limiter.history()[-1]["kind"] == "unblock"
    # The client's next packet is monitored again.
    assert kinds(limiter.handle_packet_in(packet_in(ALICE.ip, ALICE.port), at(131))) == [
        ("InstallFlow", Kind.MONITOR)
    ]


def test_stale_and_delete_removals_do_not_unblock() -> None:
    limiter = blocked_limiter()
    [block_flow] = flows.block_flows(ALICE, [5222], 60)
    # A flow older than our install (an earlier incarnation) is stale.
    assert (
        limiter.handle_flow_removed(
            removed(block_flow, FlowRemovedReason.HARD_TIMEOUT, 500), at(80)
        )
        == []
    )
    assert (
        limiter.handle_flow_removed(removed(block_flow, FlowRemovedReason.DELETE, 5), at(75)) == []
    )
    assert len(limiter.blocked()) == 1


def test_manual_unblock_and_its_errors() -> None:
    limiter = blocked_limiter()
    with pytest.raises(UnknownSwitchError):
        limiter.unblock("00:00:00:00:00:00:00:99", ALICE.ip, ALICE.port, at(80))
    with pytest.raises(NotBlockedError):
        limiter.unblock(DPID, BOB.ip, BOB.port, at(80))
    with pytest.raises(InvalidRequestError):
        limiter.unblock(DPID, "not-an-ip", 1, at(80))
    commands = limiter.unblock(DPID, ALICE.ip, ALICE.port, at(80))
    assert kinds(commands) == [("DeleteFlows", Kind.BLOCK)]
    assert limiter.status()["unblocks_total"] == {"manual": 1}
    with pytest.raises(NotBlockedError):
        limiter.unblock(DPID, ALICE.ip, ALICE.port, at(81))


def test_manual_block_of_an_address_and_its_errors() -> None:
    limiter = monitored_limiter(ALICE, BOB, xmpp_ports=[5222, 5269])
    with pytest.raises(UnknownSwitchError):
        limiter.block("nope", ALICE.ip, None, duration=10, reason="x", now=at(1))
    for bad in (0, 70_000, "10", True):
        with pytest.raises(InvalidRequestError, match="duration"):
            limiter.block(DPID, ALICE.ip, None, duration=bad, reason="x", now=at(1))
    with pytest.raises(InvalidRequestError, match="port"):
        limiter.block(DPID, ALICE.ip, 0, duration=10, reason="x", now=at(1))
    assert limiter.blocked() == []
    record, commands, replaced = limiter.block(
        DPID, ALICE.ip, None, duration=30, reason="abuse", now=at(1)
    )
    assert not replaced
    assert record.manual and record.port is None and record.expires == at(1).wall + 30
    assert kinds(commands) == [
        ("InstallFlow", Kind.BLOCK),
        ("InstallFlow", Kind.BLOCK),
        ("DeleteFlows", Kind.MONITOR),
    ]
    assert [c["ip"] for c in limiter.monitored()] == [BOB.ip]


def test_blocking_again_extends_the_block_without_counting_a_new_one() -> None:
    limiter = monitored_limiter(ALICE, BOB)
    first, _, replaced = limiter.block(
        DPID, ALICE.ip, ALICE.port, duration=30, reason="first", now=at(1)
    )
    assert not replaced
    again, commands, replaced = limiter.block(
        DPID, ALICE.ip, ALICE.port, duration=100, reason="second", now=at(11)
    )
    assert replaced
    assert again.since == first.since  # the same block, running longer
    assert again.expires == at(11).wall + 100 and again.reason == "second"
    # the drop flow is sent again with the new hard_timeout (an add replaces it on the switch)
    assert [c.flow["hard_timeout"] for c in commands if isinstance(c, InstallFlow)] == [100]
    assert limiter.status()["blocks_total"] == {"manual": 1}
    (listed,) = limiter.blocked()
    assert (listed["reason"], listed["expires"]) == ("second", at(11).wall + 100)
    assert [(e["kind"], e["reason"]) for e in limiter.history()] == [
        ("block", "first"),
        ("extend", "second"),
    ]


def test_timer_ends_blocks_whose_expiry_was_missed() -> None:
    limiter = blocked_limiter()
    limiter.switch_down(DPID)
    assert limiter.tick(at(131)) == []  # within the grace period
    limiter.tick(at(140))
    assert limiter.blocked() == []
    assert limiter.status()["unblocks_total"] == {"expired": 1}


def test_idle_monitor_removal_forgets_the_client() -> None:
    limiter = monitored_limiter(ALICE)
    flow = flows.monitor_flow(ALICE, 5222, idle_timeout=120)
    limiter.handle_flow_removed(removed(flow, FlowRemovedReason.IDLE_TIMEOUT, 150), at(150))
    assert limiter.monitored() == []


# --- switch lifecycle --------------------------------------------------------------


def test_restore_reinstalls_capture_monitors_and_blocks_with_remaining_time() -> None:
    limiter = blocked_limiter()  # blocked at t=70 until t=130
    limiter.handle_packet_in(packet_in(BOB.ip, BOB.port), at(71))
    limiter.switch_down(DPID)
    commands = limiter.restore(DPID, at(100))
    assert kinds(commands) == [
        ("InstallFlow", Kind.CAPTURE),
        ("InstallFlow", Kind.CAPTURE),
        ("InstallFlow", Kind.MONITOR),
        ("InstallFlow", Kind.BLOCK),
    ]
    assert commands[-1].flow["hard_timeout"] == 30


def test_restore_ends_blocks_that_expired_while_away() -> None:
    limiter = blocked_limiter()
    limiter.switch_down(DPID)
    commands = limiter.restore(DPID, at(200))
    assert ("InstallFlow", Kind.BLOCK) not in kinds(commands)
    assert limiter.blocked() == []
    assert "expired while away" in limiter.history()[-1]["reason"]


def test_stop_forgets_the_switch() -> None:
    limiter = blocked_limiter()
    limiter.stop(DPID, at(80))
    assert limiter.known_switches() == []
    assert limiter.status()["unblocks_total"] == {"module_stopped": 1}


# --- meters ------------------------------------------------------------------------

METERS = MeterSupport(max_meter=2, band_drop=True, pps=True)
#: The capture meter (the switch's highest id) and the capture flows through it.
CAPTURE_METERED = [
    ("ModifyMeter", "delete"),
    ("ModifyMeter", "add"),
    ("InstallFlow", Kind.CAPTURE),
    ("InstallFlow", Kind.CAPTURE),
]


def test_meter_mode_without_support_falls_back_to_block_and_says_so() -> None:
    limiter = monitored_limiter(ALICE, mode="meter")
    status = limiter.status()["switches"][DPID]
    assert status["mode"] == "block" and "not reported" in status["mode_note"]
    limiter.set_meter_support(DPID, MeterSupport(0, False, True), at(1))
    assert "max_meter is 0" in limiter.status()["switches"][DPID]["mode_note"]
    commands = poll_twice(limiter, ALICE, 600, 600 * CHAT_BYTES)
    assert ("InstallFlow", Kind.BLOCK) in kinds(commands)


def test_meter_mode_polices_with_meters_deleted_before_replay() -> None:
    limiter = monitored_limiter(ALICE, mode="meter")
    commands = limiter.set_meter_support(DPID, METERS, at(1))
    assert commands[0] == ModifyMeter(DPID, "delete", OFPM_ALL)
    assert kinds(commands)[1:] == [
        *CAPTURE_METERED,
        ("ModifyMeter", "add"),
        ("InstallFlow", Kind.MONITOR),
    ]
    assert commands[6].flow["instructions"][0] == {"instruction_type": "meter", "meter_id": 1}
    assert commands[5].rate_pps == 2
    # A metered flooder is flagged, not blocked.
    assert poll_twice(limiter, ALICE, 600, 600 * CHAT_BYTES) == []
    assert limiter.status()["switches"][DPID]["mode"] == "meter"
    # Reconnect: meters deleted first, then replayed with the monitors.
    limiter.switch_down(DPID)
    limiter.restore(DPID, at(100))
    replay = limiter.set_meter_support(DPID, METERS, at(101))
    assert replay[0] == ModifyMeter(DPID, "delete", OFPM_ALL)


def test_meter_ids_run_out_and_those_clients_fall_back_to_block() -> None:
    limiter = monitored_limiter(mode="meter")
    # Two meter ids: the capture meter takes 2, clients share 1.
    limiter.set_meter_support(DPID, MeterSupport(2, True, True), at(0))
    first = limiter.handle_packet_in(packet_in(ALICE.ip, ALICE.port), at(1))
    second = limiter.handle_packet_in(packet_in(BOB.ip, BOB.port), at(1))
    assert kinds(first) == [("ModifyMeter", "add"), ("InstallFlow", Kind.MONITOR)]
    assert kinds(second) == [("InstallFlow", Kind.MONITOR)]
    assert limiter.status()["meter_fallbacks"] == 1
    commands = poll_twice(limiter, BOB, 600, 600 * CHAT_BYTES)
    assert ("InstallFlow", Kind.BLOCK) in kinds(commands)
    # Forgetting the metered client frees its meter on the switch.
    flow = flows.monitor_flow(ALICE, 5222, idle_timeout=120, meter_id=1)
    freed = limiter.handle_flow_removed(removed(flow, FlowRemovedReason.IDLE_TIMEOUT, 200), at(200))
    assert freed == [ModifyMeter(DPID, "delete", 1)]


def test_leaving_meter_mode_readds_monitors_before_deleting_meters() -> None:
    limiter = monitored_limiter(ALICE, mode="meter")
    limiter.set_meter_support(DPID, METERS, at(1))
    _, commands = limiter.update_settings({"mode": "block"}, at(2))
    assert kinds(commands) == [
        ("InstallFlow", Kind.MONITOR),
        ("ModifyMeter", "delete"),
        *CAPTURE_METERED,
    ]
    assert commands[0].flow["instructions"] == [{"instruction_type": "goto_table", "table_id": 1}]
    assert commands[1].meter_id == OFPM_ALL


def test_meter_rate_change_modifies_meters_in_place() -> None:
    limiter = monitored_limiter(ALICE, mode="meter")
    limiter.set_meter_support(DPID, METERS, at(1))
    _, commands = limiter.update_settings({"meter_rate_pps": 7}, at(2))
    assert commands == [ModifyMeter(DPID, "modify", 1, rate_pps=7, burst=50)]


# --- settings changes ----------------------------------------------------------------


def test_port_change_reinstalls_capture_and_drops_monitors_of_removed_ports() -> None:
    limiter = monitored_limiter(ALICE)
    limiter.handle_packet_in(packet_in(BOB.ip, BOB.port, server_port=5223), at(1))  # not XMPP
    _, commands = limiter.update_settings({"xmpp_ports": [5223]}, at(2))
    assert kinds(commands) == [
        ("DeleteFlows", Kind.CAPTURE),
        ("InstallFlow", Kind.CAPTURE),
        ("InstallFlow", Kind.CAPTURE),
        ("DeleteFlows", Kind.MONITOR),
    ]
    assert all(c.flow["match"]["tp_dst"] == 5223 for c in commands[1:3])
    assert limiter.monitored() == []


def test_whitelisting_a_blocked_address_lifts_its_block() -> None:
    limiter = blocked_limiter()
    _, commands = limiter.update_settings({"whitelist": ["10.0.0.7"]}, at(80))
    assert kinds(commands) == [("DeleteFlows", Kind.BLOCK)]
    assert limiter.blocked() == []
    assert limiter.status()["unblocks_total"] == {"whitelisted": 1}


def test_refused_settings_patch_changes_nothing() -> None:
    limiter = blocked_limiter()
    before = limiter.settings
    with pytest.raises(SettingsError, match="message_burst"):
        limiter.update_settings({"message_burst": -5, "mode": "monitor"}, at(80))
    assert limiter.settings is before


def test_new_allowance_applies_at_the_next_evaluation() -> None:
    limiter = monitored_limiter(ALICE)
    limiter.update_settings({"message_rate_per_s": 20}, at(1))
    assert poll_twice(limiter, ALICE, 600, 600 * CHAT_BYTES) == []
    limiter.update_settings({"message_rate_per_s": 5}, at(71))
    again = stats_entry(ALICE, 1205, 500 + 1200 * CHAT_BYTES, 130.0)
    assert kinds(limiter.handle_flow_stats(stats(again), at(130)))[0] == ("InstallFlow", Kind.BLOCK)


def test_history_is_bounded() -> None:
    limiter = RateLimiter(LimiterSettings(), history_limit=3)
    limiter.restore(DPID, at(0))
    for index in range(5):
        limiter.block(DPID, f"10.1.0.{index + 1}", None, duration=5, reason="x", now=at(1))
    assert len(limiter.history()) == 3
    assert limiter.history(limit=1)[0]["ip"] == "10.1.0.5"


def test_capture_copy_cut_at_max_len_is_enough_to_monitor() -> None:
    full = packet_in(ALICE.ip, ALICE.port).packet.raw + b"x" * 1400
    cut = type(packet_in(ALICE.ip, ALICE.port)).from_frame(
        dpid=DPID,
        in_port=2,
        data=full[: flows.CAPTURE_MAX_LEN],
        reason=1,
        cookie=flows.capture_flows([5222])[0]["cookie"],
        total_len=len(full),
    )
    commands = monitored_limiter().handle_packet_in(cut, at(1))
    assert kinds(commands) == [("InstallFlow", Kind.MONITOR)]


@pytest.mark.parametrize(
    ("ip", "why"),
    [
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "zone index"),
        ("224.0.0.5", "multicast"),
        ("ff02::1", "multicast"),
    ],
)
def test_manual_block_of_an_address_that_is_never_a_client_is_refused(ip: str, why: str) -> None:
    """Issue 13: such blocks were accepted and installed a useless flow."""
    limiter = monitored_limiter(ALICE)
    for port in (None, 5000):
        with pytest.raises(InvalidRequestError, match=why):
            limiter.block(DPID, ip, port, duration=10, reason="x", now=at(1))
    assert limiter.blocked() == []
