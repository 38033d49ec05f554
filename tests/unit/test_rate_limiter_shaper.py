"""When the shipped policy stops a client, simulated poll by poll at the defaults.

Each scenario drives the real :class:`RateLimiter` with :class:`LimiterSettings()`
(nothing changed) and a poll every second, as the shell does: a capture packet-in
starts a monitor, then each second the connection's counters grow by what it sent.
"""

from __future__ import annotations

from test_rate_limiter_helpers import (
    DPID,
    SimulatedConnection,
    at,
    packet_in,
    stats,
)

from napps.xmpp_ofc.rate_limiter.flows import Client
from napps.xmpp_ofc.rate_limiter.limiter import RateLimiter
from napps.xmpp_ofc.rate_limiter.settings_model import LimiterSettings
from xmpp_ofc import cookies
from xmpp_ofc.commands import InstallFlow
from xmpp_ofc.cookies import Kind

POLL_S = LimiterSettings().poll_interval_s
SPAMMER_IP = "10.0.0.7"


def blocks_in(commands: list) -> list[InstallFlow]:
    return [
        c
        for c in commands
        if isinstance(c, InstallFlow) and cookies.decode(c.flow["cookie"]).kind is Kind.BLOCK
    ]


def connect(limiter: RateLimiter, client: Client, t: float) -> SimulatedConnection:
    limiter.handle_packet_in(packet_in(client.ip, client.port), at(t))
    return SimulatedConnection(client, t)


def poll(limiter: RateLimiter, t: float, *connections: SimulatedConnection) -> list:
    live = [c for c in connections if c.blocked_at is None]
    commands = limiter.handle_flow_stats(stats(*(c.entry(t) for c in live)), at(t))
    blocked = {
        (b.flow["match"]["nw_src"], b.flow["match"].get("tp_src")) for b in blocks_in(commands)
    }
    for connection in live:
        ip, port = connection.client.ip, connection.client.port
        if (ip, port) in blocked or (ip, None) in blocked:
            connection.blocked_at = t
    return commands


def run(limiter: RateLimiter, connection: SimulatedConnection, per_second, until: float) -> None:
    """Poll every second until ``until``; ``per_second(t)`` is what it sends in (t-1, t]."""
    t = connection.opened_at
    while t < until and connection.blocked_at is None:
        t += POLL_S
        per_second(connection, t)
        poll(limiter, t, connection)


def fresh_limiter() -> RateLimiter:
    limiter = RateLimiter(LimiterSettings())
    limiter.restore(DPID, at(0))
    return limiter


def login(connection: SimulatedConnection) -> None:
    connection.send(10, 66 + 250)  # stream, features, SASL, bind, session, roster, presence


def test_a_flood_starting_with_its_connection_is_blocked_within_5_s_of_its_first_message() -> None:
    limiter = fresh_limiter()
    spammer = connect(limiter, Client(SPAMMER_IP, 40001), 0.3)  # polls at whole seconds

    def flood(c: SimulatedConnection, t: float) -> None:
        if t < 1.5:
            login(c)
        else:
            c.send(20)  # 20 msg/s of ~140 bytes: under ejabberd's 3000 B/s

    run(limiter, spammer, flood, until=60)
    assert spammer.blocked_at is not None
    first_message = 1.0  # the window (1, 2] is its first of flooding
    assert spammer.blocked_at - first_message <= 5.0
    [block] = limiter.blocked()
    assert block["port"] == 40001 and "msg/s > 5 msg/s" in block["reason"]
    assert block["expires"] - block["since"] == 60


def test_a_flood_on_an_established_connection_is_blocked_within_5_s() -> None:
    limiter = fresh_limiter()
    chat = connect(limiter, Client(SPAMMER_IP, 40001), 0.0)

    def calm_then_flood(c: SimulatedConnection, t: float) -> None:
        if t <= 1:
            login(c)
        elif t <= 300:
            c.send(1 if int(t) % 10 == 0 else 0, 66 + 300)
        else:
            c.send(20)

    run(limiter, chat, calm_then_flood, until=400)
    assert chat.blocked_at is not None and 300 < chat.blocked_at <= 300 + 5


def never_blocked(sends, seconds: float = 120) -> SimulatedConnection:
    limiter = fresh_limiter()
    connection = connect(limiter, Client("10.0.0.20", 41000), 0.0)
    run(limiter, connection, sends, until=seconds)
    assert connection.blocked_at is None, limiter.history()
    assert limiter.blocked() == []
    return connection


def test_thirty_messages_in_three_seconds_are_not_blocked() -> None:
    def burst(c: SimulatedConnection, t: float) -> None:
        if t <= 1:
            login(c)
        elif 10 < t <= 13:
            c.send(10, 66 + 200)

    never_blocked(burst)


def test_thirty_messages_in_one_window_and_again_a_minute_later_are_not_blocked() -> None:
    def bursts(c: SimulatedConnection, t: float) -> None:
        if t in (5, 65):
            c.send(30, 66 + 200)

    never_blocked(bursts)


def test_one_100_kb_stanza_is_not_blocked() -> None:
    def avatar(c: SimulatedConnection, t: float) -> None:
        if t <= 1:
            login(c)
        elif t == 20:
            c.packets += 70  # 100 kB in full-sized segments
            c.octets += 100_000 + 70 * 66

    never_blocked(avatar)


def test_a_heavy_receiver_sending_only_acks_is_not_blocked() -> None:
    def receiver(c: SimulatedConnection, t: float) -> None:
        c.ack(200)  # the ACKs of 400 incoming messages a second

    never_blocked(receiver)


