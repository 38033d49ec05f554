"""Decoded, framework-neutral messages the dispatcher hands to the modules.

The dispatcher decodes each OpenFlow message once (pyof objects stay in the Kytos
shell) and routes one of these to the module that owns the cookie.  They are frozen
so that a module cannot change what another module sees, and made of plain values
so that they travel as Kytos event content and turn into JSON (:meth:`to_json`)
for REST, logs and history without a custom encoder.

Event names follow :func:`module_event_name`: ``xmpp_ofc/dispatcher.<module>.<type>``,
each with content ``{"dpid": str, "message": <one of these>}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from xmpp_ofc.packet import ParsedPacket, parse_packet

#: buffer_id of a PACKET_IN whose frame the switch did not buffer (OFP_NO_BUFFER).
NO_BUFFER = 0xFFFFFFFF

DISPATCHER_NAPP = "xmpp_ofc/dispatcher"


class MessageType(StrEnum):
    """What a module can subscribe to."""

    PACKET_IN = "packet_in"
    FLOW_STATS = "flow_stats"
    FLOW_REMOVED = "flow_removed"
    PORT_STATUS = "port_status"
    SWITCH_UP = "switch_up"
    SWITCH_DOWN = "switch_down"


class Control(StrEnum):
    """What the dispatcher tells a module regardless of its subscriptions."""

    #: Install (or reinstall) your flows on this switch: it (re)connected or you were enabled.
    RESTORE = "restore"
    #: You were disabled on this switch; your flows are being deleted; forget its state.
    STOP = "stop"


def module_event_name(module: str, kind: MessageType | Control) -> str:
    """The Kytos event that carries ``kind`` to ``module`` (e.g. ``"l2_switch"``)."""
    return f"{DISPATCHER_NAPP}.{module}.{kind.value}"


class _WireReason(StrEnum):
    """A reason enum whose members are declared in wire order, ``UNKNOWN`` last."""

    @classmethod
    def from_code(cls, code: int):
        """The member for a wire value; a value from a newer spec is UNKNOWN, not an error."""
        members = list(cls)
        return members[code] if 0 <= code < len(members) - 1 else cls["UNKNOWN"]


class PacketInReason(_WireReason):
    """ofp_packet_in_reason (OpenFlow 1.3), in wire order."""

    NO_MATCH = "no_match"
    ACTION = "action"
    INVALID_TTL = "invalid_ttl"
    UNKNOWN = "unknown"


class FlowRemovedReason(_WireReason):
    """ofp_flow_removed_reason (OpenFlow 1.3, plus 1.4's meter delete), in wire order."""

    IDLE_TIMEOUT = "idle_timeout"
    HARD_TIMEOUT = "hard_timeout"
    DELETE = "delete"
    GROUP_DELETE = "group_delete"
    METER_DELETE = "meter_delete"
    UNKNOWN = "unknown"


class PortStatusReason(_WireReason):
    """ofp_port_reason, in wire order."""

    ADD = "add"
    DELETE = "delete"
    MODIFY = "modify"
    UNKNOWN = "unknown"


def _frozen_match(match: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(match))


def _shallow_json(message: Any) -> dict[str, Any]:
    """Fields as a dict, with ``match`` and reasons turned into plain values.

    ``dataclasses.asdict`` cannot copy the read-only match mapping, hence this.
    """
    result = {item.name: getattr(message, item.name) for item in fields(message)}
    for key, value in result.items():
        if isinstance(value, Mapping):
            result[key] = dict(value)
        elif isinstance(value, StrEnum):
            result[key] = str(value)
    return result


@dataclass(frozen=True)
class DecodedPacketIn:
    """A PACKET_IN with its frame parsed.

    ``cookie`` is the cookie of the flow that sent the packet up, which is what routes
    it; ``buffer_id`` is :data:`NO_BUFFER` when the whole frame is in ``packet.raw``.
    """

    dpid: str
    in_port: int
    reason: PacketInReason
    table_id: int
    cookie: int
    buffer_id: int
    packet: ParsedPacket
    total_len: int

    @classmethod
    def from_frame(
        cls,
        *,
        dpid: str,
        in_port: int,
        data: bytes,
        reason: PacketInReason | int = PacketInReason.NO_MATCH,
        table_id: int = 0,
        cookie: int = 0,
        buffer_id: int = NO_BUFFER,
        total_len: int | None = None,
    ) -> DecodedPacketIn:
        """Build one from the raw fields of a PACKET_IN (the shell's decoder and tests)."""
        if isinstance(reason, int) and not isinstance(reason, PacketInReason):
            reason = PacketInReason.from_code(reason)
        return cls(
            dpid=dpid,
            in_port=in_port,
            reason=reason,
            table_id=table_id,
            cookie=cookie,
            buffer_id=buffer_id,
            packet=parse_packet(data),
            total_len=len(data) if total_len is None else total_len,
        )

    @property
    def is_buffered(self) -> bool:
        """True when the switch kept the frame and a packet-out must name its buffer."""
        return self.buffer_id != NO_BUFFER

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values; the frame as hex next to its parsed fields."""
        packet = asdict(self.packet)
        packet["raw"] = self.packet.raw.hex()
        packet["vlans"] = [asdict(tag) for tag in self.packet.vlans]
        packet["ipv6_ext_headers"] = list(self.packet.ipv6_ext_headers)
        return {
            "dpid": self.dpid,
            "in_port": self.in_port,
            "reason": str(self.reason),
            "table_id": self.table_id,
            "cookie": self.cookie,
            "buffer_id": self.buffer_id,
            "total_len": self.total_len,
            "packet": packet,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DecodedPacketIn:
        """Inverse of :meth:`to_json`; the frame is parsed again from its hex."""
        return cls.from_frame(
            dpid=data["dpid"],
            in_port=data["in_port"],
            data=bytes.fromhex(data["packet"]["raw"]),
            reason=PacketInReason(data["reason"]),
            table_id=data["table_id"],
            cookie=data["cookie"],
            buffer_id=data["buffer_id"],
            total_len=data["total_len"],
        )


@dataclass(frozen=True)
class FlowStatsEntry:
    """One entry of a flow-stats reply; ``match`` uses flow_manager field names."""

    dpid: str
    table_id: int
    cookie: int
    priority: int
    match: Mapping[str, Any]
    packet_count: int
    byte_count: int
    duration_sec: int
    duration_nsec: int = 0
    idle_timeout: int = 0
    hard_timeout: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "match", _frozen_match(self.match))

    @property
    def duration(self) -> float:
        """Seconds the flow has existed."""
        return self.duration_sec + self.duration_nsec / 1e9

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values."""
        return _shallow_json(self)


@dataclass(frozen=True)
class FlowStatsReply:
    """The entries of one (reassembled) flow-stats reply that one module owns."""

    dpid: str
    entries: tuple[FlowStatsEntry, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"dpid": self.dpid, "entries": [entry.to_json() for entry in self.entries]}


@dataclass(frozen=True)
class FlowRemoved:
    """A FLOW_REMOVED: the flow, why it went, and its final counters."""

    dpid: str
    cookie: int
    reason: FlowRemovedReason
    table_id: int
    priority: int
    match: Mapping[str, Any]
    packet_count: int
    byte_count: int
    duration_sec: int
    duration_nsec: int = 0
    idle_timeout: int = 0
    hard_timeout: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "match", _frozen_match(self.match))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values."""
        return _shallow_json(self)


@dataclass(frozen=True)
class PortStatus:
    """A PORT_STATUS: a port was added, deleted or changed (e.g. link down)."""

    dpid: str
    port_no: int
    reason: PortStatusReason
    name: str = ""
    hw_addr: str = ""
    link_down: bool = False
    admin_down: bool = False

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values."""
        return _shallow_json(self)


@dataclass(frozen=True)
class SwitchChange:
    """A switch came up (handshake completed) or went down (connection lost)."""

    dpid: str
    up: bool

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values."""
        return _shallow_json(self)
