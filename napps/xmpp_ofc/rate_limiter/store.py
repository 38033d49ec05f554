"""SQLite persistence of settings, active blocks, offences and a bounded history.

Why SQLite (stdlib): atomic small writes, a file an operator can inspect with the
``sqlite3`` shell, no server. One connection guarded by a lock (Kytos calls us from
many threads; SQLite connections must not be shared unlocked), WAL so readers never
wait for a writer, ``synchronous=NORMAL`` (a power cut may lose the last block, never
corrupt the file).

Schema versions live in ``PRAGMA user_version``; :data:`SCHEMA_VERSION` and
:func:`_migrate` say how to get from each to the next. A file that is not a
database, or fails its integrity check, is moved aside (``<name>.corrupt-<time>``)
with a logged error and a fresh one is started: losing blocks is better than a
controller that cannot start.

I/O errors after opening (disk full, file removed) are logged and swallowed: the
limiter keeps blocking in memory.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from napps.xmpp_ofc.rate_limiter.records import BlockRecord, EventKind, HistoryEvent, LimiterStore
from xmpp_ofc.napp_layout import kytos_base_dir

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
DEFAULT_HISTORY_LIMIT = 1000
#: ``port`` column value of an address-wide block (SQLite keys treat NULLs as distinct).
ALL_PORTS = -1

T = TypeVar("T")

_SCHEMA_V1 = """
CREATE TABLE settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL
);
CREATE TABLE blocks (
    dpid TEXT NOT NULL,
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    server_ports TEXT NOT NULL,
    since REAL NOT NULL,
    expires REAL NOT NULL,
    reason TEXT NOT NULL,
    manual INTEGER NOT NULL,
    packets_per_min REAL,
    payload_bytes_per_min REAL,
    PRIMARY KEY (dpid, ip, port)
);
CREATE TABLE history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    dpid TEXT NOT NULL,
    ip TEXT NOT NULL,
    port INTEGER,
    reason TEXT NOT NULL,
    manual INTEGER NOT NULL,
    packets_per_min REAL,
    payload_bytes_per_min REAL,
    packet_count INTEGER,
    byte_count INTEGER
);
"""


#: v2: repeat offenders (escalation state), so a restart does not reset them.
_SCHEMA_V2 = """
CREATE TABLE offences (
    ip TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    last REAL NOT NULL
);
"""


def open_store(url: str, path: Path, history_limit: int = DEFAULT_HISTORY_LIMIT) -> LimiterStore:
    """The store ``settings.STORE_URL`` names: empty = this SQLite file at ``path``."""
    if not url:
        return SqliteStore(path, history_limit=history_limit)
    if url.startswith(("postgresql://", "postgres://")):
        from napps.xmpp_ofc.rate_limiter.postgres_store import PostgresStore

        return PostgresStore(url, history_limit=history_limit)
    raise ValueError(
        f"rate_limiter STORE_URL {url!r}: leave it empty for the SQLite file, or give"
        " postgresql://user[:password]@host[:port]/database"
    )


def default_path() -> Path:
    """``<kytos_base_dir>/var/lib/kytos/xmpp_ofc/rate_limiter.sqlite`` (Kytos' var dir)."""
    return kytos_base_dir() / "var" / "lib" / "kytos" / "xmpp_ofc" / "rate_limiter.sqlite"


class SqliteStore:
    """The limiter's :class:`~.records.LimiterStore` in one SQLite file."""

    def __init__(self, path: str | Path, history_limit: int = DEFAULT_HISTORY_LIMIT) -> None:
        if history_limit < 1:
            raise ValueError(f"history_limit must be >= 1, got {history_limit}")
        self.path = Path(path)
        self.history_limit = history_limit
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as error:
            self._move_aside(error)
            self._conn = self._open()

    # --- opening ---------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            check = conn.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {check}")
            self._migrate(conn)
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this code's {SCHEMA_VERSION}"
            )
        if version == 0:
            conn.executescript(f"BEGIN; {_SCHEMA_V1} PRAGMA user_version = 1; COMMIT;")
            version = 1
        if version == 1:
            conn.executescript(f"BEGIN; {_SCHEMA_V2} PRAGMA user_version = 2; COMMIT;")
        # Future: if version == 2: ALTER ...; PRAGMA user_version = 3

    def _move_aside(self, error: Exception) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        log.error(
            "rate_limiter store %s is unusable (%s): moved to %s, starting empty",
            self.path,
            error,
            aside,
        )
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.replace(Path(f"{aside}{suffix}"))

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        with self._lock:
            self._conn.close()

    # --- guarded access ----------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _safely(self, what: str, action: Callable[[], T], fallback: T) -> T:
        try:
            return action()
        except sqlite3.Error as error:
            log.error("rate_limiter store %s: %s failed: %s", self.path, what, error)
            return fallback

    # --- settings ------------------------------------------------------------------

    def save_settings(self, settings: dict[str, Any]) -> None:
        """Replace the stored settings."""

        def write() -> None:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO settings (id, body) VALUES (1, ?)",
                    (json.dumps(settings, sort_keys=True),),
                )

        self._safely("saving settings", write, None)

    def load_settings(self) -> dict[str, Any] | None:
        """The stored settings, or None (never saved, or unreadable: logged)."""

        def read() -> dict[str, Any] | None:
            with self._lock:
                row = self._conn.execute("SELECT body FROM settings WHERE id = 1").fetchone()
            if row is None:
                return None
            try:
                body = json.loads(row[0])
            except ValueError:
                log.error("rate_limiter store %s: stored settings are not JSON", self.path)
                return None
            return body if isinstance(body, dict) else None

        return self._safely("loading settings", read, None)

    # --- blocks --------------------------------------------------------------------

    def save_block(self, block: BlockRecord) -> None:
        """Insert or replace one active block."""

        def write() -> None:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    block_row(block),
                )

        self._safely("saving a block", write, None)

    def delete_block(self, dpid: str, ip: str, port: int | None) -> None:
        """Forget one block (it ended)."""

        def write() -> None:
            with self._transaction() as conn:
                conn.execute(
                    "DELETE FROM blocks WHERE dpid = ? AND ip = ? AND port = ?",
                    (dpid, ip, ALL_PORTS if port is None else port),
                )

        self._safely("deleting a block", write, None)

    def load_blocks(self) -> list[BlockRecord]:
        """Every stored block, expired ones included (the limiter decides)."""

        def read() -> list[BlockRecord]:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT dpid, ip, port, server_ports, since, expires, reason, manual,"
                    " packets_per_min, payload_bytes_per_min FROM blocks ORDER BY since"
                ).fetchall()
            return [block_of_row(row) for row in rows]

        return self._safely("loading blocks", read, [])

    # --- offences (escalation state) ------------------------------------------------

    def save_offences(self, ip: str, count: int, last: float) -> None:
        """Insert or replace the offences of one address."""

        def write() -> None:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO offences (ip, count, last) VALUES (?, ?, ?)",
                    (ip, count, last),
                )

        self._safely("saving offences", write, None)

    def forget_offences(self, ip: str) -> None:
        def write() -> None:
            with self._transaction() as conn:
                conn.execute("DELETE FROM offences WHERE ip = ?", (ip,))

        self._safely("forgetting offences", write, None)

    def load_offences(self) -> list[tuple[str, int, float]]:
        """Every stored (ip, count, last)."""

        def read() -> list[tuple[str, int, float]]:
            with self._lock:
                rows = self._conn.execute("SELECT ip, count, last FROM offences").fetchall()
            return [(ip, int(count), float(last)) for ip, count, last in rows]

        return self._safely("loading offences", read, [])

    # --- history -------------------------------------------------------------------

    def append_history(self, event: HistoryEvent) -> None:
        """Add one event and drop the oldest beyond ``history_limit``."""

        def write() -> None:
            with self._transaction() as conn:
                cursor = conn.execute(
                    "INSERT INTO history (at, kind, dpid, ip, port, reason, manual,"
                    " packets_per_min, payload_bytes_per_min, packet_count, byte_count)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    history_row(event),
                )
                conn.execute(
                    "DELETE FROM history WHERE id <= ?",
                    (cursor.lastrowid - self.history_limit,),
                )

        self._safely("appending history", write, None)

    def load_history(self, limit: int) -> list[HistoryEvent]:
        """The newest ``limit`` events, oldest first."""

        def read() -> list[HistoryEvent]:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT at, kind, dpid, ip, port, reason, manual, packets_per_min,"
                    " payload_bytes_per_min, packet_count, byte_count"
                    " FROM history ORDER BY id DESC LIMIT ?",
                    (limit,),
                ).fetchall()
            return [event_of_row(row) for row in reversed(rows)]

        return self._safely("loading history", read, [])


