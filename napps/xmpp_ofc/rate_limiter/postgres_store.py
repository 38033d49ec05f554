"""PostgreSQL persistence of the rate limiter: the same store as SQLite's, shared.

Why PostgreSQL besides the embedded SQLite file: several controller processes on
one network must see one set of blocks, settings, offences and history (issue 12),
and a server outlives any one of them. SQLite stays the default; this store is
chosen by ``STORE_URL`` (``postgresql://...``, see ``settings.py``).

Same contract as :class:`.store.SqliteStore` (``records.LimiterStore``): every call
is one transaction, and errors are logged and swallowed, never raised, so a database
that goes away never stops the controller from blocking a flood: it keeps enforcing
from memory. While the server is unreachable, calls fail fast (no reconnect attempt
more often than every ``RETRY_AFTER_S``); the outage and the recovery are each
logged once.

Schema versions live in ``rate_limiter_schema``; :data:`SCHEMA_VERSION` and
:data:`_MIGRATIONS` say how to get from each to the next (version 2 = SQLite's v2:
the same tables and columns).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import psycopg.conninfo

from napps.xmpp_ofc.rate_limiter.records import BlockRecord, HistoryEvent
from napps.xmpp_ofc.rate_limiter.store import (
    ALL_PORTS,
    DEFAULT_HISTORY_LIMIT,
    block_of_row,
    block_row,
    event_of_row,
    history_row,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
CONNECT_TIMEOUT_S = 3
RETRY_AFTER_S = 5.0
#: Serialises migrations of concurrent controllers starting at once.
MIGRATION_LOCK_KEY = 0x78_6F_66_63  # "xofc"

T = TypeVar("T")

_MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE rate_limiter_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL
);
CREATE TABLE rate_limiter_blocks (
    dpid TEXT NOT NULL,
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    server_ports TEXT NOT NULL,
    since DOUBLE PRECISION NOT NULL,
    expires DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL,
    manual BOOLEAN NOT NULL,
    packets_per_min DOUBLE PRECISION,
    payload_bytes_per_min DOUBLE PRECISION,
    PRIMARY KEY (dpid, ip, port)
);
CREATE TABLE rate_limiter_history (
    id BIGSERIAL PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    dpid TEXT NOT NULL,
    ip TEXT NOT NULL,
    port INTEGER,
    reason TEXT NOT NULL,
    manual BOOLEAN NOT NULL,
    packets_per_min DOUBLE PRECISION,
    payload_bytes_per_min DOUBLE PRECISION,
    packet_count BIGINT,
    byte_count BIGINT
);
""",
    2: """
CREATE TABLE rate_limiter_offences (
    ip TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    last DOUBLE PRECISION NOT NULL
);
""",
}


class StoreSchemaError(RuntimeError):
    """The database holds a newer schema than this code knows."""


