"""``Flow``: one entry of ``switch.flows``, as upstream kytos/of_core keeps them.

Built from each FlowStats of of_core's periodic flow poll.  The JSON shape is
the upstream ``Flow.as_dict()`` (plus the ``instructions`` extension); it is
produced by the bundle's one OpenFlow codec, ``xmpp_ofc.openflow.flow_json``,
so flow_manager's REST output and of_core's flows can never disagree.
"""

from __future__ import annotations

import json
from typing import Any

from xmpp_ofc.openflow import flow_json


def _value(field: Any) -> Any:
    return getattr(field, "value", field)


class Flow:
    """A flow read back from a switch (its FlowStats), with upstream's accessors.

    The dict is computed on first use and cached: a poll of 50k flows builds
    50k Flow objects, most of which nobody serialises.
    """

    __slots__ = ("_as_dict", "stats", "switch")

    def __init__(self, switch: Any, stats: Any) -> None:
        self.switch = switch
        self.stats = stats
        self._as_dict: dict[str, Any] | None = None

    @property
    def table_id(self) -> int:
        return int(_value(self.stats.table_id))

    @property
    def priority(self) -> int:
        return int(_value(self.stats.priority))

    @property
    def cookie(self) -> int:
        return int(_value(self.stats.cookie))

    @property
    def idle_timeout(self) -> int:
        return int(_value(self.stats.idle_timeout))

    @property
    def hard_timeout(self) -> int:
        return int(_value(self.stats.hard_timeout))

    @property
    def packet_count(self) -> int:
        return int(_value(self.stats.packet_count))

    @property
    def byte_count(self) -> int:
        return int(_value(self.stats.byte_count))

    @property
    def id(self) -> str:
        """Upstream's flow id: a hash of the dict without ``id`` and ``stats``."""
        return self.as_dict()["id"]

    def as_dict(self) -> dict[str, Any]:
        """Upstream's ``Flow.as_dict()`` shape plus ``instructions``."""
        if self._as_dict is None:
            self._as_dict = flow_json.flow_stats_to_dict(self.stats, self.switch.dpid)
        return self._as_dict

    def as_json(self, sort_keys: bool = False) -> str:
        return json.dumps(self.as_dict(), sort_keys=sort_keys)

    def _identity(self) -> dict[str, Any]:
        return {k: v for k, v in self.as_dict().items() if k not in ("id", "stats")}

    def __eq__(self, other: object) -> bool:
        """Flows are equal when they would install the same entry (stats ignored)."""
        if not isinstance(other, Flow):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return (
            f"Flow(dpid={self.switch.dpid!r}, table={self.table_id}, "
            f"priority={self.priority}, cookie={self.cookie:#x})"
        )