def block_row(block: BlockRecord) -> tuple[Any, ...]:
    """The ``blocks`` row of ``block``, in column order (both stores' schema)."""
    return (
        block.dpid,
        block.ip,
        ALL_PORTS if block.port is None else block.port,
        json.dumps(list(block.server_ports)),
        block.since,
        block.expires,
        block.reason,
        block.manual,
        block.packets_per_min,
        block.payload_bytes_per_min,
    )


def history_row(event: HistoryEvent) -> tuple[Any, ...]:
    """The ``history`` columns after ``id`` of ``event``, in column order."""
    return (
        event.at,
        event.kind.value,
        event.dpid,
        event.ip,
        event.port,
        event.reason,
        event.manual,
        event.packets_per_min,
        event.payload_bytes_per_min,
        event.packet_count,
        event.byte_count,
    )


def block_of_row(row: tuple[Any, ...]) -> BlockRecord:
    dpid, ip, port, server_ports, since, expires, reason, manual, ppm, payload = row
    return BlockRecord(
        dpid=dpid,
        ip=ip,
        port=None if port == ALL_PORTS else port,
        server_ports=tuple(json.loads(server_ports)),
        since=since,
        expires=expires,
        reason=reason,
        manual=bool(manual),
        packets_per_min=ppm,
        payload_bytes_per_min=payload,
    )


def event_of_row(row: tuple[Any, ...]) -> HistoryEvent:
    at, kind, dpid, ip, port, reason, manual, ppm, payload, packets, octets = row
    return HistoryEvent(
        at=at,
        kind=EventKind(kind),
        dpid=dpid,
        ip=ip,
        port=port,
        reason=reason,
        manual=bool(manual),
        packets_per_min=ppm,
        payload_bytes_per_min=payload,
        packet_count=packets,
        byte_count=octets,
    )
