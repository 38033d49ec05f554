"""Turn a REST body or an install/delete event into validated flows.

Everything here runs before a single FlowMod is queued: one bad flow in a
request of fifty refuses the whole request, so a client never has to find out
which half of its flows reached the switch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyof.v0x04.controller2switch.flow_mod import FlowMod

from xmpp_ofc.openflow.fast_codec import (
    OFP_NO_BUFFER,
    encode_flow_mod,
    fast_canonical_flow,
    new_xid,
)
from xmpp_ofc.openflow.flow_json import FlowValidationError, canonical_flow, flow_mod_from_dict
from xmpp_ofc.openflow.packed import PackedMessage
from xmpp_ofc.rest_body import RequestError


@dataclass(frozen=True)
class PreparedFlow:
    """A validated flow: what the client sent and its canonical form.

    The FlowMod is built from ``original`` (it may carry a buffer_id that the
    canonical form leaves out) and a fresh xid for every switch.  ``fast``
    flows (the shapes :mod:`xmpp_ofc.openflow.fast_codec` covers) are packed
    with ``struct`` into a :class:`PackedMessage`; the others through pyof.
    """

    original: Mapping[str, Any]
    canonical: Mapping[str, Any]
    command: str
    fast: bool = False

    def flow_mod(self, xid: int | None = None) -> FlowMod | PackedMessage:
        if self.fast:
            buffer_id = self.original.get("buffer_id", OFP_NO_BUFFER)
            xid = new_xid() if xid is None else xid
            return PackedMessage(encode_flow_mod(self.canonical, self.command, xid, buffer_id))
        return flow_mod_from_dict(self.original, self.command, xid=xid)


def flow_mod_message(flow: Mapping[str, Any], command: str) -> FlowMod | PackedMessage:
    """The FlowMod for an already validated flow (e.g. a stored one being replayed)."""
    canonical = fast_canonical_flow(flow, command)
    if canonical is None:
        return flow_mod_from_dict(flow, command)
    return PackedMessage(encode_flow_mod(canonical, command, new_xid()))


def message_xid(message: Any) -> int:
    """The xid of a PackedMessage or a pyof message, without building a pyof header."""
    if isinstance(message, PackedMessage):
        return message.xid
    return int(getattr(message.header.xid, "value", message.header.xid))


def prepare_flows(body: Any, command: str) -> list[PreparedFlow]:
    """Validate ``{"flows": [...]}`` for ``command``; RequestError(400) if anything is wrong."""
    if not isinstance(body, Mapping):
        raise RequestError(400, 'The request body must be a JSON object {"flows": [...]}')
    unknown = sorted(set(body) - {"flows"})
    if unknown:
        raise RequestError(400, f"Unknown key(s) in the request body: {', '.join(unknown)}")
    flows = body.get("flows")
    if not isinstance(flows, list) or not flows:
        raise RequestError(400, "'flows' must be a non-empty JSON array of flows")
    prepared = []
    for index, flow in enumerate(flows):
        canonical = fast_canonical_flow(flow, command)
        fast = canonical is not None
        if canonical is None:  # outside the fast subset, or invalid: pyof names the error
            try:
                canonical = canonical_flow(flow, command, path=f"flows[{index}]")
            except FlowValidationError as error:
                raise RequestError(400, str(error)) from None
        prepared.append(
            PreparedFlow(original=flow, canonical=canonical, command=command, fast=fast)
        )
    return prepared


def flows_from_event(content: Any, command: str) -> tuple[str, list[PreparedFlow]]:
    """Validate the content of ``kytos.flow_manager.flows.install|delete``.

    Returns ``(dpid, flows)``; raises RequestError whose message is logged.
    """
    if not isinstance(content, Mapping):
        raise RequestError(400, "event content is not a dict")
    dpid = content.get("dpid")
    if not isinstance(dpid, str) or not dpid:
        raise RequestError(400, f"event content 'dpid' must be a dpid string, got {dpid!r}")
    return dpid, prepare_flows(content.get("flow_dict"), command)
