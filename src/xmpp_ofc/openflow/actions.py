"""Actions and instructions: JSON dicts <-> pyof OpenFlow 1.3 objects.

Actions use upstream kytos' ``action_type`` dicts (output, set_vlan, push_vlan,
pop_vlan, set_queue) plus ``group`` and a generic ``set_field``.  Instructions
use the shape of later Kytos releases::

    {"instruction_type": "apply_actions", "actions": [...]}
    {"instruction_type": "goto_table", "table_id": 1}
    {"instruction_type": "meter", "meter_id": 7}

plus ``write_actions``, ``clear_actions`` and ``write_metadata``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyof.v0x04.common.action import (
    ActionGroup,
    ActionHeader,
    ActionOutput,
    ActionPopVLAN,
    ActionPush,
    ActionSetField,
    ActionSetQueue,
    ActionType,
    ControllerMaxLen,
)
from pyof.v0x04.common.flow_instructions import (
    Instruction,
    InstructionApplyAction,
    InstructionClearAction,
    InstructionGotoTable,
    InstructionMeter,
    InstructionType,
    InstructionWriteAction,
    InstructionWriteMetadata,
)
from pyof.v0x04.common.flow_match import OxmOfbMatchField, VlanId
from pyof.v0x04.common.port import PortNo

from xmpp_ofc.openflow.match import FIELDS, decode_tlv, oxm_tlv
from xmpp_ofc.openflow.validation import (
    FlowValidationError,
    as_int,
    fail,
    reject_unknown_keys,
    require_int,
    require_list,
    require_mapping,
)

#: Reserved ports an output action may name.  JSON carries them as ints (the
#: upstream contract); the names are accepted on input for readability.
NAMED_PORTS: dict[str, int] = {
    "IN_PORT": int(PortNo.OFPP_IN_PORT),
    "NORMAL": int(PortNo.OFPP_NORMAL),
    "FLOOD": int(PortNo.OFPP_FLOOD),
    "ALL": int(PortNo.OFPP_ALL),
    "CONTROLLER": int(PortNo.OFPP_CONTROLLER),
    "LOCAL": int(PortNo.OFPP_LOCAL),
}
OFPP_MAX = int(PortNo.OFPP_MAX)
OFPM_MAX = 0xFFFF0000
OFPG_MAX = 0xFFFFFF00
NO_BUFFER_MAX_LEN = int(ControllerMaxLen.OFPCML_NO_BUFFER)
UINT64_MAX = (1 << 64) - 1
ETHERTYPE_BY_TAG = {"c": 0x8100, "s": 0x88A8}


# --- actions: dict -> pyof -----------------------------------------------------


def _output(action: dict[str, Any], path: str) -> ActionHeader:
    reject_unknown_keys(path, action, ("action_type", "port", "max_len"))
    if "port" not in action:
        raise FlowValidationError(f"{path}.port: missing")
    port = output_port(action["port"], f"{path}.port")
    max_len = require_int(f"{path}.max_len", action.get("max_len", NO_BUFFER_MAX_LEN), 0, 0xFFFF)
    if int(ControllerMaxLen.OFPCML_MAX) < max_len < NO_BUFFER_MAX_LEN:
        raise fail(f"{path}.max_len", max_len, "is above OFPCML_MAX (65509) but not 65535")
    return ActionOutput(port=port, max_length=max_len)


def output_port(value: Any, path: str) -> int:
    """Return a valid output port number: 1..OFPP_MAX or a reserved port."""
    if isinstance(value, str):
        if value.upper() not in NAMED_PORTS:
            raise fail(path, value, f"is not a port number or one of {', '.join(NAMED_PORTS)}")
        return NAMED_PORTS[value.upper()]
    port = require_int(path, value, 1, 0xFFFFFFFF)
    if port > OFPP_MAX and port not in NAMED_PORTS.values():
        raise fail(path, value, "is a reserved port number that cannot be an output port")
    return port


def _set_vlan(action: dict[str, Any], path: str) -> ActionHeader:
    reject_unknown_keys(path, action, ("action_type", "vlan_id"))
    if "vlan_id" not in action:
        raise FlowValidationError(f"{path}.vlan_id: missing")
    vid = require_int(f"{path}.vlan_id", action["vlan_id"], 0, 4095)
    value = (vid | int(VlanId.OFPVID_PRESENT)).to_bytes(2, "big")
    return ActionSetField(field=oxm_tlv(OxmOfbMatchField.OFPXMT_OFB_VLAN_VID, value))


def _push_vlan(action: dict[str, Any], path: str) -> ActionHeader:
    reject_unknown_keys(path, action, ("action_type", "tag_type"))
    tag_type = action.get("tag_type", "c")
    if not isinstance(tag_type, str) or tag_type not in ETHERTYPE_BY_TAG:
        raise fail(f"{path}.tag_type", tag_type, "is not 'c' (0x8100) or 's' (0x88a8)")
    return ActionPush(ActionType.OFPAT_PUSH_VLAN, ethertype=ETHERTYPE_BY_TAG[tag_type])


def _pop_vlan(action: dict[str, Any], path: str) -> ActionHeader:
    reject_unknown_keys(path, action, ("action_type",))
    return ActionPopVLAN()


def _set_queue(action: dict[str, Any], path: str) -> ActionHeader:
    reject_unknown_keys(path, action, ("action_type", "queue_id"))
    if "queue_id" not in action:
        raise FlowValidationError(f"{path}.queue_id: missing")
    return ActionSetQueue(
        queue_id=require_int(f"{path}.queue_id", action["queue_id"], 0, 2**32 - 2)
    )


def _group(action: dict[str, Any], path: str) -> ActionHeader:
    reject_unknown_keys(path, action, ("action_type", "group_id"))
    if "group_id" not in action:
        raise FlowValidationError(f"{path}.group_id: missing")
    return ActionGroup(group_id=require_int(f"{path}.group_id", action["group_id"], 0, OFPG_MAX))


def _set_field(action: dict[str, Any], path: str) -> ActionHeader:
    """Rewrite one header field: ``{"field": <match field name>, "value": ...}``."""
    reject_unknown_keys(path, action, ("action_type", "field", "value"))
    name = action.get("field")
    if not isinstance(name, str) or name not in FIELDS:
        raise fail(f"{path}.field", name, "is not a match field name")
    if "value" not in action:
        raise FlowValidationError(f"{path}.value: missing")
    spec = FIELDS[name]
    value, mask = spec.codec.encode(f"{path}.value", action["value"], maskable=False)
    if mask is not None:
        raise fail(f"{path}.value", action["value"], "cannot be masked in a set_field")
    return ActionSetField(field=oxm_tlv(spec.oxm, value))


ACTION_BUILDERS: dict[str, Callable[[dict[str, Any], str], ActionHeader]] = {
    "output": _output,
    "set_vlan": _set_vlan,
    "push_vlan": _push_vlan,
    "pop_vlan": _pop_vlan,
    "set_queue": _set_queue,
    "group": _group,
    "set_field": _set_field,
}


def actions_from_list(actions: Any, path: str) -> list[ActionHeader]:
    """Return pyof actions for a JSON action list."""
    result = []
    for index, raw_action in enumerate(require_list(path, actions)):
        item_path = f"{path}[{index}]"
        action = require_mapping(item_path, raw_action)
        action_type = action.get("action_type")
        builder = ACTION_BUILDERS.get(action_type) if isinstance(action_type, str) else None
        if builder is None:
            raise fail(
                f"{item_path}.action_type",
                action_type,
                f"is not one of {', '.join(ACTION_BUILDERS)}",
            )
        result.append(builder(dict(action), item_path))
    return result


# --- actions: pyof -> dict -----------------------------------------------------


def action_to_dict(action: ActionHeader) -> dict[str, Any]:
    """Return the JSON dict of one pyof action (from a switch or built by us).

    Actions outside the contract read back as ``{"action_type": "<ofpat name>"}``
    so a listing never fails on what another controller installed.
    """
    action_type = as_int(action.action_type)
    decoder = _ACTION_DECODERS.get(action_type)
    if decoder is not None:
        return decoder(action)
    try:
        name = ActionType(action_type).name.removeprefix("OFPAT_").lower()
    except ValueError:
        name = f"unknown_{action_type}"
    return {"action_type": name}


def _output_to_dict(action: ActionOutput) -> dict[str, Any]:
    """``max_len`` appears only when it is not the default (upstream had none)."""
    result: dict[str, Any] = {"action_type": "output", "port": as_int(action.port)}
    max_len = as_int(action.max_length)
    if max_len != NO_BUFFER_MAX_LEN:
        result["max_len"] = max_len
    return result


def _push_vlan_to_dict(action: ActionPush) -> dict[str, Any]:
    tag = "s" if as_int(action.ethertype) == ETHERTYPE_BY_TAG["s"] else "c"
    return {"action_type": "push_vlan", "tag_type": tag}


def _set_field_to_dict(action: ActionSetField) -> dict[str, Any]:
    """VLAN id rewrites read back as upstream ``set_vlan``, others as ``set_field``."""
    decoded = decode_tlv(action.field)
    if decoded is None:
        return {"action_type": "set_field"}
    name, value = decoded
    if name == "dl_vlan" and isinstance(value, int):
        return {"action_type": "set_vlan", "vlan_id": value}
    return {"action_type": "set_field", "field": name, "value": value}


# --- instructions ---------------------------------------------------------------


_ACTION_DECODERS: dict[int, Callable[[Any], dict[str, Any]]] = {
    ActionType.OFPAT_OUTPUT: _output_to_dict,
    ActionType.OFPAT_SET_FIELD: _set_field_to_dict,
    ActionType.OFPAT_PUSH_VLAN: _push_vlan_to_dict,
    ActionType.OFPAT_POP_VLAN: lambda _action: {"action_type": "pop_vlan"},
    ActionType.OFPAT_SET_QUEUE: lambda a: {
        "action_type": "set_queue",
        "queue_id": as_int(a.queue_id),
    },
    ActionType.OFPAT_GROUP: lambda a: {"action_type": "group", "group_id": as_int(a.group_id)},
}


def instructions_from_list(
    instructions: Any, path: str, table_id: int | None = None
) -> list[Instruction]:
    """Return pyof instructions for the JSON ``instructions`` list.

    ``table_id`` is the flow's table: goto_table must point further down the
    pipeline (a switch rejects a backwards goto with BAD_TABLE_ID).
    """
    result = []
    seen: set[str] = set()
    for index, raw_instruction in enumerate(require_list(path, instructions)):
        item_path = f"{path}[{index}]"
        instruction = require_mapping(item_path, raw_instruction)
        kind = instruction.get("instruction_type")
        if not isinstance(kind, str) or kind not in _INSTRUCTION_KEYS:
            raise fail(
                f"{item_path}.instruction_type",
                kind,
                f"is not one of {', '.join(_INSTRUCTION_KEYS)}",
            )
        if kind in seen:
            raise fail(f"{item_path}.instruction_type", kind, "appears twice in one flow")
        seen.add(kind)
        reject_unknown_keys(item_path, instruction, ("instruction_type", *_INSTRUCTION_KEYS[kind]))
        result.append(_build_instruction(kind, instruction, item_path, table_id))
    return result


_INSTRUCTION_KEYS: dict[str, tuple[str, ...]] = {
    "apply_actions": ("actions",),
    "write_actions": ("actions",),
    "clear_actions": (),
    "goto_table": ("table_id",),
    "meter": ("meter_id",),
    "write_metadata": ("metadata", "metadata_mask"),
}


def _require(instruction: Any, key: str, path: str) -> Any:
    if key not in instruction:
        raise FlowValidationError(f"{path}.{key}: missing")
    return instruction[key]


def _build_instruction(kind: str, instruction: Any, path: str, table_id: int | None) -> Instruction:
    if kind == "apply_actions":
        actions = actions_from_list(_require(instruction, "actions", path), f"{path}.actions")
        return InstructionApplyAction(actions=actions)
    if kind == "write_actions":
        actions = actions_from_list(_require(instruction, "actions", path), f"{path}.actions")
        return InstructionWriteAction(actions=actions)
    if kind == "clear_actions":
        return InstructionClearAction()
    if kind == "goto_table":
        low = 0 if table_id is None else table_id + 1
        target = require_int(f"{path}.table_id", _require(instruction, "table_id", path), low, 254)
        return InstructionGotoTable(table_id=target)
    if kind == "meter":
        meter_id = _require(instruction, "meter_id", path)
        return InstructionMeter(meter_id=require_int(f"{path}.meter_id", meter_id, 1, OFPM_MAX))
    metadata = require_int(
        f"{path}.metadata", _require(instruction, "metadata", path), 0, UINT64_MAX
    )
    mask = require_int(
        f"{path}.metadata_mask", instruction.get("metadata_mask", UINT64_MAX), 0, UINT64_MAX
    )
    return InstructionWriteMetadata(metadata=metadata, metadata_mask=mask)


def instruction_to_dict(instruction: Instruction) -> dict[str, Any]:
    """Return the JSON dict of one pyof instruction."""
    kind = as_int(instruction.instruction_type)
    if kind in (InstructionType.OFPIT_APPLY_ACTIONS, InstructionType.OFPIT_WRITE_ACTIONS):
        name = "apply_actions" if kind == InstructionType.OFPIT_APPLY_ACTIONS else "write_actions"
        return {
            "instruction_type": name,
            "actions": [action_to_dict(action) for action in instruction.actions],
        }
    if kind == InstructionType.OFPIT_CLEAR_ACTIONS:
        return {"instruction_type": "clear_actions"}
    if kind == InstructionType.OFPIT_GOTO_TABLE:
        return {"instruction_type": "goto_table", "table_id": as_int(instruction.table_id)}
    if kind == InstructionType.OFPIT_METER:
        return {"instruction_type": "meter", "meter_id": as_int(instruction.meter_id)}
    if kind == InstructionType.OFPIT_WRITE_METADATA:
        return {
            "instruction_type": "write_metadata",
            "metadata": as_int(instruction.metadata),
            "metadata_mask": as_int(instruction.metadata_mask),
        }
    return {"instruction_type": f"unknown_{kind}"}


def apply_actions_of(instructions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the apply_actions list: the upstream top-level ``actions`` view."""
    for instruction in instructions:
        if instruction["instruction_type"] == "apply_actions":
            return instruction["actions"]
    return []