class PostgresStore:
    """The limiter's :class:`~.records.LimiterStore` in a PostgreSQL database."""

    def __init__(self, url: str, history_limit: int = DEFAULT_HISTORY_LIMIT) -> None:
        if history_limit < 1:
            raise ValueError(f"history_limit must be >= 1, got {history_limit}")
        self.url = url
        self.history_limit = history_limit
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None
        self._failed_at: float | None = None
        with self._lock:
            try:
                self._connect()
            except psycopg.OperationalError as error:
                # Start anyway: switching and blocking must not wait for the database.
                self._failed("connecting", error, None)

    # --- connection ------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
                self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    @staticmethod
    def _migrate(conn: psycopg.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS rate_limiter_schema (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM rate_limiter_schema").fetchone()
        version = row[0] or 0
        if version > SCHEMA_VERSION:
            raise StoreSchemaError(
                f"rate_limiter schema version {version} is newer than this code's"
                f" {SCHEMA_VERSION}: upgrade this controller"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute(_MIGRATIONS[target])
            conn.execute("INSERT INTO rate_limiter_schema (version) VALUES (%s)", (target,))

    def _safely(self, what: str, action: Callable[[psycopg.Connection], T], fallback: T) -> T:
        with self._lock:
            conn = self._conn
            if conn is None or conn.closed:
                if (
                    self._failed_at is not None
                    and time.monotonic() - self._failed_at < RETRY_AFTER_S
                ):
                    return fallback
                try:
                    conn = self._connect()
                except psycopg.Error as error:
                    return self._failed(what, error, fallback)
                if self._failed_at is not None:
                    log.warning("rate_limiter store %s: reachable again", _safe_url(self.url))
                    self._failed_at = None
            try:
                with conn.transaction():
                    return action(conn)
            except psycopg.OperationalError as error:
                conn.close()
                self._conn = None
                return self._failed(what, error, fallback)
            except psycopg.Error as error:
                log.error("rate_limiter store %s: %s failed: %s", _safe_url(self.url), what, error)
                return fallback

    def _failed(self, what: str, error: Exception, fallback: T) -> T:
        if self._failed_at is None:
            log.error(
                "rate_limiter store %s is unreachable (%s failed: %s): enforcing from memory,"
                " retrying every %.0f s",
                _safe_url(self.url),
                what,
                error,
                RETRY_AFTER_S,
            )
        self._failed_at = time.monotonic()
        return fallback

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # --- settings ----------------------------------------------------------------------

    def save_settings(self, settings: dict[str, Any]) -> None:
        self._safely(
            "saving settings",
            lambda conn: conn.execute(
                "INSERT INTO rate_limiter_settings (id, body) VALUES (1, %s)"
                " ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
                (json.dumps(settings, sort_keys=True),),
            ),
            None,
        )

    def load_settings(self) -> dict[str, Any] | None:
        def read(conn: psycopg.Connection) -> dict[str, Any] | None:
            row = conn.execute("SELECT body FROM rate_limiter_settings WHERE id = 1").fetchone()
            if row is None:
                return None
            try:
                body = json.loads(row[0])
            except ValueError:
                log.error("rate_limiter store: stored settings are not JSON")
                return None
            return body if isinstance(body, dict) else None

        return self._safely("loading settings", read, None)

    # --- blocks ------------------------------------------------------------------------

    def save_block(self, block: BlockRecord) -> None:
        self._safely(
            "saving a block",
            lambda conn: conn.execute(
                "INSERT INTO rate_limiter_blocks VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (dpid, ip, port) DO UPDATE SET server_ports = EXCLUDED.server_ports,"
                " since = EXCLUDED.since, expires = EXCLUDED.expires, reason = EXCLUDED.reason,"
                " manual = EXCLUDED.manual, packets_per_min = EXCLUDED.packets_per_min,"
                " payload_bytes_per_min = EXCLUDED.payload_bytes_per_min",
                block_row(block),
            ),
            None,
        )

    def delete_block(self, dpid: str, ip: str, port: int | None) -> None:
        self._safely(
            "deleting a block",
            lambda conn: conn.execute(
                "DELETE FROM rate_limiter_blocks WHERE dpid = %s AND ip = %s AND port = %s",
                (dpid, ip, ALL_PORTS if port is None else port),
            ),
            None,
        )

    def load_blocks(self) -> list[BlockRecord]:
        def read(conn: psycopg.Connection) -> list[BlockRecord]:
            rows = conn.execute(
                "SELECT dpid, ip, port, server_ports, since, expires, reason, manual,"
                " packets_per_min, payload_bytes_per_min FROM rate_limiter_blocks ORDER BY since"
            ).fetchall()
            return [block_of_row(row) for row in rows]

        return self._safely("loading blocks", read, [])

    # --- offences ----------------------------------------------------------------------

    def save_offences(self, ip: str, count: int, last: float) -> None:
        self._safely(
            "saving offences",
            lambda conn: conn.execute(
                "INSERT INTO rate_limiter_offences (ip, count, last) VALUES (%s, %s, %s)"
                " ON CONFLICT (ip) DO UPDATE SET count = EXCLUDED.count, last = EXCLUDED.last",
                (ip, count, last),
            ),
            None,
        )

    def forget_offences(self, ip: str) -> None:
        self._safely(
            "forgetting offences",
            lambda conn: conn.execute("DELETE FROM rate_limiter_offences WHERE ip = %s", (ip,)),
            None,
        )

    def load_offences(self) -> list[tuple[str, int, float]]:
        def read(conn: psycopg.Connection) -> list[tuple[str, int, float]]:
            rows = conn.execute("SELECT ip, count, last FROM rate_limiter_offences").fetchall()
            return [(ip, int(count), float(last)) for ip, count, last in rows]

        return self._safely("loading offences", read, [])

    # --- history -----------------------------------------------------------------------

    def append_history(self, event: HistoryEvent) -> None:
        def write(conn: psycopg.Connection) -> None:
            row = conn.execute(
                "INSERT INTO rate_limiter_history (at, kind, dpid, ip, port, reason, manual,"
                " packets_per_min, payload_bytes_per_min, packet_count, byte_count)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                history_row(event),
            ).fetchone()
            conn.execute(
                "DELETE FROM rate_limiter_history WHERE id <= %s",
                (row[0] - self.history_limit,),
            )

        self._safely("appending history", write, None)

    def load_history(self, limit: int) -> list[HistoryEvent]:
        def read(conn: psycopg.Connection) -> list[HistoryEvent]:
            rows = conn.execute(
                "SELECT at, kind, dpid, ip, port, reason, manual, packets_per_min,"
                " payload_bytes_per_min, packet_count, byte_count"
                " FROM rate_limiter_history ORDER BY id DESC LIMIT %s",
                (limit,),
            ).fetchall()
            return [event_of_row(row) for row in reversed(rows)]

        return self._safely("loading history", read, [])


def _safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://(unparsable URL)"
    user, host, port = info.get("user", ""), info.get("host", ""), info.get("port", "")
    return f"postgresql://{user}@{host}:{port}/{info.get('dbname', '')}"
