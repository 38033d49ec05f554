"""MAC learning and forwarding decisions, free of Kytos: packet-in in, commands out.

This is the seed's ``handle_packet_in`` (learn the source, then flood or install a
flow plus a packet-out) with what the seed lacked:

* entries age out (the seed's expiry timer never fired: its key was swapped);
* forwarding flows get the hard timeout too (the seed set ``idle_timeout`` twice);
* a MAC seen on a new port is relearned and the flows towards the old port are
  deleted at once, instead of black-holing traffic until they time out;
* learning is bounded per switch and per port, so a MAC flood (macof) costs a fixed
  amount of memory: past the bound new MACs are refused, counted and logged once per
  episode, and their frames are still forwarded (flooded if need be);
* link-local control frames (01:80:c2:00:00:0x: STP, LACP, LLDP, 802.1X) and LLDP
  are never flooded, and a frame whose destination sits on its own in_port is dropped
  rather than sent back.

Time is passed in (``now``, monotonic seconds), so tests never sleep.  The class is
not thread-safe: the Kytos shell calls it under one lock.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from xmpp_ofc import pipeline
from xmpp_ofc.commands import Command, DeleteFlows, InstallFlow, PacketOut
from xmpp_ofc.flow_errors import FlowError
from xmpp_ofc.messages import DecodedPacketIn, PortStatus, PortStatusReason
from xmpp_ofc.packet import (
    ETH_TYPE_LLDP,
    is_link_local_control_mac,
    is_multicast_mac,
)

log = logging.getLogger(__name__)

ZERO_MAC = "00:00:00:00:00:00"
MAX_TIMEOUT = 0xFFFF


@dataclass(frozen=True)
class LearningSettings:
    """Tunables of the learning switch, validated on construction.

    ``mac_aging`` follows the 802.1D default of 300 s; the forwarding flows expire much
    sooner (idle 10 s, hard 30 s), so a stale entry costs at most a flood, not a loop.
    """

    idle_timeout: int = 10
    hard_timeout: int = 30
    mac_aging: float = 300.0
    max_macs_per_switch: int = 4096
    max_macs_per_port: int = 1024
    priority: int = pipeline.PRIORITY_FORWARD

    def __post_init__(self) -> None:
        for name in ("idle_timeout", "hard_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            if not 0 <= value <= MAX_TIMEOUT:
                raise ValueError(f"{name} must be in 0..{MAX_TIMEOUT}, got {value}")
        if self.idle_timeout == 0 and self.hard_timeout == 0:
            raise ValueError("idle_timeout and hard_timeout cannot both be 0 (permanent flows)")
        if not self.mac_aging > 0:
            raise ValueError(f"mac_aging must be > 0, got {self.mac_aging!r}")
        for name in ("max_macs_per_switch", "max_macs_per_port"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not pipeline.PRIORITY_TABLE_MISS < self.priority <= 0xFFFF:
            raise ValueError(f"priority must be in 1..65535, got {self.priority!r}")

    @property
    def flows_can_outlive_entries(self) -> bool:
        """True when a forwarding flow may still exist after its MAC entry aged out."""
        return self.hard_timeout == 0 or self.hard_timeout > self.mac_aging


@dataclass
class _Entry:
    port: int
    last_seen: float


@dataclass
class _SwitchTable:
    """One switch's MACs, oldest-seen first so aging pops from the front."""

    entries: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)
    per_port: Counter[int] = field(default_factory=Counter)
    refused: int = 0
    refused_per_port: Counter[int] = field(default_factory=Counter)
    #: Ports (or None for the switch bound) currently refusing: logs once per episode.
    refusing: set[int | None] = field(default_factory=set)
    moves: int = 0
    #: Our flows the switch refused (OFPT_ERROR, e.g. table full).
    refused_flows: int = 0

    def remove(self, mac: str) -> _Entry:
        entry = self.entries.pop(mac)
        self.per_port[entry.port] -= 1
        if self.per_port[entry.port] <= 0:
            del self.per_port[entry.port]
        return entry

    def add(self, mac: str, port: int, now: float) -> None:
        self.entries[mac] = _Entry(port, now)
        self.per_port[port] += 1


@dataclass(frozen=True)
class SwitchLearningStats:
    """Counters of one switch, for REST and metrics."""

    learned: int
    refused: int
    refused_per_port: dict[int, int]
    moves: int
    refused_flows: int = 0


