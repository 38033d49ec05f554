"""The operator's guard: a REST delete may not remove the bundle's own flows unless forced.

``DELETE v2/flows/<dpid>`` with ``{"flows": [{"table_id": 255}]}`` is a
non-strict delete with cookie_mask 0: it removes every flow of the switch,
the base pipeline and the rate limiter's blocks included, and nothing put them
back until the switch reconnected (issue 13).  Every flow of the bundle has a
cookie in one namespace (owner byte ``0xa?``, :mod:`xmpp_ofc.cookies`) and
lives in table 0 or 1 (:mod:`xmpp_ofc.pipeline`), so a delete can only reach
them when its table is one of those (or all) and its cookie/cookie_mask can
select a cookie of that namespace.  Such a delete is refused (409) unless the
body says ``"force": true``.

Why on cookie and table, not on the match: the rule is stateless and
predictable (the answer does not depend on which flows happen to be
installed), it needs no copy of the switch's flow table, and a caller can
always state what it means: give a ``cookie``/``cookie_mask`` that excludes the
namespace (e.g. ``"cookie": 0, "cookie_mask": 0xf000000000000000``, the
flows with a cookie whose high nibble is 0) to delete its own flows, or
``force`` to delete ours too.  It refuses some deletes whose match would in
fact spare our flows; the message says how to narrow them.  Events
(``kytos.flow_manager.flows.delete``) are not guarded: they are how the
modules delete their own flows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from xmpp_ofc import cookies, pipeline

#: Key of the REST body that overrides the guard.
FORCE = "force"
#: The tables the bundle's flows live in, plus OFPTT_ALL.
GUARDED_TABLES = frozenset({pipeline.TABLE_POLICY, pipeline.TABLE_FORWARDING, pipeline.TABLE_ALL})


def selects_bundle_cookies(cookie: int, cookie_mask: int) -> bool:
    """True when (cookie, cookie_mask) selects at least one cookie of the bundle's namespace.

    A switch deletes a flow whose cookie ``c`` has ``c & mask == cookie & mask``.
    Bits outside the mask are free, so the namespace is reachable exactly when
    the masked namespace bits of ``cookie`` equal the namespace's own.
    """
    namespace_value, namespace_mask = cookies.select_ours()
    return (cookie ^ namespace_value) & cookie_mask & namespace_mask == 0


def refusal(flows: Sequence[Mapping[str, Any]]) -> str | None:
    """Why this delete (canonical flows) is refused without force, or None when it may run."""
    for index, flow in enumerate(flows):
        if flow["table_id"] not in GUARDED_TABLES:
            continue
        if selects_bundle_cookies(flow["cookie"], flow["cookie_mask"]):
            return (
                f"flows[{index}] would delete the controller's own flows (base pipeline, "
                "L2 switch, rate limiter monitors and blocks: cookies 0xa0.. to 0xaf.. in "
                f"tables {pipeline.TABLE_POLICY} and {pipeline.TABLE_FORWARDING}); nothing was "
                "sent. Narrow it with a cookie and cookie_mask that exclude them (e.g. "
                '"cookie": 0, "cookie_mask": 17293822569102704640 selects cookies 0x0...), '
                f'or send "{FORCE}": true with the body if you mean it'
            )
    return None


def parse_force(body: Any) -> tuple[Any, bool]:
    """``(body without "force", force)``; a non-boolean force is left for the 400 of the caller."""
    if isinstance(body, Mapping) and isinstance(body.get(FORCE), bool):
        rest = {key: value for key, value in body.items() if key != FORCE}
        return rest, body[FORCE]
    return body, False
