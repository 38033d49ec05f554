"""OpenFlow 1.3 controller roles: ROLE_REQUEST encoded and ROLE_REPLY decoded with ``struct``.

Several controllers on one switch (issue 12) each hold a role: MASTER (may change
the switch), SLAVE (read-only: the switch refuses its FlowMods with
OFPET_BAD_REQUEST/OFPBRC_IS_SLAVE and sends it no packet-ins) or EQUAL. A MASTER or
SLAVE request carries a ``generation_id``: the switch refuses one older than the
newest it has seen (OFPET_ROLE_REQUEST_FAILED/OFPRRFC_STALE), which is what fences a
master that comes back after another took over (OpenFlow 1.3.5, 6.3.6).

python-openflow's RoleRequest/RoleReply are the reference (tests compare byte by
byte); these two tiny messages are coded here so the role path needs no pyof.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

OFP_VERSION = 0x04
OFPT_ROLE_REQUEST = 24
OFPT_ROLE_REPLY = 25
#: ofp_header + ofp_role_request (role, pad[4], generation_id).
_ROLE = struct.Struct("!BBHII4xQ")
ROLE_MESSAGE_LEN = _ROLE.size  # 24

#: Generation ids compare as a circular 64-bit counter (OpenFlow 1.3.5, 6.3.6).
GENERATION_MODULUS = 1 << 64


class Role(IntEnum):
    """ofp_controller_role."""

    NOCHANGE = 0
    EQUAL = 1
    MASTER = 2
    SLAVE = 3


class RoleReply(NamedTuple):
    xid: int
    role: Role
    generation_id: int


class RoleDecodeError(ValueError):
    """Bytes that are not an OpenFlow 1.3 ROLE_REPLY."""


def role_request(xid: int, role: Role, generation_id: int = 0) -> bytes:
    """The ROLE_REQUEST bytes for ``role`` (``generation_id`` matters for MASTER/SLAVE)."""
    if not 0 <= generation_id < GENERATION_MODULUS:
        raise ValueError(f"generation_id must fit 64 bits, got {generation_id}")
    return _ROLE.pack(OFP_VERSION, OFPT_ROLE_REQUEST, ROLE_MESSAGE_LEN, xid, role, generation_id)


def decode_role_reply(data: bytes) -> RoleReply:
    """A ROLE_REPLY's xid, role and generation id; :class:`RoleDecodeError` otherwise."""
    if len(data) < ROLE_MESSAGE_LEN:
        raise RoleDecodeError(f"ROLE_REPLY of {len(data)} bytes, expected {ROLE_MESSAGE_LEN}")
    version, message_type, length, xid, role, generation_id = _ROLE.unpack_from(data)
    if version != OFP_VERSION or message_type != OFPT_ROLE_REPLY or length != ROLE_MESSAGE_LEN:
        raise RoleDecodeError(
            f"not an OpenFlow 1.3 ROLE_REPLY: version {version}, type {message_type},"
            f" length {length}"
        )
    try:
        return RoleReply(xid, Role(role), generation_id)
    except ValueError:
        raise RoleDecodeError(f"unknown controller role {role}") from None


def is_stale(generation_id: int, newest_seen: int) -> bool:
    """True if ``generation_id`` is older than ``newest_seen`` (circular comparison)."""
    distance = (generation_id - newest_seen) % GENERATION_MODULUS
    return distance >= GENERATION_MODULUS // 2