class LearningSwitch:
    """Per-switch MAC tables and the decision for each packet-in."""

    def __init__(self, settings: LearningSettings | None = None) -> None:
        self.settings = settings or LearningSettings()
        self._tables: dict[str, _SwitchTable] = {}

    # --- the packet-in path ----------------------------------------------------------

    def handle_packet_in(self, packet_in: DecodedPacketIn, now: float) -> list[Command]:
        """Learn from ``packet_in`` and return what to send, in order."""
        frame = packet_in.packet
        src, dst = frame.eth_src, frame.eth_dst
        if src is None or dst is None:
            log.debug("dpid %s: packet-in without Ethernet header dropped", packet_in.dpid)
            return []
        if frame.eth_type == ETH_TYPE_LLDP or is_link_local_control_mac(dst):
            # Link control traffic stays on its link: no learning, no flooding.
            return []
        table = self._tables.setdefault(packet_in.dpid, _SwitchTable())
        commands: list[Command] = []
        if not is_multicast_mac(src) and src != ZERO_MAC:
            commands += self._learn(packet_in.dpid, table, src, packet_in.in_port, now)
        if is_multicast_mac(dst):
            return [*commands, self._packet_out(packet_in, pipeline.OFPP_FLOOD)]
        out_port = self._lookup(table, dst, now)
        if out_port is None:
            return [*commands, self._packet_out(packet_in, pipeline.OFPP_FLOOD)]
        if out_port == packet_in.in_port:
            # The destination lives where the frame came from: the segment already
            # delivered it; sending it back would duplicate it.
            return commands
        flow = pipeline.l2_forwarding(
            in_port=packet_in.in_port,
            eth_dst=dst,
            out_port=out_port,
            idle_timeout=self.settings.idle_timeout,
            hard_timeout=self.settings.hard_timeout,
            priority=self.settings.priority,
        )
        return [
            *commands,
            InstallFlow(packet_in.dpid, flow),
            self._packet_out(packet_in, out_port),
        ]

    @staticmethod
    def _packet_out(packet_in: DecodedPacketIn, out_port: int) -> PacketOut:
        if packet_in.is_buffered:
            return PacketOut(
                dpid=packet_in.dpid,
                in_port=packet_in.in_port,
                out_port=out_port,
                buffer_id=packet_in.buffer_id,
            )
        return PacketOut(
            dpid=packet_in.dpid,
            in_port=packet_in.in_port,
            out_port=out_port,
            data=packet_in.packet.raw,
        )

    def _lookup(self, table: _SwitchTable, mac: str, now: float) -> int | None:
        entry = table.entries.get(mac)
        if entry is None:
            return None
        if now - entry.last_seen > self.settings.mac_aging:
            table.remove(mac)
            return None
        return entry.port

    def _learn(
        self, dpid: str, table: _SwitchTable, mac: str, port: int, now: float
    ) -> list[Command]:
        entry = table.entries.get(mac)
        if entry is not None and entry.port == port:
            entry.last_seen = now
            table.entries.move_to_end(mac)
            return []
        commands: list[Command] = []
        if entry is not None:
            # The host moved (or a cable did): flows towards the old port are wrong now.
            table.remove(mac)
            table.moves += 1
            commands.append(DeleteFlows(dpid, pipeline.l2_delete_towards(mac)))
            log.info("dpid %s: %s moved from port %s to port %s", dpid, mac, entry.port, port)
        self._age_out_front(table, now)
        refusal = self._bound_hit(table, port)
        if refusal is not None:
            self._refuse(dpid, table, mac, port, refusal)
            return commands
        table.refusing.discard(port)
        table.refusing.discard(None)
        table.add(mac, port, now)
        return commands

    def _age_out_front(self, table: _SwitchTable, now: float) -> None:
        """Drop expired entries from the oldest end: amortised O(1) per packet."""
        while table.entries:
            mac, entry = next(iter(table.entries.items()))
            if now - entry.last_seen <= self.settings.mac_aging:
                return
            table.remove(mac)

    def _bound_hit(self, table: _SwitchTable, port: int) -> str | None:
        if len(table.entries) >= self.settings.max_macs_per_switch:
            return "switch"
        if table.per_port[port] >= self.settings.max_macs_per_port:
            return "port"
        return None

    def _refuse(self, dpid: str, table: _SwitchTable, mac: str, port: int, bound: str) -> None:
        table.refused += 1
        table.refused_per_port[port] += 1
        episode_key = None if bound == "switch" else port
        if episode_key not in table.refusing:
            table.refusing.add(episode_key)
            limit = (
                self.settings.max_macs_per_switch
                if bound == "switch"
                else self.settings.max_macs_per_port
            )
            log.warning(
                "dpid %s: MAC table full (%s bound %d); not learning %s on port %s "
                "and further new MACs until there is room (possible MAC flooding)",
                dpid,
                bound,
                limit,
                mac,
                port,
            )

    # --- timers, REST and switch lifecycle -----------------------------------------

    def expire(self, now: float) -> list[Command]:
        """Age out entries on every switch; deletes only when flows could outlive them."""
        commands: list[Command] = []
        for dpid, table in self._tables.items():
            expired = [
                mac
                for mac, entry in table.entries.items()
                if now - entry.last_seen > self.settings.mac_aging
            ]
            for mac in expired:
                table.remove(mac)
                if self.settings.flows_can_outlive_entries:
                    commands.append(DeleteFlows(dpid, pipeline.l2_delete_towards(mac)))
        return commands

    def handle_port_status(self, status: PortStatus) -> list[Command]:
        """Forget the MACs behind a port that went away or lost its link.

        Their hosts are unreachable there; if one shows up elsewhere it is learned at
        once instead of being sent into a dead port until the flows time out.
        """
        if status.reason is not PortStatusReason.DELETE and not status.link_down:
            return []
        table = self._tables.get(status.dpid)
        if table is None:
            return []
        gone = [mac for mac, entry in table.entries.items() if entry.port == status.port_no]
        commands: list[Command] = []
        for mac in gone:
            table.remove(mac)
            commands.append(DeleteFlows(status.dpid, pipeline.l2_delete_towards(mac)))
        table.refused_per_port.pop(status.port_no, None)
        table.refusing.discard(status.port_no)
        return commands

    def restore(self, dpid: str) -> list[Command]:
        """The flows this module needs on a switch that (re)connected or enabled it.

        The dispatcher deleted every flow of ours before, so the switch's MACs are
        relearned from scratch (a reconnect may hide a reboot or a rewiring).
        """
        self._tables[dpid] = _SwitchTable()
        return [InstallFlow(dpid, pipeline.l2_table_miss())]

    def flush(self, dpid: str) -> list[Command]:
        """Forget a switch's MACs and delete its forwarding flows (REST DELETE)."""
        if dpid in self._tables:
            self._tables[dpid] = _SwitchTable()
        return [DeleteFlows(dpid, pipeline.l2_delete_forwarding())]

    def flow_refused(self, error: FlowError) -> None:
        """The switch refused one of our flows: log and count, nothing to roll back.

        The packet-out of the packet that caused the flow went anyway, and the MAC
        entry stays true (the host is where it was seen); without its flow the
        next packets towards that MAC come up through the table-miss flow again.
        """
        table = self._tables.get(error.dpid)
        if table is not None:
            table.refused_flows += 1
        log.warning(
            "dpid %s: switch refused %s of our %s flow %s: %s",
            error.dpid,
            error.command,
            error.kind_name,
            error.flow.get("match"),
            error.reason,
        )

    def forget_switch(self, dpid: str) -> None:
        """Drop all state of a switch that disconnected or disabled this module."""
        self._tables.pop(dpid, None)

    def mac_table(self, dpid: str, now: float) -> list[dict[str, object]]:
        """The live entries of a switch, newest last: ``mac``, ``port``, ``age``."""
        table = self._tables.get(dpid)
        if table is None:
            return []
        return [
            {"mac": mac, "port": entry.port, "age": round(now - entry.last_seen, 3)}
            for mac, entry in table.entries.items()
            if now - entry.last_seen <= self.settings.mac_aging
        ]

    def where_is(self, dpid: str, mac: str, now: float) -> int | None:
        """The port ``mac`` was last seen on, if the entry is still alive."""
        table = self._tables.get(dpid)
        return None if table is None else self._lookup(table, mac.lower(), now)

    def switches(self) -> Iterable[str]:
        """The dpids with state."""
        return tuple(self._tables)

    def stats(self, dpid: str) -> SwitchLearningStats:
        """Counters of one switch (zeros for an unknown one)."""
        table = self._tables.get(dpid, _SwitchTable())
        return SwitchLearningStats(
            learned=len(table.entries),
            refused=table.refused,
            refused_per_port=dict(table.refused_per_port),
            moves=table.moves,
            refused_flows=table.refused_flows,
        )
