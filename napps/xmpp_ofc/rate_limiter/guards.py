"""Operator guards: addresses a block must never name (issue 13).

A block of ``0.0.0.0`` or ``::`` matches nothing a client sends, a loopback or
link-local source never crosses the switch as an XMPP client, a multicast
address is never a TCP source, and a scoped address (``fe80::1%eth0``) names an
interface the switch knows nothing of: each such request is an operator's
mistake, so it is refused with a message instead of installing a useless flow.
"""

from __future__ import annotations

import ipaddress


def block_target_refusal(ip: str) -> str | None:
    """Why ``ip`` may not be blocked (a message for a 400), or None when it may."""
    if "%" in ip:
        return f"ip: {ip!r} has a zone index; block the address without '%<zone>'"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None  # the caller's own parser reports malformed addresses
    for kind, refused in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
    ):
        if refused:
            return f"ip: {ip} is a {kind} address and is never a client; nothing to block"
    return None