def test_a_busy_but_human_chat_is_not_blocked() -> None:
    def chat(c: SimulatedConnection, t: float) -> None:
        c.send(3 if int(t) % 2 else 1, 66 + 400)  # 2 msg/s of 400 bytes, with receipts

    never_blocked(chat, seconds=600)


def test_a_login_storm_of_50_clients_blocks_nobody() -> None:
    limiter = fresh_limiter()
    clients = [connect(limiter, Client(f"10.0.1.{i}", 42000 + i), i * 0.02) for i in range(50)]
    for t in range(1, 30):
        for connection in clients:
            if t == 1:
                login(connection)
                connection.send(5, 66 + 150)  # initial presence to the roster, carbons
            else:
                connection.ack(3)
        poll(limiter, float(t), *clients)
    assert limiter.blocked() == []


def test_a_payload_flood_of_few_large_stanzas_is_blocked_by_the_byte_bucket() -> None:
    limiter = fresh_limiter()
    bulk = connect(limiter, Client(SPAMMER_IP, 40001), 0.0)

    def large(c: SimulatedConnection, t: float) -> None:
        c.packets += 4
        c.octets += 4 * 66 + 40_000  # 40 kB/s in four segments

    run(limiter, bulk, large, until=30)
    assert bulk.blocked_at is not None and bulk.blocked_at <= 5
    assert "payload B/s > 3000 B/s" in limiter.blocked()[0]["reason"]


def covered(limiter: RateLimiter, client: Client) -> bool:
    """Whether a block (of the connection or of its whole address) drops its packets."""
    return any(b["ip"] == client.ip and b["port"] in (None, client.port) for b in limiter.blocked())


def test_a_reconnecting_spammer_gets_under_a_quarter_through_then_nothing() -> None:
    """A new session (new source port) every 5 s, 20 msg/s from its first second, 2 minutes."""
    limiter = fresh_limiter()
    session: SimulatedConnection | None = None
    sent = through = through_after_second = 0
    for step in range(120):
        t = float(step)
        if step % 5 == 0:
            session = connect(limiter, Client(SPAMMER_IP, 40000 + step), t + 0.1)
        assert session is not None
        if step > 0:
            sent += 20
            if not covered(limiter, session.client):
                session.send(20)
                through += 20
                if sum(limiter.status()["blocks_total"].values()) >= 2:
                    through_after_second += 20
        if not covered(limiter, session.client):
            poll(limiter, t + 1, session)
    assert through / sent < 0.25, (through, sent)
    assert through_after_second == 0
    [whole] = [b for b in limiter.blocked() if b["port"] is None]
    assert whole["ip"] == SPAMMER_IP
    assert whole["expires"] - whole["since"] == 120  # the second offence: twice 60 s


def test_many_well_behaved_users_behind_one_address_are_never_blocked() -> None:
    """NAT-safe: 40 connections of one address, each chatting, sum far over one allowance."""
    limiter = fresh_limiter()
    users = [connect(limiter, Client("192.0.2.1", 50000 + i), i * 0.01) for i in range(40)]
    for t in range(1, 120):
        for user in users:
            user.send(2 if t % 3 == 0 else 0, 66 + 300)
        poll(limiter, float(t), *users)
    assert limiter.blocked() == []


def test_per_ip_aggregate_blocks_an_address_only_when_its_total_stays_over() -> None:
    """Opt-in summing: 20 connections of 3 msg/s each (60 > 50 msg/s), each within its own."""
    limiter = RateLimiter(LimiterSettings(per_ip_aggregate=True))
    limiter.restore(DPID, at(0))
    connections = [connect(limiter, Client("192.0.2.9", 51000 + i), 0.0) for i in range(20)]
    blocked_at = None
    for t in range(1, 10):
        for connection in connections:
            connection.send(3, 66 + 200)
        if blocks_in(poll(limiter, float(t), *connections)):
            blocked_at = t
            break
    assert blocked_at == 3  # over at 1, 2 and 3: sustained for 2 s
    [block] = limiter.blocked()
    assert block["port"] is None and "over 20 connections > 50 msg/s" in block["reason"]


def test_meter_mode_polices_first_and_blocks_a_client_that_keeps_flooding() -> None:
    """Graduated response: meter (flag), then block once METER_GRACE_S passed, then escalate."""
    from napps.xmpp_ofc.rate_limiter.limiter import MeterSupport
    from napps.xmpp_ofc.rate_limiter.policy import METER_GRACE_S

    limiter = RateLimiter(LimiterSettings(mode="meter"))
    limiter.restore(DPID, at(0))
    limiter.set_meter_support(DPID, MeterSupport(max_meter=64, band_drop=True, pps=True), at(0))
    spammer = connect(limiter, Client(SPAMMER_IP, 40001), 0.5)
    assert limiter.monitored()[0]["meter_id"] is not None

    def flood(c: SimulatedConnection, t: float) -> None:
        c.send(20)  # counted by its monitor flow before the meter drops the excess

    run(limiter, spammer, flood, until=60)
    flags = [e for e in limiter.history() if e["kind"] == "flag"]
    assert len(flags) == 1 and "metered" in flags[0]["reason"]
    assert spammer.blocked_at is not None
    assert spammer.blocked_at - (flags[0]["at"] - at(0).wall) >= METER_GRACE_S
    assert spammer.blocked_at <= 1 + 2 + METER_GRACE_S + 1
