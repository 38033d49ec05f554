"""The switch refuses a flow of the rate limiter (OFPT_ERROR, e.g. table full).

The limiter must then stop claiming what is not true on the switch: a refused
drop flow means "not blocked" (and a monitored client again), a refused monitor
means "not monitored"; retries back off instead of hammering a full table.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from test_rate_limiter_helpers import DPID, at, packet_in, stats, stats_entry

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.limiter import RateLimiter
from napps.xmpp_ofc.rate_limiter.settings_model import LimiterSettings
from xmpp_ofc import cookies, pipeline
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.flow_errors import FlowError, flow_error_for

ALICE = Client.of("10.0.0.7", 40001)
CHAT_BYTES = 66 + 300


def table_full(flow: dict, command: str = "add") -> FlowError:
    content = {
        "datapath": SimpleNamespace(dpid=DPID),
        "flow": flow,
        "error_command": command,
        "error_type": 5,
        "error_code": 1,
        "error_type_name": "OFPET_FLOW_MOD_FAILED",
        "error_code_name": "OFPFMFC_TABLE_FULL",
    }
    error = flow_error_for(Owner.RATE_LIMITER, content)
    assert error is not None
    return error


def kinds(commands: list) -> list[tuple[str, Kind]]:
    return [(type(c).__name__, cookies.decode(c.flow["cookie"]).kind) for c in commands]


def entry(packets: int, age: float):
    """A poll reply: ALICE's monitor, ``age`` s old, with ``packets`` chat packets."""
    return stats(stats_entry(ALICE, packets, packets * CHAT_BYTES, age))


def flood_poll(limiter: RateLimiter, t: float, packets: int) -> list:
    """One poll at ``t`` (flow age = t) reporting ``packets`` chat packets so far."""
    return limiter.handle_flow_stats(
        stats(stats_entry(ALICE, packets, packets * CHAT_BYTES, t)), at(t)
    )


def blocked_alice() -> tuple[RateLimiter, dict]:
    limiter = RateLimiter(LimiterSettings(sustain_s=0))  # blocked at its first dry poll
    limiter.restore(DPID, at(0))
    limiter.handle_packet_in(packet_in(ALICE.ip, ALICE.port), at(0))
    flood_poll(limiter, 10, 0)
    commands = flood_poll(limiter, 20, 1000)
    assert kinds(commands) == [("InstallFlow", Kind.BLOCK), ("DeleteFlows", Kind.MONITOR)]
    return limiter, commands[0].flow


def test_refused_drop_flow_rolls_the_block_back_and_monitors_the_client_again() -> None:
    limiter, block_flow = blocked_alice()
    commands = limiter.handle_flow_error(table_full(block_flow), at(20.1))
    assert kinds(commands) == [("DeleteFlows", Kind.BLOCK), ("InstallFlow", Kind.MONITOR)]
    assert commands[1].flow["match"]["tp_src"] == ALICE.port
    assert limiter.blocked() == []
    assert [(r["ip"], r["port"]) for r in limiter.monitored()] == [(ALICE.ip, ALICE.port)]
    last = limiter.history()[-1]
    assert (last["kind"], last["reason"]) == ("block_failed", "block failed: OFPFMFC_TABLE_FULL")
    status = limiter.status()
    assert status["flow_errors_total"] == {"block": 1}
    assert status["blocks_total"] == {"auto": 1}  # the decision was made; it failed
    assert status["unblocks_total"] == {}  # nothing was lifted
    assert status["switches"][DPID]["blocked"] == 0
    # A second error for the same block (another port's drop flow) changes nothing more.
    assert limiter.handle_flow_error(table_full(block_flow), at(20.2)) == []


@pytest.mark.parametrize("second_failure", [False, True])
def test_block_backoff_is_ten_seconds_then_doubles(second_failure: bool) -> None:
    limiter, block_flow = blocked_alice()
    limiter.handle_flow_error(table_full(block_flow), at(20.0))  # no retry before t=30
    limiter.handle_flow_stats(entry(0, 1.0), at(21))  # the new monitor's baseline
    assert limiter.handle_flow_stats(entry(1000, 9.0), at(29)) == []  # flooding, backing off
    commands = limiter.handle_flow_stats(entry(2000, 17.0), at(37))
    assert kinds(commands)[0] == ("InstallFlow", Kind.BLOCK)
    if not second_failure:
        return
    limiter.handle_flow_error(table_full(commands[0].flow), at(37.0))  # now 20 s: until t=57
    limiter.handle_flow_stats(entry(0, 1.0), at(38))
    assert limiter.handle_flow_stats(entry(1000, 17.0), at(54)) == []
    commands = limiter.handle_flow_stats(entry(2000, 27.0), at(64))
    assert kinds(commands)[0] == ("InstallFlow", Kind.BLOCK)


def test_refused_monitor_forgets_the_client_and_retries_after_a_backoff() -> None:
    limiter = RateLimiter(LimiterSettings())
    limiter.restore(DPID, at(0))
    [install] = limiter.handle_packet_in(packet_in(ALICE.ip, ALICE.port), at(0))
    assert limiter.handle_flow_error(table_full(install.flow), at(0.1)) == []
    assert limiter.monitored() == []
    assert limiter.status()["flow_errors_total"] == {"monitor": 1}
    # Its packets still come up through capture: ignored until the backoff ends.
    assert limiter.handle_packet_in(packet_in(ALICE.ip, ALICE.port), at(5)) == []
    assert kinds(limiter.handle_packet_in(packet_in(ALICE.ip, ALICE.port), at(10.2))) == [
        ("InstallFlow", Kind.MONITOR)
    ]


def test_refused_capture_flow_or_delete_is_only_counted() -> None:
    limiter, block_flow = blocked_alice()
    capture = flows.capture_flows([5222])[0]
    assert limiter.handle_flow_error(table_full(capture), at(21)) == []
    assert limiter.handle_flow_error(table_full(block_flow, "delete"), at(21)) == []
    assert len(limiter.blocked()) == 1
    assert limiter.status()["flow_errors_total"] == {"capture": 1, "block": 1}


def test_only_the_owners_flows_are_its_errors() -> None:
    content = {
        "datapath": SimpleNamespace(dpid=DPID),
        "flow": pipeline.base_table_miss(),
        "error_command": "add",
        "error_type_name": "OFPET_FLOW_MOD_FAILED",
        "error_code_name": "OFPFMFC_TABLE_FULL",
    }
    assert flow_error_for(Owner.RATE_LIMITER, content) is None
    assert flow_error_for(Owner.DISPATCHER, content).kind is Kind.TABLE_MISS
    for broken in (
        {},
        {**content, "flow": None},
        {**content, "flow": {"cookie": "0xa3"}},
        {**content, "datapath": None},
    ):
        assert flow_error_for(Owner.DISPATCHER, broken) is None
