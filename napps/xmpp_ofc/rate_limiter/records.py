"""What the rate limiter remembers beyond one poll: blocks and block/unblock history.

Plain frozen values shared by the policy (:mod:`.limiter`) and the SQLite store
(:mod:`.store`), so neither imports the other. Times are wall-clock seconds
(``time.time()``): they must survive a controller restart, which monotonic time
does not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Protocol


class EventKind(StrEnum):
    """What happened to a client."""

    BLOCK = "block"
    #: Blocked again while blocked: new expiry and reason, not a new block (not counted).
    EXTEND = "extend"
    UNBLOCK = "unblock"
    #: Over the threshold but not blocked (monitor-only mode, whitelisted, metered).
    FLAG = "flag"
    #: The switch refused the drop flow (OFPT_ERROR, e.g. table full): not blocked.
    BLOCK_FAILED = "block_failed"


class UnblockReason(StrEnum):
    """Why a block ended (the label of the unblock counter)."""

    EXPIRED = "expired"
    MANUAL = "manual"
    WHITELISTED = "whitelisted"
    #: Its address became one of ``protected_addresses``.
    PROTECTED = "protected"
    STOPPED = "module_stopped"


@dataclass(frozen=True)
class BlockRecord:
    """One active block: a client (``port`` set) or a whole address (``port`` None)."""

    dpid: str
    ip: str
    port: int | None
    #: XMPP ports the drop flows cover.
    server_ports: tuple[int, ...]
    since: float
    expires: float
    reason: str
    manual: bool
    packets_per_min: float | None = None
    payload_bytes_per_min: float | None = None

    def remaining(self, wall_now: float) -> float:
        """Seconds left (negative once expired)."""
        return self.expires - wall_now

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values for REST."""
        data = asdict(self)
        data["server_ports"] = list(self.server_ports)
        return data


@dataclass(frozen=True)
class HistoryEvent:
    """One block, unblock or flag, with the counters that led to it."""

    at: float
    kind: EventKind
    dpid: str
    ip: str
    port: int | None
    reason: str
    manual: bool = False
    packets_per_min: float | None = None
    payload_bytes_per_min: float | None = None
    packet_count: int | None = None
    byte_count: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values for REST."""
        data = asdict(self)
        data["kind"] = self.kind.value
        return data


class LimiterStore(Protocol):
    """Where the limiter persists: :class:`.store.SqliteStore` (embedded default) or
    :class:`.postgres_store.PostgresStore` (state shared by several controllers).

    Implementations log and swallow their own I/O errors: a full disk must not stop
    the controller from blocking a flood.
    """

    def save_settings(self, settings: dict[str, Any]) -> None: ...

    def load_settings(self) -> dict[str, Any] | None: ...

    def save_block(self, block: BlockRecord) -> None: ...

    def delete_block(self, dpid: str, ip: str, port: int | None) -> None: ...

    def load_blocks(self) -> list[BlockRecord]: ...

    def append_history(self, event: HistoryEvent) -> None: ...

    def load_history(self, limit: int) -> list[HistoryEvent]: ...

    def save_offences(self, ip: str, count: int, last: float) -> None: ...

    def forget_offences(self, ip: str) -> None: ...

    def load_offences(self) -> list[tuple[str, int, float]]: ...

    def close(self) -> None: ...
