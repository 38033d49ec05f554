"""enforcement.py alone: the commands each change means, without bookkeeping or policy.

The Enforcer is fed plain Monitored records and BlockRecords; its output is read
as commands (what would go to the switch).
"""

from __future__ import annotations

from test_rate_limiter_helpers import DPID, at

from napps.xmpp_ofc.rate_limiter.capture_bounds import CaptureBounds
from napps.xmpp_ofc.rate_limiter.enforcement import Enforcer
from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.prefix_blocks import PrefixBlock
from napps.xmpp_ofc.rate_limiter.records import BlockRecord
from napps.xmpp_ofc.rate_limiter.settings_model import LimiterSettings, Mode
from napps.xmpp_ofc.rate_limiter.state import MeterSupport, Monitored
from xmpp_ofc import cookies
from xmpp_ofc.commands import DeleteFlows, InstallFlow, ModifyMeter
from xmpp_ofc.cookies import Kind
from xmpp_ofc.openflow.meter import OFPM_ALL

A = Client("10.0.0.7", 40001)
B = Client("10.0.0.8", 40002)
METERS = MeterSupport(max_meter=3, band_drop=True, pps=True)
NO_METERS = MeterSupport(max_meter=0, band_drop=False, pps=False)


def kind(command) -> str:
    if isinstance(command, ModifyMeter):
        return f"meter {command.command} {command.meter_id}"
    flow = command.flow
    decoded = cookies.decode(flow["cookie"]) if "cookie" in flow else None
    name = decoded.kind.name.lower() if decoded is not None else "?"
    return f"{'install' if isinstance(command, InstallFlow) else 'delete'} {name}"


def kinds(commands) -> list[str]:
    return [kind(c) for c in commands]


def enforcer(mode: Mode = Mode.BLOCK, support: MeterSupport | None = None) -> Enforcer:
    result = Enforcer(LimiterSettings(mode=mode), CaptureBounds(meter_rate_pps=200))
    result.connected(DPID)
    if support is not None:
        result.set_meter_support(DPID, support, [], at(0))
    return result


def monitored(client: Client) -> Monitored:
    return Monitored(client, 5222, at(0), whitelisted=False)


def test_capture_path_goes_through_the_capture_meter_only_where_meters_work() -> None:
    plain = enforcer()
    assert kinds(plain.capture_path(DPID, fresh_meter=True)) == ["install capture"] * 2
    metered = enforcer(support=METERS)
    commands = metered.capture_path(DPID, fresh_meter=True)
    assert kinds(commands) == [
        "meter delete 3",
        "meter add 3",
        "install capture",
        "install capture",
    ]
    assert commands[1].rate_pps == 200
    assert kinds(enforcer(support=NO_METERS).capture_path(DPID, fresh_meter=True))[0] == (
        "install capture"
    )
    assert kinds(metered.replace_capture(DPID)) == ["delete capture"] + ["install capture"] * 2


def test_meter_mode_gives_each_monitor_a_meter_until_they_run_out() -> None:
    enf = enforcer(Mode.METER, METERS)
    first, second, third = monitored(A), monitored(B), monitored(Client("10.0.0.9", 1))
    assert kinds(enf.monitor(DPID, A, first)) == ["meter add 1", "install monitor"]
    assert kinds(enf.monitor(DPID, B, second)) == ["meter add 2", "install monitor"]
    # Meter 3 is the capture meter: the third client is policed by blocking instead.
    assert kinds(enf.monitor(DPID, A, third)) == ["install monitor"] and third.meter_id is None
    assert enf.meter_fallbacks == 1
    assert kinds(enf.unmonitor(DPID, A, first, delete_flow=True)) == [
        "delete monitor",
        "meter delete 1",
    ]
    assert enf.monitor(DPID, A, monitored(A))[0].meter_id == 1  # given back, reused


def test_block_mode_installs_monitors_without_meters() -> None:
    enf = enforcer(Mode.BLOCK, METERS)
    assert kinds(enf.monitor(DPID, A, monitored(A))) == ["install monitor"]
    assert enf.effective_mode(DPID) == (Mode.BLOCK, "")


