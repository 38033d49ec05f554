"""SQLite persistence: blocks survive a restart with their remaining time; history bounded."""

from __future__ import annotations

import logging
import sqlite3
import sys
import threading
from pathlib import Path

import pytest
from test_rate_limiter_helpers import DPID, WALL0, at, packet_in

from napps.xmpp_ofc.rate_limiter.limiter import RateLimiter
from napps.xmpp_ofc.rate_limiter.records import BlockRecord, EventKind, HistoryEvent
from napps.xmpp_ofc.rate_limiter.settings_model import LimiterSettings
from napps.xmpp_ofc.rate_limiter.store import SCHEMA_VERSION, SqliteStore, default_path
from xmpp_ofc.commands import InstallFlow


def record(ip: str = "10.0.0.7", port: int | None = 40001, expires: float = 100.0) -> BlockRecord:
    return BlockRecord(
        dpid=DPID,
        ip=ip,
        port=port,
        server_ports=(5222, 5269),
        since=10.0,
        expires=expires,
        reason="test",
        manual=port is None,
        packets_per_min=600.0,
    )


def test_default_path_is_under_the_kytos_var_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRTUAL_ENV", "/opt/venv")
    assert default_path() == Path("/opt/venv/var/lib/kytos/xmpp_ofc/rate_limiter.sqlite")
    monkeypatch.delenv("VIRTUAL_ENV")  # a venv's kytosd run without activating it
    assert default_path() == Path(sys.prefix, "var/lib/kytos/xmpp_ofc/rate_limiter.sqlite")


def test_blocks_settings_and_history_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "rl.sqlite"
    store = SqliteStore(path)
    store.save_block(record())
    store.save_block(record(port=None))
    store.save_settings({"threshold_ppm": 50})
    store.append_history(HistoryEvent(1.0, EventKind.BLOCK, DPID, "10.0.0.7", 1, "r"))
    store.close()
    again = SqliteStore(path)
    assert sorted(again.load_blocks(), key=lambda b: b.port or 0) == [
        record(port=None),
        record(),
    ]
    assert again.load_settings() == {"threshold_ppm": 50}
    assert [e.reason for e in again.load_history(10)] == ["r"]
    again.delete_block(DPID, "10.0.0.7", None)
    assert again.load_blocks() == [record()]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_history_is_bounded_oldest_first_out(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "rl.sqlite", history_limit=5)
    for index in range(12):
        store.append_history(
            HistoryEvent(float(index), EventKind.FLAG, DPID, "10.0.0.1", 1, f"{index}")
        )
    assert [e.reason for e in store.load_history(100)] == ["7", "8", "9", "10", "11"]
    assert [e.reason for e in store.load_history(2)] == ["10", "11"]


def test_corrupt_file_is_moved_aside_and_a_fresh_store_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rl.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.ERROR):
        store = SqliteStore(path)
    assert store.load_blocks() == []
    store.save_block(record())
    assert store.load_blocks() == [record()]
    assert len(list(tmp_path.glob("rl.sqlite.corrupt-*"))) == 1
    assert "moved to" in caplog.text


