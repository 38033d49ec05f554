"""A switch refused one of our flows: flow_manager's error event, for the flow's owner.

flow_manager maps each OFPT_ERROR to the FlowMod that caused it (by xid) and
announces ``kytos/flow_manager.flow.error`` with the flow dict it sent. Every
NApp of the bundle listens to that one event; the owner byte of the flow's
cookie (:mod:`xmpp_ofc.cookies`) says whose flow it was, so each module reacts
to its own refused flows only -- as with packet-ins, nobody handles another
module's flows. Without this a refused drop flow (table full) would leave the
limiter saying "blocked" while the flood passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xmpp_ofc import cookies
from xmpp_ofc.cookies import Kind, Owner

#: The event flow_manager emits for a FlowMod a switch answered with OFPT_ERROR.
FLOW_ERROR_EVENT = "kytos/flow_manager.flow.error"


@dataclass(frozen=True)
class FlowError:
    """One refused FlowMod of one module."""

    dpid: str
    #: The flow as sent (flow_manager's canonical dict: cookie, match, priority, ...).
    flow: Mapping[str, Any]
    #: The FlowMod command: "add", "delete", "delete_strict".
    command: str
    #: The flow's kind byte (None for a kind this release does not know).
    kind: Kind | None
    #: e.g. "OFPET_FLOW_MOD_FAILED" / "OFPFMFC_TABLE_FULL".
    type_name: str
    code_name: str

    @property
    def reason(self) -> str:
        """The most specific name of the error (the code, else the type)."""
        return self.code_name or self.type_name or "unknown error"

    @property
    def kind_name(self) -> str:
        """The flow kind as a label value ("block", "monitor", ...)."""
        return "unknown" if self.kind is None else self.kind.name.lower()


def flow_error_for(owner: Owner, content: Mapping[str, Any]) -> FlowError | None:
    """The error in ``content`` (the event's content) if the flow is ``owner``'s, else None.

    Never raises: a malformed event (no flow, no switch, a cookie that is not an
    integer) is simply not ours.
    """
    flow = content.get("flow")
    if not isinstance(flow, Mapping):
        return None
    cookie = flow.get("cookie")
    if isinstance(cookie, bool) or not isinstance(cookie, int):
        return None
    if cookies.owner_of(cookie) is not owner:
        return None
    dpid = getattr(content.get("datapath"), "dpid", None)
    if not isinstance(dpid, str):
        return None
    decoded = cookies.decode(cookie)
    return FlowError(
        dpid=dpid,
        flow=flow,
        command=str(content.get("error_command", "")),
        kind=None if decoded is None else decoded.kind,
        type_name=str(content.get("error_type_name") or ""),
        code_name=str(content.get("error_code_name") or ""),
    )