def test_nothing_is_sent_to_a_switch_that_is_away() -> None:
    enf = enforcer(Mode.METER, METERS)
    record = monitored(A)
    enf.monitor(DPID, A, record)
    enf.disconnected(DPID)
    assert enf.unmonitor(DPID, A, record, delete_flow=True) == []
    assert enf.unblock(DPID, A) == []
    assert enf.meter_support(DPID) is None and not enf.is_up(DPID)
    mode, note = enf.effective_mode(DPID)
    assert mode is Mode.BLOCK and "not reported" in note


def test_block_flows_carry_the_remaining_time_and_unblock_deletes_them() -> None:
    enf = enforcer()
    block = BlockRecord(DPID, A.ip, None, (5222, 5223), at(0).wall, at(0).wall + 60, "r", False)
    commands = enf.block(DPID, Client(A.ip, None), block, at(49.5))
    assert [c.flow["hard_timeout"] for c in commands] == [11, 11]
    assert [c.flow["match"]["tp_dst"] for c in commands] == [5222, 5223]
    assert kinds(enf.unblock(DPID, A)) == ["delete block"]
    enf.disconnected(DPID)
    assert kinds(enf.unblock(DPID, A, if_up=False)) == ["delete block"]


def test_prefix_blocks_are_drop_flows_of_the_prefix() -> None:
    enf = enforcer()
    block = PrefixBlock(DPID, "10.0.0.0/24", (5222,), at(0).wall, at(0).wall + 60, "flood")
    (install,) = enf.prefix_block(block, at(0))
    assert install.flow["match"]["nw_src"] == "10.0.0.0/24" and install.flow["hard_timeout"] == 60
    assert isinstance(enf.prefix_unblock(block)[0], DeleteFlows)


def test_leaving_meter_mode_re_adds_monitors_before_deleting_the_meters() -> None:
    enf = enforcer(Mode.METER, METERS)
    clients = [(A, monitored(A)), (B, monitored(B))]
    for client, record in clients:
        enf.monitor(DPID, client, record)
    enf.settings = LimiterSettings(mode=Mode.BLOCK)
    commands = enf.unmeter(DPID, clients)
    assert kinds(commands)[:3] == [
        "install monitor",
        "install monitor",
        "meter delete " + str(OFPM_ALL),
    ]
    assert all("meter_id" not in str(c.flow.get("instructions")) for c in commands[:2])
    assert kinds(commands)[3:5] == ["meter delete 3", "meter add 3"]  # the capture meter back


def test_entering_meter_mode_deletes_all_meters_then_meters_every_client() -> None:
    enf = enforcer(Mode.BLOCK, METERS)
    clients = [(A, monitored(A))]
    enf.settings = LimiterSettings(mode=Mode.METER)
    commands = enf.remeter(DPID, clients, at(5))
    assert kinds(commands)[0] == f"meter delete {OFPM_ALL}"
    assert kinds(commands)[-2:] == ["meter add 1", "install monitor"]
    assert clients[0][1].installed_at == at(5).mono
    enf.settings = LimiterSettings(mode=Mode.METER, meter_rate_pps=9)
    assert [(c.command, c.rate_pps) for c in enf.modify_meters(DPID, clients)] == [("modify", 9)]


def test_restore_clears_meters_and_reinstalls_each_monitor() -> None:
    enf = enforcer(Mode.METER, METERS)
    record = monitored(A)
    record.meter_id = 2  # from before the reconnect
    enf.disconnected(DPID)
    assert kinds(enf.restore(DPID, [(A, record)])) == ["install capture"] * 2 + ["install monitor"]
    assert record.meter_id is None  # meter support is not known again yet
    enf.set_meter_support(DPID, METERS, [], at(1))
    commands = enf.restore(DPID, [(A, record)])
    assert kinds(commands)[0] == f"meter delete {OFPM_ALL}" and record.meter_id == 1
    assert enf.switch_status(DPID)["capture_meter_id"] == 3


def test_meter_features_without_drop_bands_leave_capture_unmetered() -> None:
    enf = enforcer(Mode.METER)
    assert enf.set_meter_support(DPID, NO_METERS, [], at(0)) == []
    status = enf.switch_status(DPID)
    assert status["capture_meter_id"] is None and "DROP" in status["mode_note"]
    assert cookies.decode(enf.capture_path(DPID, fresh_meter=True)[0].flow["cookie"]).kind is (
        Kind.CAPTURE
    )
