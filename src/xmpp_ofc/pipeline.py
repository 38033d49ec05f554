"""The table plan (DESIGN section 4) as data, and the flow dicts that build it.

| table | prio | match                       | instructions                   | owner        |
|-------|------|-----------------------------|--------------------------------|--------------|
| 0     | 300  | one blocked client          | none (drop), hard timeout      | rate_limiter |
| 0     | 200  | one monitored client        | goto 1 (+ meter), idle timeout | rate_limiter |
| 0     | 150  | tcp dst = XMPP port         | output CONTROLLER + goto 1     | rate_limiter |
| 0     | 0    | any                         | goto 1                         | dispatcher   |
| 1     | 100  | in_port + eth_dst           | output port; idle + hard       | l2_switch    |
| 1     | 0    | any                         | output CONTROLLER              | l2_switch    |

Table 0 is policy (what the rate limiter watches or drops), table 1 is forwarding
(the learning switch).  Keeping them apart lets either module be disabled without
touching the other's flows.

Flows are plain dicts in the JSON of ``kytos/flow_manager`` (``match`` with upstream
field names, ``cookie``/``cookie_mask``, ``table_id``, ``priority``, timeouts) plus
the ``instructions`` extension and ``flags``.  Every flow here states ``flags``
explicitly: our flow_manager, like upstream, otherwise asks for FLOW_REMOVED on every
flow, and a learning switch has no use for one message per expired forwarding flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xmpp_ofc import cookies
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.packet import mac_to_int

TABLE_POLICY = 0
TABLE_FORWARDING = 1
#: ``table_id`` of a delete or stats request that covers every table.
TABLE_ALL = 0xFF

PRIORITY_BLOCK = 300
PRIORITY_MONITOR = 200
#: A connection-flood prefix block: above capture (new connections of the prefix are
#: dropped), below monitor (its users already connected keep their sessions).
PRIORITY_PREFIX_BLOCK = 175
PRIORITY_CAPTURE = 150
PRIORITY_FORWARD = 100
PRIORITY_TABLE_MISS = 0

# OpenFlow 1.3 reserved port numbers (ofp_port_no), as flow_manager JSON wants them.
OFPP_MAX = 0xFFFFFF00
OFPP_IN_PORT = 0xFFFFFFF8
OFPP_FLOOD = 0xFFFFFFFB
OFPP_ALL = 0xFFFFFFFC
OFPP_CONTROLLER = 0xFFFFFFFD
OFPP_LOCAL = 0xFFFFFFFE
OFPP_ANY = 0xFFFFFFFF

FLAG_SEND_FLOW_REM = "send_flow_rem"

FlowDict = dict[str, Any]


def output(port: int) -> dict[str, Any]:
    """An output action."""
    return {"action_type": "output", "port": port}


def apply_actions(*actions: Mapping[str, Any]) -> dict[str, Any]:
    """An apply-actions instruction (no actions means drop)."""
    return {"instruction_type": "apply_actions", "actions": [dict(a) for a in actions]}


def goto_table(table_id: int) -> dict[str, Any]:
    """A goto-table instruction."""
    return {"instruction_type": "goto_table", "table_id": table_id}


def flow(
    *,
    cookie: int,
    table_id: int,
    priority: int,
    match: Mapping[str, Any] | None = None,
    instructions: list[dict[str, Any]] | None = None,
    idle_timeout: int = 0,
    hard_timeout: int = 0,
    send_flow_removed: bool = False,
) -> FlowDict:
    """One flow to add; every key spelled out so the dict says exactly what is sent."""
    return {
        "table_id": table_id,
        "priority": priority,
        "cookie": cookie,
        "match": dict(match or {}),
        "instructions": list(instructions or []),
        "idle_timeout": idle_timeout,
        "hard_timeout": hard_timeout,
        "flags": [FLAG_SEND_FLOW_REM] if send_flow_removed else [],
    }


def delete_selector(
    selector: tuple[int, int],
    *,
    table_id: int = TABLE_ALL,
    match: Mapping[str, Any] | None = None,
) -> FlowDict:
    """A non-strict delete of the flows whose cookie ``selector`` (cookie, mask) selects.

    ``table_id`` defaults to all tables: upstream flow_manager's default is table 0,
    which would silently leave table 1 alone.
    """
    cookie, mask = selector
    return {"table_id": table_id, "cookie": cookie, "cookie_mask": mask, "match": dict(match or {})}


# --- the dispatcher's base pipeline ---------------------------------------------------


def base_table_miss() -> FlowDict:
    """Table 0's table-miss: anything no policy flow claims goes on to forwarding."""
    return flow(
        cookie=cookies.encode(Owner.DISPATCHER, Kind.TABLE_MISS),
        table_id=TABLE_POLICY,
        priority=PRIORITY_TABLE_MISS,
        instructions=[goto_table(TABLE_FORWARDING)],
    )


