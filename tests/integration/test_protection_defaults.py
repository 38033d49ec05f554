"""Protection at the shipped defaults: prosody and slixmpp through a real Open vSwitch.

Issue 14, item 7. One lab for the module: OVS, prosody, 5 user hosts with 10
accounts each (their simultaneous logins at the start of each load are the login
storm of 50), 1 spammer host, the controller with every NApp. NO setting is
changed: what an operator gets on day one. Between the two loads the operator
lifts the spammer's blocks over REST, which also clears its record of offences.

1. A single-connection flood of 20 msg/s (the load's spammer, 1200/min) is
   blocked within 5 s of its first message, and at most 5 s of it reaches the
   victims; meanwhile every user chats, one user per host also sends a 100 kB
   stanza and a burst of 30 messages in 3 s, and every user is a heavy receiver
   of the spam: none is ever blocked or flagged, >= 99 % of their messages arrive.
2. A reconnecting spammer (a new session, new source port, every 5 s, 20 msg/s)
   for two minutes gets at most a quarter of its flood through, and nothing once
   its whole address is blocked (from its second offence).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.integration.test_e2e_xmpp import Lab
from xmpp_ofc.lab import state, xmpp_lab
from xmpp_ofc.lab.load import LoadOptions, run_load
from xmpp_ofc.testing.controller import free_port

pytestmark = pytest.mark.ovs

SPAM_PER_S = 20
FLOOD = LoadOptions(
    duration=40, rate=12, spam_rate=SPAM_PER_S * 60, connect_timeout=30, extremes=True
)  # fmt: skip
RECONNECTING = LoadOptions(
    duration=120, rate=12, spam_rate=SPAM_PER_S * 60, connect_timeout=30,
    spam_reconnect_after=5, users=2,
)  # fmt: skip
OBSERVE_EVERY_S = 0.25


@pytest.fixture(scope="module")
def lab():
    tag = state.new_tag()
    options = xmpp_lab.LabOptions(
        tag=tag, clients=5, users_per_client=10, spammers=1,
        of_port=free_port(), api_port=free_port(),
    )  # fmt: skip
    try:
        description = xmpp_lab.build(options)
        the_lab = Lab(description, description.controller())
        status, body = the_lab.api.get("xmpp_ofc/rate_limiter/v1/settings")
        assert status == 200, body
        assert body["poll_interval_s"] == 1 and body["sustain_s"] == 2, "not the defaults"
        yield the_lab
        log = the_lab.api.log_text()
        assert "Traceback" not in log, log[-6000:]
    finally:
        xmpp_lab.teardown(tag)


@dataclass
class Observed:
    """What REST showed while a load ran; times are seconds after the load's go."""

    summary: dict[str, Any] = field(default_factory=dict)
    first_block_at: float | None = None
    address_block_at: float | None = None
    blocked_ips: set[str] = field(default_factory=set)
    events: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def observe(lab: Lab, options: LoadOptions) -> Observed:
    """Run ``options`` in a thread; watch the spammer's blocks until it ends."""
    seen = Observed()
    go = threading.Event()

    def say(line: str) -> None:
        seen.lines.append(line)
        if "sending for" in line:
            go.set()

    load = threading.Thread(
        target=lambda: seen.summary.update(run_load(lab.description, options, say)), daemon=True
    )
    load.start()
    assert go.wait(options.connect_timeout + 60), seen.lines
    go_at = time.monotonic()
    spammer = lab.spammer.ip
    deadline = go_at + options.duration + options.drain + 40
    while load.is_alive() and time.monotonic() < deadline:
        now = time.monotonic() - go_at
        blocked = lab.blocked()
        seen.blocked_ips.update(entry["ip"] for entry in blocked)
        mine = [entry for entry in blocked if entry["ip"] == spammer]
        if mine and seen.first_block_at is None:
            seen.first_block_at = now
        if seen.address_block_at is None and [e for e in mine if e["port"] is None]:
            seen.address_block_at = now
        time.sleep(OBSERVE_EVERY_S)
    load.join(30)
    assert not load.is_alive(), "the load did not finish"
    seen.events = lab.events()
    print("\n".join(seen.lines))
    print(f"spammer blocked at {seen.first_block_at}, address at {seen.address_block_at}")
    return seen


def lift_blocks(lab: Lab, ip: str) -> None:
    """The operator's unblock over REST (it also forgets the address's offences)."""
    for block in lab.blocked():
        if block["ip"] != ip:
            continue
        path = f"xmpp_ofc/rate_limiter/v1/blocked/{block['dpid']}/{ip}"
        if block["port"] is not None:
            path += f"/{block['port']}"
        status, body = lab.api.delete(path)
        assert status == 200, body


def assert_users_untouched(lab: Lab, seen: Observed) -> None:
    summary = seen.summary
    assert seen.blocked_ips <= {lab.spammer.ip}, seen.blocked_ips
    user_ips = {host.ip for host in lab.users()}
    touched = [event for event in seen.events if event["ip"] in user_ips]
    assert not touched, touched  # no block, no flag
    # Only the users' own logins count: the spammer's refused re-logins are the point.
    user_failures = {h.name: summary["hosts"][h.name]["failures"] for h in lab.users()}
    assert not any(user_failures.values()), user_failures
    sent, delivered = summary["sent"]["user"], summary["delivered"]["user"]
    assert sent > 0 and delivered >= 0.99 * sent, (sent, delivered)


@pytest.fixture(scope="module")
def flood(lab) -> Observed:
    return observe(lab, FLOOD)


def test_single_connection_flood_blocked_within_5_s(lab, flood):
    assert flood.first_block_at is not None, f"never blocked: {flood.events}"
    assert flood.first_block_at <= 5.0, flood.first_block_at
    [block] = [b for b in lab.blocked() if b["ip"] == lab.spammer.ip]
    assert block["port"] is not None and "msg/s > 5 msg/s" in block["reason"], block
    # What reached the victims: at most the first 5 s of the flood.
    delivered = flood.summary["delivered"]["spam"]
    assert delivered <= 5 * SPAM_PER_S, flood.summary
    assert flood.summary["sent"]["spam"] >= 20 * SPAM_PER_S  # it kept trying all along


def test_legitimate_traffic_never_blocked_at_the_defaults(lab, flood):
    """Chat, 50 simultaneous logins, heavy receivers, a 100 kB stanza, 30 messages in 3 s."""
    assert flood.summary["connected_at_start"] == 50 + 1, flood.summary
    assert_users_untouched(lab, flood)
    # Each user host's extremes went out (1 large stanza + 30) and arrived.
    assert flood.summary["sent"]["user"] >= 5 * 31


def test_reconnecting_spammer_contained(lab, flood):
    lift_blocks(lab, lab.spammer.ip)
    seen = observe(lab, RECONNECTING)
    flood_size = SPAM_PER_S * RECONNECTING.duration
    delivered = seen.summary["delivered"]["spam"]
    assert delivered <= flood_size / 4, (delivered, flood_size)
    assert seen.address_block_at is not None, seen.events
    # Once the whole address is blocked, nothing more: the windows that start
    # after it (plus the delivery of what was in flight) carry no spam.
    later = [
        window["delivered"]["spam"]
        for window in seen.summary["windows"]
        if window["start_s"] >= seen.address_block_at + 1
    ]
    assert later and sum(later) == 0, seen.summary["windows"]
    assert_users_untouched(lab, seen)
