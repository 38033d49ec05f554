"""The rate limiter's state in a real PostgreSQL server (issue 12, item 1).

Each test starts its own PostgreSQL (Debian's binaries, its own data dir, socket
dir and port: ``xmpp_ofc.testing.postgres``) and removes it at the end. The same
contract as the SQLite store: blocks, settings, offences and a bounded history
round-trip; two stores on one database (two controllers) see each other's writes;
a database that goes away is logged and survived, and used again once it is back;
a newer schema is refused; and a real controller with ``STORE_URL`` keeps a manual
block across its restart.
"""

from __future__ import annotations

import logging
import os

import psycopg
import pytest

from napps.xmpp_ofc.rate_limiter import postgres_store
from napps.xmpp_ofc.rate_limiter.postgres_store import PostgresStore, StoreSchemaError
from napps.xmpp_ofc.rate_limiter.records import BlockRecord, EventKind, HistoryEvent
from tests.kytos_helpers import running_controller
from tests.waiting import wait_until
from xmpp_ofc.testing.fake_switch import FakeSwitch
from xmpp_ofc.testing.postgres import PostgresServer, postgres_bin_dir

DPID = "00:00:00:00:00:00:00:01"
API = "xmpp_ofc/rate_limiter/v1"

pytestmark = pytest.mark.skipif(
    postgres_bin_dir() is None or os.geteuid() != 0,
    reason="needs root and Debian's postgresql (scripts/ensure-system-deps.sh installs it)",
)


@pytest.fixture
def pg():
    with PostgresServer() as server:
        yield server


def record(ip: str = "10.0.0.7", port: int | None = 40001) -> BlockRecord:
    return BlockRecord(
        dpid=DPID, ip=ip, port=port, server_ports=(5222, 5269), since=10.0, expires=100.0,
        reason="test", manual=port is None, packets_per_min=600.0,
    )  # fmt: skip


def test_blocks_settings_offences_and_history_round_trip(pg):
    store = PostgresStore(pg.url, history_limit=3)
    store.save_block(record())
    store.save_block(record(port=None))
    store.save_block(record())  # replace, not duplicate
    store.save_settings({"message_burst": 50})
    store.save_offences("10.0.0.7", 2, 123.5)
    for n in range(5):
        store.append_history(HistoryEvent(float(n), EventKind.BLOCK, DPID, "10.0.0.7", n, f"r{n}"))
    store.close()

    again = PostgresStore(pg.url, history_limit=3)
    assert sorted(again.load_blocks(), key=lambda b: b.port or 0) == [
        record(port=None),
        record(),
    ]
    assert again.load_settings() == {"message_burst": 50}
    assert again.load_offences() == [("10.0.0.7", 2, 123.5)]
    assert [e.reason for e in again.load_history(10)] == ["r2", "r3", "r4"]  # bounded, in order
    again.delete_block(DPID, "10.0.0.7", None)
    again.forget_offences("10.0.0.7")
    assert again.load_blocks() == [record()]
    assert again.load_offences() == []


def test_two_controllers_on_one_database_see_each_others_blocks(pg):
    first, second = PostgresStore(pg.url), PostgresStore(pg.url)  # both migrate: one wins
    first.save_block(record("10.0.0.1"))
    second.save_block(record("10.0.0.2"))
    assert {b.ip for b in first.load_blocks()} == {"10.0.0.1", "10.0.0.2"}
    with psycopg.connect(pg.url) as conn:
        versions = conn.execute("SELECT version FROM rate_limiter_schema ORDER BY 1").fetchall()
    assert versions == [(1,), (2,)]


def test_a_newer_schema_is_refused_with_what_to_do(pg):
    PostgresStore(pg.url).close()
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute("INSERT INTO rate_limiter_schema VALUES (99)")
    with pytest.raises(StoreSchemaError, match="upgrade this controller"):
        PostgresStore(pg.url)


def test_the_database_going_away_is_logged_survived_and_used_again(pg, caplog, monkeypatch):
    monkeypatch.setattr(postgres_store, "RETRY_AFTER_S", 0.0)
    store = PostgresStore(pg.url)
    store.save_block(record("10.0.0.1"))
    pg.stop()
    with caplog.at_level(logging.ERROR):
        store.save_block(record("10.0.0.2"))  # lost, not raised
        assert store.load_blocks() == []
    assert "unreachable" in caplog.text and "enforcing from memory" in caplog.text
    pg.start_again()
    store.save_block(record("10.0.0.3"))
    assert {b.ip for b in store.load_blocks()} == {"10.0.0.1", "10.0.0.3"}


def test_a_controller_keeps_a_manual_block_across_its_restart_in_postgres(pg, tmp_path):
    env = {"XMPP_OFC_RATE_LIMITER_STORE_URL": pg.url}
    block = {"dpid": DPID, "ip": "10.0.0.9", "duration": 600}
    with (
        running_controller(tmp_path / "first", env=env) as controller,
        FakeSwitch("127.0.0.1", controller.of_port, dpid=1) as switch,
    ):
        switch.handshake()
        known = wait_until(
            lambda: DPID in controller.get(f"{API}/status")[1].get("switches", {}), 15
        )
        assert known, controller.get(f"{API}/status")
        status, body = controller.post(f"{API}/blocked", block)
        assert status == 201, body
    with psycopg.connect(pg.url) as conn:
        rows = conn.execute("SELECT dpid, ip FROM rate_limiter_blocks").fetchall()
    assert rows == [(DPID, "10.0.0.9")]
    # Another controller process (its own base dir: no SQLite file to fall back on).
    with running_controller(tmp_path / "second", env=env) as controller:
        status, body = controller.get(f"{API}/blocked")
        assert status == 200 and [b["ip"] for b in body["blocked"]] == ["10.0.0.9"], body
        assert "Traceback" not in controller.log_text()
