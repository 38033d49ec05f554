"""Flow JSON (upstream kytos/flow_manager v2 shape) <-> OpenFlow 1.3 messages.

* :func:`flow_mod_from_dict` validates a flow dict completely and builds the
  FlowMod, or raises :class:`FlowValidationError` naming the bad key, so a
  REST handler can refuse a whole request before anything is sent.
* :func:`canonical_flow` is the same flow in read-back form; it is what a store
  compares and persists, so equal flows written differently compare equal.
* :func:`flow_stats_to_dict` is upstream ``Flow.as_dict()`` for a FlowStats
  entry, plus ``instructions`` (upstream dropped goto_table/meter silently).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pyof.foundation.constants import UBINT32_MAX_VALUE
from pyof.v0x04.common.constants import OFP_NO_BUFFER
from pyof.v0x04.common.port import PortNo
from pyof.v0x04.controller2switch.flow_mod import FlowMod, FlowModCommand, FlowModFlags

from xmpp_ofc.openflow.actions import (
    OFPG_MAX,
    OFPP_MAX,
    UINT64_MAX,
    actions_from_list,
    apply_actions_of,
    instruction_to_dict,
    instructions_from_list,
)
from xmpp_ofc.openflow.match import match_from_dict, match_to_dict
from xmpp_ofc.openflow.validation import (
    FlowValidationError,
    as_int,
    fail,
    reject_unknown_keys,
    require_int,
    require_list,
    require_mapping,
)

__all__ = [
    "COMMANDS",
    "DEFAULT_PRIORITY",
    "FlowValidationError",
    "canonical_flow",
    "flow_id",
    "flow_mod_from_dict",
    "flow_mod_to_dict",
    "flow_stats_to_dict",
    "match_to_dict",
]

COMMANDS: dict[str, FlowModCommand] = {
    "add": FlowModCommand.OFPFC_ADD,
    "modify": FlowModCommand.OFPFC_MODIFY,
    "modify_strict": FlowModCommand.OFPFC_MODIFY_STRICT,
    "delete": FlowModCommand.OFPFC_DELETE,
    "delete_strict": FlowModCommand.OFPFC_DELETE_STRICT,
}
DELETE_COMMANDS = frozenset({"delete", "delete_strict"})

FLAG_BITS: dict[str, int] = {
    "send_flow_rem": int(FlowModFlags.OFPFF_SEND_FLOW_REM),
    "check_overlap": int(FlowModFlags.OFPFF_CHECK_OVERLAP),
    "reset_counts": int(FlowModFlags.OFPFF_RESET_COUNTS),
    "no_pkt_counts": int(FlowModFlags.OFPFF_NO_PKT_COUNTS),
    "no_byt_counts": int(FlowModFlags.OFPFF_NO_BYT_COUNTS),
}
#: pyof's FlowMod default, which upstream relied on: switches report removals.
DEFAULT_FLAGS = ("send_flow_rem",)
DEFAULT_PRIORITY = 0x8000
OFPTT_ALL = 0xFF
OFPP_ANY = int(PortNo.OFPP_ANY)
OFPG_ANY = 0xFFFFFFFF

_FLOW_KEYS = (
    "table_id",
    "priority",
    "idle_timeout",
    "hard_timeout",
    "cookie",
    "cookie_mask",
    "match",
    "actions",
    "instructions",
    "flags",
)
#: Keys of the GET answer (``Flow.as_dict()``): accepted and ignored so that a
#: client can delete exactly the flows it listed.
_READ_ONLY_KEYS = ("switch", "id", "stats")
_ADD_ONLY_KEYS = ("buffer_id",)
_DELETE_ONLY_KEYS = ("out_port", "out_group")


def flow_mod_from_dict(
    flow: Any, command: str, *, path: str = "flow", xid: int | None = None
) -> FlowMod:
    """Return the FlowMod for ``flow`` or raise FlowValidationError.

    ``command`` is one of :data:`COMMANDS`.  ``path`` prefixes error messages
    (``flows[3]``).  Instructions of a delete are validated but not sent: a
    switch ignores them there.
    """
    if command not in COMMANDS:
        raise ValueError(f"unknown flow command {command!r}; expected one of {list(COMMANDS)}")
    flow = require_mapping(path, flow)
    is_delete = command in DELETE_COMMANDS
    extra = _DELETE_ONLY_KEYS if is_delete else _ADD_ONLY_KEYS
    reject_unknown_keys(path, flow, (*_FLOW_KEYS, *_READ_ONLY_KEYS, *extra))

    table_id = require_int(
        f"{path}.table_id", flow.get("table_id", 0), 0, 255 if is_delete else 254
    )
    instructions = _instructions(flow, path, table_id)
    flow_mod = FlowMod(
        xid=xid,
        command=COMMANDS[command],
        table_id=table_id,
        priority=require_int(f"{path}.priority", flow.get("priority", DEFAULT_PRIORITY), 0, 0xFFFF),
        idle_timeout=require_int(f"{path}.idle_timeout", flow.get("idle_timeout", 0), 0, 0xFFFF),
        hard_timeout=require_int(f"{path}.hard_timeout", flow.get("hard_timeout", 0), 0, 0xFFFF),
        cookie=require_int(f"{path}.cookie", flow.get("cookie", 0), 0, UINT64_MAX),
        cookie_mask=require_int(f"{path}.cookie_mask", flow.get("cookie_mask", 0), 0, UINT64_MAX),
        flags=_flags(flow.get("flags", list(DEFAULT_FLAGS)), f"{path}.flags"),
        match=match_from_dict(flow.get("match", {}), f"{path}.match"),
        instructions=[] if is_delete else instructions,
        buffer_id=_buffer_id(flow, path),
        out_port=_out_port(flow, path),
        out_group=_out_group(flow, path),
    )
    return flow_mod


def _instructions(flow: Mapping[str, Any], path: str, table_id: int) -> list[Any]:
    """Top-level ``actions`` (upstream) is one apply_actions instruction."""
    if "actions" in flow and "instructions" in flow:
        raise FlowValidationError(
            f"{path}: give either 'actions' (one apply_actions instruction) "
            "or 'instructions', not both"
        )
    if "instructions" in flow:
        return instructions_from_list(flow["instructions"], f"{path}.instructions", table_id)
    actions = actions_from_list(flow.get("actions", []), f"{path}.actions")
    if not actions:
        return []  # no instruction at all: the flow drops
    return instructions_from_list(
        [{"instruction_type": "apply_actions", "actions": flow["actions"]}],
        f"{path}.actions",
        table_id,
    )


def _flags(value: Any, path: str) -> int:
    bits = 0
    for index, name in enumerate(require_list(path, value)):
        if not isinstance(name, str) or name not in FLAG_BITS:
            raise fail(f"{path}[{index}]", name, f"is not one of {', '.join(FLAG_BITS)}")
        bits |= FLAG_BITS[name]
    return bits


def _buffer_id(flow: Mapping[str, Any], path: str) -> int:
    return require_int(f"{path}.buffer_id", flow.get("buffer_id", OFP_NO_BUFFER), 0, 0xFFFFFFFF)


def _out_port(flow: Mapping[str, Any], path: str) -> int:
    port = require_int(f"{path}.out_port", flow.get("out_port", OFPP_ANY), 0, UBINT32_MAX_VALUE)
    if OFPP_MAX < port < int(PortNo.OFPP_IN_PORT):
        raise fail(f"{path}.out_port", port, "is not a port number")
    return port


def _out_group(flow: Mapping[str, Any], path: str) -> int:
    group = require_int(f"{path}.out_group", flow.get("out_group", OFPG_ANY), 0, OFPG_ANY)
    if OFPG_MAX < group < OFPG_ANY:
        raise fail(f"{path}.out_group", group, "is a reserved group number")
    return group


def flow_mod_to_dict(flow_mod: FlowMod) -> dict[str, Any]:
    """Return the canonical flow dict of a FlowMod (read-back normalisation).

    ``buffer_id`` is left out on purpose: it names a packet buffered once, and a
    stored flow that carried it would be wrong to replay after a reconnect.
    """
    result: dict[str, Any] = {
        "table_id": as_int(flow_mod.table_id),
        "priority": as_int(flow_mod.priority),
        "idle_timeout": as_int(flow_mod.idle_timeout),
        "hard_timeout": as_int(flow_mod.hard_timeout),
        "cookie": as_int(flow_mod.cookie),
        "cookie_mask": as_int(flow_mod.cookie_mask),
        "match": match_to_dict(flow_mod.match),
        "instructions": [instruction_to_dict(item) for item in flow_mod.instructions],
        "flags": flags_to_names(as_int(flow_mod.flags)),
    }
    if as_int(flow_mod.out_port) != OFPP_ANY:
        result["out_port"] = as_int(flow_mod.out_port)
    if as_int(flow_mod.out_group) != OFPG_ANY:
        result["out_group"] = as_int(flow_mod.out_group)
    return result


def canonical_flow(flow: Any, command: str, *, path: str = "flow") -> dict[str, Any]:
    """Validate ``flow`` and return it in canonical form (see flow_mod_to_dict).

    For deletes the instructions are not part of the FlowMod; they are kept
    from the input (validated) so a stored delete still says what it was.
    """
    flow_mod = flow_mod_from_dict(flow, command, path=path)
    result = flow_mod_to_dict(flow_mod)
    if command in DELETE_COMMANDS:
        del result["instructions"]
    return result


def flags_to_names(bits: int) -> list[str]:
    """Return the flag names set in ``bits`` (unknown bits are ignored)."""
    return [name for name, bit in FLAG_BITS.items() if bits & bit]


def flow_stats_to_dict(stats: Any, dpid: str) -> dict[str, Any]:
    """Return upstream ``Flow.as_dict()`` for one flow-stats entry.

    ``stats`` is a pyof FlowStats or a ``flow_stats_codec.FlowStatsRecord``
    (same field names; its match is already the dict).  Adds ``instructions``
    (every instruction, goto_table and meter included) after the upstream keys;
    ``actions`` stays the apply_actions list.  The id hashes everything but
    ``id`` and ``stats``, like upstream, so it changes when the instructions
    differ even if the apply_actions are the same.
    """
    instructions = [instruction_to_dict(item) for item in stats.instructions]
    match = stats.match
    flow: dict[str, Any] = {
        "switch": dpid,
        "table_id": as_int(stats.table_id),
        "match": dict(match) if isinstance(match, Mapping) else match_to_dict(match),
        "priority": as_int(stats.priority),
        "idle_timeout": as_int(stats.idle_timeout),
        "hard_timeout": as_int(stats.hard_timeout),
        "cookie": as_int(stats.cookie),
        "actions": apply_actions_of(instructions),
        "instructions": instructions,
    }
    flow["id"] = flow_id(flow)
    flow["stats"] = {
        "byte_count": as_int(stats.byte_count),
        "duration_sec": as_int(stats.duration_sec),
        "duration_nsec": as_int(stats.duration_nsec),
        "packet_count": as_int(stats.packet_count),
    }
    return flow


def flow_id(flow: Mapping[str, Any]) -> str:
    """md5 of the sorted JSON of ``flow`` without ``id`` and ``stats`` (upstream)."""
    body = {key: value for key, value in flow.items() if key not in ("id", "stats")}
    return hashlib.md5(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()
