"""ROLE_REQUEST/ROLE_REPLY by struct, checked byte by byte against python-openflow."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyof.v0x04.controller2switch.common import ControllerRole
from pyof.v0x04.controller2switch.role_reply import RoleReply as PyofRoleReply
from pyof.v0x04.controller2switch.role_request import RoleRequest as PyofRoleRequest

from xmpp_ofc.openflow.role import (
    Role,
    RoleDecodeError,
    decode_role_reply,
    is_stale,
    role_request,
)

xids = st.integers(0, 2**32 - 1)
generations = st.integers(0, 2**64 - 1)
roles = st.sampled_from(list(Role))


@given(xids, roles, generations)
def test_role_request_matches_pyof(xid, role, generation_id):
    reference = PyofRoleRequest(
        xid=xid, role=ControllerRole(int(role)), generation_id=generation_id
    ).pack()
    assert role_request(xid, role, generation_id) == reference


@given(xids, roles, generations)
def test_role_reply_decodes_what_pyof_packs(xid, role, generation_id):
    packed = PyofRoleReply(
        xid=xid, role=ControllerRole(int(role)), generation_id=generation_id
    ).pack()
    assert decode_role_reply(packed) == (xid, role, generation_id)


def test_garbage_is_refused_with_a_reason():
    good = PyofRoleReply(xid=1, role=ControllerRole.OFPCR_ROLE_MASTER, generation_id=2).pack()
    with pytest.raises(RoleDecodeError, match="24"):
        decode_role_reply(good[:10])
    with pytest.raises(RoleDecodeError, match="type 24"):
        decode_role_reply(role_request(1, Role.MASTER, 2))  # a request, not a reply
    with pytest.raises(RoleDecodeError, match="unknown controller role 9"):
        decode_role_reply(good[:8] + (9).to_bytes(4, "big") + good[12:])
    with pytest.raises(ValueError, match="64 bits"):
        role_request(1, Role.MASTER, 2**64)


def test_generation_ids_compare_circularly():
    assert is_stale(4, 5)
    assert not is_stale(5, 5)
    assert not is_stale(6, 5)
    assert not is_stale(0, 2**64 - 1)  # wrapped: 0 is newer
    assert is_stale(2**64 - 1, 0)