def test_newer_schema_is_not_overwritten_silently(tmp_path: Path) -> None:
    path = tmp_path / "rl.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    SqliteStore(path)
    assert list(tmp_path.glob("rl.sqlite.corrupt-*"))  # kept for the operator


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "rl.sqlite", history_limit=10_000)

    def write(worker: int) -> None:
        for index in range(50):
            store.save_block(record(ip=f"10.{worker}.0.{index + 1}"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(store.load_blocks()) == 200


def test_write_errors_are_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteStore(tmp_path / "rl.sqlite")
    store.close()
    with caplog.at_level(logging.ERROR):
        store.save_block(record())  # closed connection: an sqlite3 error
    assert "saving a block failed" in caplog.text
    assert store.load_blocks() == []


# --- limiter + store: a controller restart ---------------------------------------------


def test_restart_restores_blocks_with_remaining_time_and_settings(tmp_path: Path) -> None:
    path = tmp_path / "rl.sqlite"
    first = RateLimiter(LimiterSettings(), SqliteStore(path))
    first.restore(DPID, at(0))
    first.update_settings({"block_duration_s": 300, "message_burst": 50}, at(0))
    first.block(DPID, "10.0.0.7", 40001, duration=60, reason="flood", now=at(10))
    first.block(DPID, "10.0.0.8", None, duration=None, reason="abuse", now=at(10))
    first.block(DPID, "10.0.0.9", None, duration=5, reason="short", now=at(10))

    # The controller restarts 20 s later (the third block has expired by then).
    second = RateLimiter(store=SqliteStore(path))
    second.load_persisted(at(30))
    assert second.settings.message_burst == 50 and second.settings.block_duration_s == 300
    assert {(b["ip"], b["port"]) for b in second.blocked()} == {
        ("10.0.0.7", 40001),
        ("10.0.0.8", None),
    }
    assert "expired while controller down" in second.history()[-1]["reason"]
    commands = second.restore(DPID, at(30))
    timeouts = {
        (c.flow["match"]["nw_src"], c.flow["match"].get("tp_src")): c.flow["hard_timeout"]
        for c in commands
        if isinstance(c, InstallFlow) and c.flow["priority"] == 300
    }
    assert timeouts == {("10.0.0.7", 40001): 40, ("10.0.0.8", None): 280}
    # The restored block still keeps the client out of monitoring.
    assert second.handle_packet_in(packet_in("10.0.0.7", 40001), at(31))[0].flow["priority"] == 300


def test_blocks_ended_before_restart_stay_ended(tmp_path: Path) -> None:
    path = tmp_path / "rl.sqlite"
    first = RateLimiter(store=SqliteStore(path))
    first.restore(DPID, at(0))
    first.block(DPID, "10.0.0.7", 40001, duration=60, reason="flood", now=at(10))
    first.unblock(DPID, "10.0.0.7", 40001, at(11))
    second = RateLimiter(store=SqliteStore(path))
    second.load_persisted(at(12))
    assert second.blocked() == []
    assert [e["kind"] for e in second.history()] == ["block", "unblock"]


def test_invalid_stored_settings_fall_back_to_defaults(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "rl.sqlite")
    store.save_settings({"message_burst": -1})
    limiter = RateLimiter(store=store)
    limiter.load_persisted(at(0))
    assert limiter.settings == LimiterSettings()


def test_retired_stored_settings_are_dropped_and_the_rest_kept(tmp_path: Path, caplog) -> None:
    store = SqliteStore(tmp_path / "rl.sqlite")
    store.save_settings({"threshold_ppm": 400, "payload_threshold_bpm": 0, "block_duration_s": 90})
    limiter = RateLimiter(store=store)
    limiter.load_persisted(at(0))
    assert limiter.settings == LimiterSettings(block_duration_s=90)
    assert "retired" in caplog.text and "threshold_ppm" in caplog.text


# --- schema v2: escalation state -------------------------------------------------------


def test_a_v1_file_is_migrated_to_v2_keeping_its_blocks(tmp_path: Path) -> None:
    from napps.xmpp_ofc.rate_limiter import store as store_module

    path = tmp_path / "rl.sqlite"
    with sqlite3.connect(path) as conn:  # what the previous release wrote
        conn.executescript(f"{store_module._SCHEMA_V1} PRAGMA user_version = 1;")
    SqliteStore(path).save_block(record())
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE offences")
        conn.execute("PRAGMA user_version = 1")
    migrated = SqliteStore(path)
    assert migrated.load_blocks() == [record()]
    migrated.save_offences("10.0.0.7", 2, 50.0)
    assert migrated.load_offences() == [("10.0.0.7", 2, 50.0)]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2


def test_offences_survive_a_restart_and_old_ones_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "rl.sqlite"
    window = LimiterSettings().offence_window_s
    first = RateLimiter(store=SqliteStore(path))
    first.offences.record("10.0.0.7", WALL0 + 100, window)
    first.offences.record("10.0.0.7", WALL0 + 110, window)
    first.offences.record("10.0.0.8", WALL0 + 100, window)
    first.offences.forget("10.0.0.8")  # an operator's unblock forgives
    first.offences.record("10.0.0.9", WALL0 + 100 - window, window)  # out of the window by then

    second = RateLimiter(store=SqliteStore(path))
    second.load_persisted(at(120))
    now = at(120).wall
    assert second.offences.recent("10.0.0.7", now, window) == 2  # the next one is a third
    assert second.offences.recent("10.0.0.8", now, window) == 0
    assert second.offences.recent("10.0.0.9", now, window) == 0
    assert [ip for ip, _, _ in SqliteStore(path).load_offences()] == ["10.0.0.7"]


def test_open_store_names_what_it_accepts(tmp_path: Path) -> None:
    from napps.xmpp_ofc.rate_limiter.store import open_store

    assert isinstance(open_store("", tmp_path / "rl.sqlite"), SqliteStore)
    with pytest.raises(ValueError, match="postgresql://"):
        open_store("mysql://x", tmp_path / "rl.sqlite")
