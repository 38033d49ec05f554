"""What flow_manager has installed on each switch, and how to replay it.

The store keeps, per dpid, the canonical form (``canonical_flow``) of every
flow added through flow_manager that has not been deleted or removed since,
so the flows can be re-sent when the switch reconnects and survive a
controller restart (a JSON file, replaced atomically by :meth:`FlowStore.flush`).

Rules, following OpenFlow 1.3 semantics rather than upstream's heuristics:

* add: replaces a stored flow with the same table, priority and match
  (that is what the switch does with an identical ADD);
* delete_strict: removes the stored flow with the same table (or 255),
  priority and match, whose cookie matches under cookie_mask;
* delete (non-strict): removes every stored flow the delete covers: same
  table (or 255), the delete's match equal to or more general than the
  flow's, cookie under cookie_mask, and the out_port/out_group filters;
* flow removed by the switch (timeout or someone else's delete) or refused
  with an OFPT_ERROR: drops the stored flow with the same table, priority,
  match and cookie, so it is not replayed forever;
* a flow whose hard timeout has run out is not replayed; one still running is
  replayed with the time it has left, so a 5-minute block stays 5 minutes;
* a flow with an idle timeout is not kept (unless ``keep_idle_flows``): it
  lives only while traffic uses it, so its owner re-installs it on demand
  (a learned MAC may have moved while the switch was away), and storing
  every learned flow would rewrite the store file at the learning rate.

Upstream also deleted every switch flow it did not know (consistency check),
which wiped other NApps' flows; this store never deletes anything on its own, and
``consistency`` only re-adds the bundle's stored flows a switch lost.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from xmpp_ofc.openflow.match import match_covers

ALL_TABLES = 0xFF
ANY_PORT = 0xFFFFFFFF
ANY_GROUP = 0xFFFFFFFF
FILE_VERSION = 1

Flow = dict[str, Any]


class FlowStoreError(RuntimeError):
    """The persistence file exists but cannot be used."""


# --- matching rules (pure functions) --------------------------------------------


def same_entry(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    """Same table, priority and match: one flow-table entry on a switch."""
    return (
        first["table_id"] == second["table_id"]
        and first["priority"] == second["priority"]
        and first["match"] == second["match"]
    )


def _table_and_cookie_selected(delete: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    if delete["table_id"] not in (ALL_TABLES, stored["table_id"]):
        return False
    mask = delete.get("cookie_mask", 0)
    return stored["cookie"] & mask == delete["cookie"] & mask


def _outputs(stored: Mapping[str, Any], action_type: str, key: str) -> set[int]:
    return {
        action[key]
        for instruction in stored.get("instructions", [])
        for action in instruction.get("actions", [])
        if action.get("action_type") == action_type
    }


def _out_filters_selected(delete: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    out_port = delete.get("out_port", ANY_PORT)
    if out_port != ANY_PORT and out_port not in _outputs(stored, "output", "port"):
        return False
    out_group = delete.get("out_group", ANY_GROUP)
    return out_group == ANY_GROUP or out_group in _outputs(stored, "group", "group_id")


def deleted_by(command: str, delete: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    """True if the ``delete``/``delete_strict`` flow removes ``stored`` on a switch."""
    if not _table_and_cookie_selected(delete, stored):
        return False
    if not _out_filters_selected(delete, stored):
        return False
    if command == "delete_strict":
        return delete["priority"] == stored["priority"] and delete["match"] == stored["match"]
    return match_covers(delete["match"], stored["match"])


# --- the store ---------------------------------------------------------------------


def entry_key(flow: Mapping[str, Any]) -> str:
    """One key per switch flow-table entry (table, priority, match)."""
    return json.dumps([flow["table_id"], flow["priority"], flow["match"]], sort_keys=True)


class FlowStore:
    """Installed flows per dpid, thread-safe, optionally persisted to ``path``.

    Entries are ``{"flow": canonical flow, "installed_at": unix time}``, keyed
    by :func:`entry_key` so an add or a strict delete costs O(1) even with tens
    of thousands of per-client flows.  Changes mark the store dirty and
    :meth:`flush` writes them (the NApp calls it on a timer and at shutdown).
    """

    def __init__(
        self,
        path: Path | None = None,
        clock: Callable[[], float] = time.time,
        keep_idle_flows: bool = False,
    ):
        self._path = path
        self._clock = clock
        self._keep_idle_flows = keep_idle_flows
        self._lock = threading.RLock()
        self._entries: dict[str, dict[str, dict[str, Any]]] = {}
        self._dirty = False
        if path is not None and path.exists():
            self._entries = {
                dpid: {entry_key(entry["flow"]): entry for entry in entries}
                for dpid, entries in _read(path).items()
            }

    def record(self, dpid: str, command: str, flows: list[Mapping[str, Any]]) -> None:
        """Update the store for FlowMods (one command, canonical flows) queued to ``dpid``."""
        with self._lock:
            entries = self._entries.setdefault(dpid, {})
            for flow in flows:
                self._apply(entries, command, flow)
            if not entries:
                del self._entries[dpid]
            self._dirty = True

    def _apply(self, entries: dict[str, dict[str, Any]], command: str, flow: Mapping[str, Any]):
        if command == "add":
            if flow.get("idle_timeout") and not self._keep_idle_flows:
                entries.pop(entry_key(flow), None)  # the ADD replaced it on the switch
                return
            entries[entry_key(flow)] = {"flow": dict(flow), "installed_at": self._clock()}
            return
        if command in ("delete", "delete_strict"):
            for key in [k for k, e in entries.items() if deleted_by(command, flow, e["flow"])]:
                del entries[key]
            return
        for key, entry in entries.items():  # modify*: the entry stays, its actions change
            entries[key] = _modified(command, flow, entry)

    def forget(
        self, dpid: str, table_id: int, priority: int, match: Mapping[str, Any], cookie: int
    ) -> bool:
        """Drop one flow the switch no longer has (removed, or refused with an error).

        Returns True if it was stored.
        """
        key = entry_key({"table_id": table_id, "priority": priority, "match": dict(match)})
        with self._lock:
            entries = self._entries.get(dpid, {})
            entry = entries.get(key)
            if entry is None or entry["flow"]["cookie"] != cookie:
                return False
            del entries[key]
            if not entries:
                del self._entries[dpid]
            self._dirty = True
            return True

    def flows_to_replay(self, dpid: str) -> list[Flow]:
        """Return the flows to re-add after ``dpid`` reconnects.

        Flows whose hard timeout has passed are dropped from the store; the
        others carry the hard timeout they have left.
        """
        now = self._clock()
        with self._lock:
            entries = self._entries.get(dpid, {})
            replay = []
            for key, entry in list(entries.items()):
                flow = dict(entry["flow"])
                hard = flow.get("hard_timeout", 0)
                if hard:
                    left = math.ceil(entry["installed_at"] + hard - now)
                    if left <= 0:
                        del entries[key]
                        self._dirty = True
                        continue
                    flow["hard_timeout"] = min(left, hard)
                replay.append(flow)
            if not entries:
                self._entries.pop(dpid, None)
            return replay

    def holds(self, dpid: str, flow: Mapping[str, Any]) -> bool:
        """True if the store still has ``flow`` (same entry and cookie) for ``dpid``."""
        with self._lock:
            entry = self._entries.get(dpid, {}).get(entry_key(flow))
            return entry is not None and entry["flow"]["cookie"] == flow["cookie"]

    def flows(self, dpid: str) -> list[Flow]:
        """The stored flows of ``dpid`` as they were recorded."""
        with self._lock:
            return [dict(entry["flow"]) for entry in self._entries.get(dpid, {}).values()]

    def dpids(self) -> list[str]:
        with self._lock:
            return sorted(self._entries)

    def flush(self) -> bool:
        """Write the file if anything changed; True if it wrote."""
        with self._lock:
            if not self._dirty or self._path is None:
                return False
            snapshot = {dpid: list(entries.values()) for dpid, entries in self._entries.items()}
            _write(self._path, snapshot)
            self._dirty = False
            return True


def _modified(command: str, flow: Mapping[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    stored = entry["flow"]
    if not _table_and_cookie_selected(flow, stored):
        return entry
    if command == "modify_strict":
        hit = same_entry(flow, stored)
    else:
        hit = match_covers(flow["match"], stored["match"])
    if not hit:
        return entry
    return {**entry, "flow": {**stored, "instructions": flow["instructions"]}}


def _read(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Load the file; a broken one is an error (never silently drop flows)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FlowStoreError(f"cannot read {path}: {error}") from error
    if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
        raise FlowStoreError(f"{path}: not a version {FILE_VERSION} flow_manager store")
    switches = data.get("switches")
    if not isinstance(switches, dict) or not all(isinstance(v, list) for v in switches.values()):
        raise FlowStoreError(f"{path}: 'switches' is not an object of lists")
    return switches


def _write(path: Path, entries: Mapping[str, list[dict[str, Any]]]) -> None:
    """Write to a temporary file in the same directory, fsync, rename over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"version": FILE_VERSION, "switches": entries}, indent=1, sort_keys=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(body)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
