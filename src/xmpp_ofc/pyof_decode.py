"""pyof OpenFlow 1.3 messages -> the framework-neutral messages of :mod:`xmpp_ofc.messages`.

The dispatcher decodes each switch message once, here, and hands modules plain
frozen values; no module ever touches pyof.  Every function takes what
``kytos/of_core`` publishes (pyof objects whose fields are either plain values or
pyof ``GenericType`` wrappers; flow-stats bodies come as the pyof-free
``flow_stats_codec.FlowStatsRecord``) and returns ``None`` for a message that lacks what
the decoded form needs, instead of raising: messages come from switches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from xmpp_ofc.messages import (
    DecodedPacketIn,
    FlowRemoved,
    FlowRemovedReason,
    FlowStatsEntry,
    PacketInReason,
    PortStatus,
    PortStatusReason,
)
from xmpp_ofc.openflow.flow_removed_codec import FlowRemovedRecord
from xmpp_ofc.openflow.flow_stats_codec import FlowStatsRecord
from xmpp_ofc.openflow.match import match_to_dict
from xmpp_ofc.openflow.packet_in_codec import PacketInRecord
from xmpp_ofc.openflow.validation import as_int

log = logging.getLogger(__name__)

#: ofp_port_config / ofp_port_state bits we report.
OFPPC_PORT_DOWN = 1
OFPPS_LINK_DOWN = 1


def _value(field: Any) -> Any:
    return getattr(field, "value", field)


def _struct_record(message: Any) -> PacketInRecord | None:
    """The plain fields of our of_core's struct-decoded packet-in; None for a pyof one."""
    record = getattr(message, "record", None)
    return record if isinstance(record, PacketInRecord) else None


def _record_of_pyof(message: Any) -> PacketInRecord:
    """pyof's PacketIn (upstream of_core) as the record our of_core decodes with struct."""
    return PacketInRecord(
        xid=as_int(message.header.xid),
        buffer_id=as_int(message.buffer_id),
        total_len=as_int(message.total_len),
        reason=as_int(message.reason),
        table_id=as_int(message.table_id),
        cookie=as_int(message.cookie),
        match=match_to_dict(message.match),
        data=bytes(_value(message.data) or b""),
    )


def packet_in(dpid: str, message: Any) -> DecodedPacketIn | None:
    """A PACKET_IN with its frame parsed; None when it names no in_port.

    of_core's struct-decoded packet-ins (a ``record`` of plain fields) skip pyof.
    """
    record = _struct_record(message)
    if record is None:
        record = _record_of_pyof(message)
    if record.in_port is None:
        log.warning("dpid %s: PACKET_IN without an in_port match field ignored", dpid)
        return None
    if not isinstance(record.in_port, int):  # "4096/1": in_port has no mask in OpenFlow
        log.warning("dpid %s: PACKET_IN with a masked in_port %r ignored", dpid, record.in_port)
        return None
    return DecodedPacketIn.from_frame(
        dpid=dpid,
        in_port=int(record.in_port),
        data=record.data,
        reason=PacketInReason.from_code(record.reason),
        table_id=record.table_id,
        cookie=record.cookie,
        buffer_id=record.buffer_id,
        total_len=record.total_len,
    )


def flow_removed(dpid: str, message: Any) -> FlowRemoved:
    """A FLOW_REMOVED with its match in flow_manager field names.

    of_core's struct-decoded flow-removeds (a ``record`` of plain fields) skip pyof.
    """
    record = getattr(message, "record", None)
    if isinstance(record, FlowRemovedRecord):
        return FlowRemoved(
            dpid=dpid,
            cookie=record.cookie,
            reason=FlowRemovedReason.from_code(record.reason),
            table_id=record.table_id,
            priority=record.priority,
            match=dict(record.match),
            packet_count=record.packet_count,
            byte_count=record.byte_count,
            duration_sec=record.duration_sec,
            duration_nsec=record.duration_nsec,
            idle_timeout=record.idle_timeout,
            hard_timeout=record.hard_timeout,
        )
    return FlowRemoved(
        dpid=dpid,
        cookie=as_int(message.cookie),
        reason=FlowRemovedReason.from_code(as_int(message.reason)),
        table_id=as_int(message.table_id),
        priority=as_int(message.priority),
        match=match_to_dict(message.match),
        packet_count=as_int(message.packet_count),
        byte_count=as_int(message.byte_count),
        duration_sec=as_int(message.duration_sec),
        duration_nsec=as_int(message.duration_nsec),
        idle_timeout=as_int(message.idle_timeout),
        hard_timeout=as_int(message.hard_timeout),
    )


def flow_stats_entry(dpid: str, stats: Any) -> FlowStatsEntry:
    """One entry of a flow-stats (OFPMP_FLOW) reply body."""
    return FlowStatsEntry(
        dpid=dpid,
        table_id=as_int(stats.table_id),
        cookie=as_int(stats.cookie),
        priority=as_int(stats.priority),
        match=match_to_dict(stats.match),
        packet_count=as_int(stats.packet_count),
        byte_count=as_int(stats.byte_count),
        duration_sec=as_int(stats.duration_sec),
        duration_nsec=as_int(stats.duration_nsec),
        idle_timeout=as_int(stats.idle_timeout),
        hard_timeout=as_int(stats.hard_timeout),
    )


def cookie_of(stats_or_message: Any) -> int:
    """The cookie of a pyof flow-stats entry, packet-in or flow-removed (routing needs no more)."""
    record = getattr(stats_or_message, "record", None)
    if isinstance(record, PacketInRecord | FlowRemovedRecord):
        return record.cookie
    return as_int(stats_or_message.cookie)


def flow_stats_entries(dpid: str, body: Iterable[Any]) -> list[FlowStatsEntry]:
    """Every entry of a flow-stats reply body.

    of_core decodes OFPMP_FLOW replies without pyof (``FlowStatsRecord``, the
    fast path); pyof FlowStats are still accepted (other producers, tests).
    """
    return [
        stats.to_entry(dpid)
        if isinstance(stats, FlowStatsRecord)
        else flow_stats_entry(dpid, stats)
        for stats in body
    ]


def port_status(dpid: str, message: Any) -> PortStatus:
    """A PORT_STATUS: which port, why, and whether it is down."""
    port = message.desc
    name = _value(port.name)
    hw_addr = _value(port.hw_addr)
    return PortStatus(
        dpid=dpid,
        port_no=as_int(port.port_no),
        reason=PortStatusReason.from_code(as_int(message.reason)),
        name=name.rstrip("\0") if isinstance(name, str) else str(name or ""),
        hw_addr=str(hw_addr or "").lower(),
        link_down=bool(as_int(port.state) & OFPPS_LINK_DOWN),
        admin_down=bool(as_int(port.config) & OFPPC_PORT_DOWN),
    )
