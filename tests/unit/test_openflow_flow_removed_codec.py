"""The struct FLOW_REMOVED codec against python-openflow, the reference, field by field."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyof.v0x04.asynchronous.flow_removed import FlowRemoved, FlowRemovedReason
from pyof.v0x04.common.utils import unpack_message
from test_openflow_flow_stats_codec import CANONICAL_MATCHES

from napps.kytos.of_core.inbound import FlowRemovedMessage, parse_message
from xmpp_ofc import pyof_decode
from xmpp_ofc.openflow.flow_removed_codec import (
    FlowRemovedDecodeError,
    decode_flow_removed,
    is_flow_removed,
)
from xmpp_ofc.openflow.match import match_from_dict, match_to_dict

DPID = "00:00:00:00:00:00:00:01"


def flow_removed_frame(match=None, **fields) -> bytes:
    values = {
        "xid": 7,
        "cookie": 0xA202000000000001,
        "priority": 1000,
        "reason": FlowRemovedReason.OFPRR_IDLE_TIMEOUT,
        "table_id": 1,
        "duration_sec": 301,
        "duration_nsec": 5,
        "idle_timeout": 300,
        "hard_timeout": 3600,
        "packet_count": 10,
        "byte_count": 640,
        **fields,
    }
    if match is None:
        match = {"in_port": 1, "dl_dst": "0e:01:00:00:00:02"}
    built = match_from_dict(match)
    return FlowRemoved(match=built, **values).pack()


@settings(max_examples=200, deadline=None)
@given(
    xid=st.integers(0, 2**32 - 1),
    cookie=st.integers(0, 2**64 - 1),
    priority=st.integers(0, 0xFFFF),
    reason=st.integers(0, 3),
    table_id=st.integers(0, 254),
    duration_sec=st.integers(0, 2**32 - 1),
    duration_nsec=st.integers(0, 2**32 - 1),
    idle_timeout=st.integers(0, 0xFFFF),
    hard_timeout=st.integers(0, 0xFFFF),
    packet_count=st.integers(0, 2**64 - 1),
    byte_count=st.integers(0, 2**64 - 1),
    match=st.sampled_from(CANONICAL_MATCHES),
)
def test_every_field_matches_pyof(match, reason, **fields):
    frame = flow_removed_frame(match, reason=FlowRemovedReason(reason), **fields)
    record = decode_flow_removed(frame)
    reference = unpack_message(frame)
    assert record.xid == reference.header.xid.value
    for name in fields:
        if name != "xid":
            assert getattr(record, name) == getattr(reference, name).value, name
    assert record.reason == int(reference.reason.value)
    assert record.match == match_to_dict(reference.match) == match


def test_of_core_publishes_it_without_pyof_and_builds_pyof_lazily():
    frame = flow_removed_frame()
    message = parse_message(frame)
    assert isinstance(message, FlowRemovedMessage)
    assert message._pyof is None
    assert message.header.xid.value == 7
    assert message.header.message_type.name == "OFPT_FLOW_REMOVED"
    assert message.record.cookie == 0xA202000000000001
    assert message.priority.value == 1000  # an upstream listener's pyof read
    assert message._pyof is not None
    assert "cookie=0xa202000000000001" in repr(message)


def test_the_dispatcher_decodes_both_paths_alike():
    frame = flow_removed_frame()
    fast = pyof_decode.flow_removed(DPID, parse_message(frame))
    reference = pyof_decode.flow_removed(DPID, unpack_message(frame))
    assert fast == reference
    assert pyof_decode.cookie_of(parse_message(frame)) == 0xA202000000000001


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f[:40], "at least"),
        (lambda f: f[:2] + (len(f) + 8).to_bytes(2, "big") + f[4:], "differs"),
        (lambda f: f[:1] + b"\x0a" + f[2:], "not an OpenFlow 1.3 FLOW_REMOVED"),
        (lambda f: f[:50] + (0xFF).to_bytes(2, "big") + f[52:], "does not fit"),
        (lambda f: f[:50] + (2).to_bytes(2, "big") + f[52:], "does not fit"),
    ],
)
def test_malformed_frames_are_refused(mutate, message):
    frame = mutate(flow_removed_frame())
    with pytest.raises(FlowRemovedDecodeError, match=message):
        decode_flow_removed(frame)


def test_is_flow_removed():
    assert is_flow_removed(flow_removed_frame())
    assert not is_flow_removed(b"\x04\x0b\x00")
    assert not is_flow_removed(b"\x01\x0b" + bytes(6))
