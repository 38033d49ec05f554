"""The rate limiter's per-switch registry, its history, and the snapshots REST reads.

:class:`SwitchRegistry` is the base of every piece of
:class:`~.limiter.RateLimiter`: it names the state they share (settings, store, one
:class:`~.state.SwitchState` per dpid, history, counters, the one lock) and finds a
switch's state. The snapshots (monitored clients, blocks, history, status) are
here because they only read that state; each takes the lock, so a REST call never
sees a half-handled event.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

from napps.xmpp_ofc.rate_limiter.capture_bounds import CaptureBounds, capture_meter_id
from napps.xmpp_ofc.rate_limiter.errors import UnknownSwitchError
from napps.xmpp_ofc.rate_limiter.escalation import OffenceLog
from napps.xmpp_ofc.rate_limiter.prefix_blocks import PrefixBlocks
from napps.xmpp_ofc.rate_limiter.records import HistoryEvent, LimiterStore
from napps.xmpp_ofc.rate_limiter.settings_model import LimiterSettings, header_bytes
from napps.xmpp_ofc.rate_limiter.state import SwitchState, locked


class SwitchRegistry:
    """Shared state of the limiter's pieces; set up by :class:`~.limiter.RateLimiter`."""

    settings: LimiterSettings
    store: LimiterStore | None
    history_limit: int
    _history: deque[HistoryEvent]
    _switches: dict[str, SwitchState]
    _lock: threading.RLock
    blocks_total: Counter[str]  # "auto" / "manual" / "reconnect"
    unblocks_total: Counter[str]  # by UnblockReason
    flags_total: int
    meter_fallbacks: int
    flow_errors_total: Counter[str]  # by flow kind
    capture: CaptureBounds
    offences: OffenceLog
    unmonitored_total: Counter[str]  # by capture_bounds.Unmonitored
    prefix_blocks: PrefixBlocks  # connection-flood blocks of a /24 or /64

    def _switch(self, dpid: str) -> SwitchState:
        switch = self._switches.get(dpid)
        if switch is None:
            switch = self._switches[dpid] = SwitchState()
        return switch

    def _known_switch(self, dpid: str) -> SwitchState:
        switch = self._switches.get(dpid)
        if switch is None:
            raise UnknownSwitchError(f"switch {dpid!r} is not known to the rate limiter")
        return switch

    def _selected(self, dpid: str | None) -> list[tuple[str, SwitchState]]:
        if dpid is None:
            return sorted(self._switches.items())
        return [(dpid, self._known_switch(dpid))]

    def _record(self, event: HistoryEvent) -> None:
        self._history.append(event)
        if self.store is not None:
            self.store.append_history(event)

    @locked
    def known_switches(self) -> list[str]:
        """Every dpid with state, sorted."""
        return sorted(self._switches)

    @locked
    def monitored(self, dpid: str | None = None) -> list[dict[str, Any]]:
        """Monitored clients with their last rates (REST, dashboard, metrics)."""
        result = []
        for switch_id, switch in self._selected(dpid):
            for client, m in switch.clients.items():
                rate = m.tracker.rate
                last = m.tracker.last
                result.append(
                    {
                        "dpid": switch_id,
                        "ip": client.ip,
                        "port": client.port,
                        "server_port": m.server_port,
                        "since": m.since,
                        "whitelisted": m.whitelisted,
                        "meter_id": m.meter_id,
                        "over_threshold": m.flagged,
                        "packets_per_s": None if rate is None else rate.packets_per_s,
                        "packets_per_min": None if rate is None else rate.packets_per_min,
                        "bytes_per_s": None if rate is None else rate.bytes_per_s,
                        "payload_bytes_per_min": None
                        if rate is None
                        else rate.payload_bytes_per_min(header_bytes(client.ip_version)),
                        "packet_count": None if last is None else last.packet_count,
                        "byte_count": None if last is None else last.byte_count,
                    }
                )
        return result

    @locked
    def blocked(self, dpid: str | None = None) -> list[dict[str, Any]]:
        """Active blocks with since, expires and reason."""
        return [
            block.to_json()
            for _, switch in self._selected(dpid)
            for block in sorted(switch.blocks.values(), key=lambda b: b.since)
        ]

    @locked
    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Newest-last block/unblock/flag events (bounded)."""
        events = list(self._history)
        if limit is not None:
            events = events[-limit:] if limit > 0 else []
        return [event.to_json() for event in events]

    @locked
    def status(self, wall_now: float | None = None) -> dict[str, Any]:
        """Per switch: connection, effective mode (and why it differs), counts."""
        switches = {}
        for dpid, switch in sorted(self._switches.items()):
            mode, note = self._effective_mode(switch)
            switches[dpid] = {
                "connected": switch.up,
                "mode": mode.value,
                "mode_note": note,
                "monitored": len(switch.clients),
                "blocked": len(switch.blocks),
                "capture_meter_id": capture_meter_id(switch.meter_support),
                "meter_support": None
                if switch.meter_support is None
                else {
                    "max_meter": switch.meter_support.max_meter,
                    "band_drop": switch.meter_support.band_drop,
                    "pps": switch.meter_support.pps,
                },
            }
        return {
            "mode": self.settings.mode.value,
            "switches": switches,
            "blocks_total": dict(self.blocks_total),
            "unblocks_total": dict(self.unblocks_total),
            "flags_total": self.flags_total,
            "flow_errors_total": dict(self.flow_errors_total),
            "meter_fallbacks": self.meter_fallbacks,
            "unmonitored_total": dict(self.unmonitored_total),
            "prefix_blocks": [
                block.to_json(time.time() if wall_now is None else wall_now)
                for block in self.prefix_blocks.all()
            ],
            "capture": {
                "meter_rate_pps": self.capture.meter_rate_pps,
                "meter_burst": self.capture.meter_burst,
                "max_per_switch": self.capture.max_per_switch,
                "max_per_address": self.capture.max_per_address,
            },
        }