def base_pipeline() -> list[FlowDict]:
    """The flows the dispatcher owns, installed on every switch connect."""
    return [base_table_miss()]


def delete_ours() -> FlowDict:
    """Delete every flow of the bundle (and no other) in every table."""
    return delete_selector(cookies.select_ours())


def delete_owner(owner: Owner) -> FlowDict:
    """Delete every flow of one module, e.g. when it is disabled on a switch."""
    return delete_selector(cookies.select_owner(owner))


def delete_kind(owner: Owner, kind: Kind, table_id: int = TABLE_ALL) -> FlowDict:
    """Delete every flow of one module of one kind."""
    return delete_selector(cookies.select_kind(owner, kind), table_id=table_id)


# --- the learning switch's table -----------------------------------------------------


def l2_table_miss() -> FlowDict:
    """Table 1's table-miss: unknown destinations go to the controller to be learned.

    ``max_len`` is left at NO_BUFFER (the action's default), so the whole frame
    comes up and a packet-out can carry it back.
    """
    return flow(
        cookie=cookies.encode(Owner.L2_SWITCH, Kind.TABLE_MISS),
        table_id=TABLE_FORWARDING,
        priority=PRIORITY_TABLE_MISS,
        instructions=[apply_actions(output(OFPP_CONTROLLER))],
    )


def l2_forwarding_cookie(eth_dst: str) -> int:
    """The cookie of the forwarding flows towards one MAC (its id is the MAC)."""
    return cookies.encode(Owner.L2_SWITCH, Kind.FORWARDING, mac_to_int(eth_dst))


def l2_forwarding(
    *,
    in_port: int,
    eth_dst: str,
    out_port: int,
    idle_timeout: int,
    hard_timeout: int,
    priority: int = PRIORITY_FORWARD,
) -> FlowDict:
    """Frames from ``in_port`` to ``eth_dst`` leave by ``out_port``.

    Both timeouts are set (the seed set ``idle_timeout`` twice and never the hard one),
    so a flow towards a host that moved without saying so is gone after
    ``hard_timeout`` at the latest.
    """
    return flow(
        cookie=l2_forwarding_cookie(eth_dst),
        table_id=TABLE_FORWARDING,
        priority=priority,
        match={"in_port": in_port, "dl_dst": eth_dst},
        instructions=[apply_actions(output(out_port))],
        idle_timeout=idle_timeout,
        hard_timeout=hard_timeout,
    )


def l2_delete_towards(eth_dst: str) -> FlowDict:
    """Delete the forwarding flows towards one MAC, from every in_port."""
    return delete_selector(
        (l2_forwarding_cookie(eth_dst), cookies.FULL_MASK),
        table_id=TABLE_FORWARDING,
        match={"dl_dst": eth_dst},
    )


def l2_delete_forwarding() -> FlowDict:
    """Delete every forwarding flow of the learning switch (its MAC table is flushed)."""
    return delete_kind(Owner.L2_SWITCH, Kind.FORWARDING, table_id=TABLE_FORWARDING)
