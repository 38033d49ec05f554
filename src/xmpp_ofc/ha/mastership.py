"""Mastership of each switch, elected through PostgreSQL with a lease and fenced by generation.

Every controller process calls :meth:`Mastership.claim` for each switch it is
connected to, about once a second. One SQL statement, atomic in the database,
decides: the claimer becomes (or stays) the holder when it already is the holder
or when the holder's lease has run out; otherwise it is told who holds it. The
lease is measured on the database's clock (``now()``), so the controllers' clocks
never matter.

Each change of holder increments the switch's ``generation``. The new master sends
it to the switch as the ROLE_REQUEST ``generation_id``; the switch then refuses any
older generation, so a master that was partitioned away (or frozen, then thawed)
and comes back believing it still leads cannot overwrite the new one
(``xmpp_ofc.openflow.role``). Renewing one's own lease keeps the generation.

Why a lease row and not a session advisory lock: an advisory lock dies with the
database session, so a master whose connection blips loses mastership at once, and
a lock carries no generation to fence with. A lease survives short blips and the
row is the generation counter. What a database outage means is the caller's
decision: :class:`MastershipUnavailable` is raised, and the caller keeps the role it
has (a master keeps enforcing; a slave stays read-only), because the switch's
generation check protects against two masters anyway.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import psycopg

#: Seconds a claim holds; renew well within it (every second for the default 3 s).
DEFAULT_LEASE_S = 3.0
CONNECT_TIMEOUT_S = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS controller_mastership (
    dpid TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    generation BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
)
"""

_CLAIM = """
INSERT INTO controller_mastership AS m (dpid, holder, generation, expires_at)
VALUES (%(dpid)s, %(me)s, 1, now() + make_interval(secs => %(lease)s))
ON CONFLICT (dpid) DO UPDATE SET
    holder = EXCLUDED.holder,
    generation = CASE WHEN m.holder = EXCLUDED.holder THEN m.generation ELSE m.generation + 1 END,
    expires_at = EXCLUDED.expires_at
WHERE m.holder = EXCLUDED.holder OR m.expires_at < now()
RETURNING holder, generation, extract(epoch FROM expires_at - now())
"""

_CURRENT = """
SELECT holder, generation, extract(epoch FROM expires_at - now())
FROM controller_mastership WHERE dpid = %(dpid)s
"""


class MastershipUnavailable(RuntimeError):
    """The database could not be asked: keep the role you have."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to one claim."""

    dpid: str
    holder: str
    generation: int
    lease_left_s: float
    me: str

    @property
    def master(self) -> bool:
        return self.holder == self.me


class Mastership:
    """One controller's claims, as ``controller_id``, on the database at ``url``."""

    def __init__(self, url: str, controller_id: str, lease_s: float = DEFAULT_LEASE_S) -> None:
        if not controller_id:
            raise ValueError("controller_id must not be empty")
        if lease_s <= 0:
            raise ValueError(f"lease_s must be > 0, got {lease_s}")
        self.url = url
        self.controller_id = controller_id
        self.lease_s = lease_s
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
            self._conn.execute(_SCHEMA)
        return self._conn

    def _query(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        with self._lock:
            try:
                return self._connection().execute(sql, params).fetchone()
            except psycopg.OperationalError as error:
                if self._conn is not None:
                    self._conn.close()
                raise MastershipUnavailable(f"mastership database unreachable: {error}") from error

    def claim(self, dpid: str) -> Claim:
        """Become or stay master of ``dpid`` if its lease allows; who holds it either way."""
        params = {"dpid": dpid, "me": self.controller_id, "lease": self.lease_s}
        row = self._query(_CLAIM, params) or self._query(_CURRENT, params)
        if row is None:  # deleted between the two statements: ask again next time
            raise MastershipUnavailable(f"mastership of {dpid} changed while asking")
        holder, generation, left = row
        return Claim(dpid, holder, int(generation), float(left), self.controller_id)

    def release(self, dpid: str) -> None:
        """Give up ``dpid`` now (clean shutdown): another controller may claim it at once."""
        self._query(
            "UPDATE controller_mastership SET expires_at = now() - interval '1 second'"
            " WHERE dpid = %(dpid)s AND holder = %(me)s RETURNING dpid",
            {"dpid": dpid, "me": self.controller_id},
        )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
