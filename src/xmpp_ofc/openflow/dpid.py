"""The datapath id as Kytos spells it.

Kytos keys ``controller.switches`` by ``00:00:00:00:00:00:00:0a`` (eight
lowercase hex octets); every dpid we print, compare or put in a URL must be
spelled that way or the switch is "not found".
"""

from __future__ import annotations

DPID_MAX = (1 << 64) - 1


def dpid_to_str(dpid: int) -> str:
    """``10`` -> ``"00:00:00:00:00:00:00:0a"``; ValueError outside 0..2**64-1."""
    if not 0 <= dpid <= DPID_MAX:
        raise ValueError(f"a datapath id is 64 bits, got {dpid}")
    raw = f"{dpid:016x}"
    return ":".join(raw[i : i + 2] for i in range(0, 16, 2))
