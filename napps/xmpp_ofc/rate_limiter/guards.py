"""Operator guards: addresses a block must never name (issue 13).

A block of ``0.0.0.0`` or ``::`` matches nothing a client sends, a loopback or
link-local source never crosses the switch as an XMPP client, a multicast
address is never a TCP source, and a scoped address (``fe80::1%eth0``) names an
interface the switch knows nothing of: each such request is an operator's
mistake, so it is refused with a message instead of installing a useless flow.
The protected XMPP server's own addresses (the ``protected_addresses`` setting,
and those learned from capture packet-ins: :mod:`.server_addresses`) are refused
too: blocking the server is the outage the limiter exists to prevent.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from napps.xmpp_ofc.rate_limiter.errors import InvalidRequestError
from napps.xmpp_ofc.rate_limiter.flows import MAX_TIMEOUT, Client


def special_address(ip: str) -> str | None:
    """The kind of an address that is never a client (unspecified, loopback, ...), or None."""
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
            return kind
    return None


def block_target_refusal(ip: str) -> str | None:
    """Why ``ip`` may not be blocked (a message for a 400), or None when it may."""
    if "%" in ip:
        return f"ip: {ip!r} has a zone index; block the address without '%<zone>'"
    kind = special_address(ip)
    if kind is not None:
        return f"ip: {ip} is a {kind} address and is never a client; nothing to block"
    return None


def protected_refusal(ip: str, *, configured: bool, learned: bool) -> str | None:
    """Why a block of the protected XMPP server's own address is refused, or None."""
    if configured:
        source = "the protected_addresses setting"
    elif learned:
        source = "learned as the destination of capture packet-ins"
    else:
        return None
    return f"ip: {ip} is an address of the protected XMPP server ({source}); it is never blocked"


def manual_block_request(
    ip: Any, port: Any, duration: Any, reason: Any, *, default_duration: int
) -> tuple[Client, int]:
    """The target and duration of a manual block, or InvalidRequestError saying what is wrong.

    The request's own fields only: a bad one is a 400 even on an unknown switch.
    """
    if isinstance(ip, str) and (refusal := block_target_refusal(ip)):
        raise InvalidRequestError(refusal)
    try:
        target = Client.of(ip, port)
    except ValueError as error:
        raise InvalidRequestError(str(error)) from None
    if duration is None:
        duration = default_duration
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int)
        or not (1 <= duration <= MAX_TIMEOUT)
    ):
        raise InvalidRequestError(
            f"duration: must be an integer in 1..{MAX_TIMEOUT} seconds, got {duration!r}"
        )
    if not isinstance(reason, str) or len(reason) > 200:
        raise InvalidRequestError("reason: must be a string of at most 200 characters")
    return target, duration
