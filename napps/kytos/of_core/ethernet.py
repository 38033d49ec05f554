"""The little of an Ethernet frame of_core needs: source MAC and ethertype.

Only for ``kytos/of_core.reachable.mac``; NApps that act on packets use the
bundle's packet parsing in ``xmpp_ofc``.
"""

from __future__ import annotations

ETH_TYPE_LLDP = 0x88CC
ETH_TYPE_IPV6 = 0x86DD
_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)


def source_and_ethertype(frame: bytes) -> tuple[str, int] | None:
    """Return (source MAC as ``aa:bb:..``, ethertype after VLAN tags), or None if too short."""
    if len(frame) < 14:
        return None
    offset = 12
    ethertype = int.from_bytes(frame[12:14], "big")
    while ethertype in _VLAN_TAGS and len(frame) >= offset + 6:
        offset += 4
        ethertype = int.from_bytes(frame[offset : offset + 2], "big")
    return frame[6:12].hex(":"), ethertype


def reachable_source(frame: bytes) -> str | None:
    """The source MAC to report as reachable, unless the frame is LLDP or IPv6 (as upstream)."""
    parsed = source_and_ethertype(frame)
    if parsed is None or parsed[1] in (ETH_TYPE_LLDP, ETH_TYPE_IPV6):
        return None
    return parsed[0]
