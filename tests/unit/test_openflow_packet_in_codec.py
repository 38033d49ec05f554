"""The struct PACKET_IN codec against python-openflow, the reference, field by field."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyof.foundation.basic_types import UBInt32
from pyof.v0x04.asynchronous.packet_in import PacketIn, PacketInReason
from pyof.v0x04.common.flow_match import Match, OxmOfbMatchField, OxmTLV
from pyof.v0x04.common.utils import unpack_message

from napps.kytos.of_core.inbound import PacketInMessage, parse_message
from xmpp_ofc import pyof_decode
from xmpp_ofc.openflow.match import match_to_dict
from xmpp_ofc.openflow.packet_in_codec import (
    PacketInDecodeError,
    decode_packet_in,
    is_packet_in,
)


def _in_port_tlv(port: int) -> OxmTLV:
    return OxmTLV(oxm_field=OxmOfbMatchField.OFPXMT_OFB_IN_PORT, oxm_value=UBInt32(port).pack())


def packet_in_frame(
    *,
    xid=1,
    buffer_id=0xFFFFFFFF,
    reason=0,
    table_id=1,
    cookie=0,
    in_port=3,
    data=b"\x00" * 14,
    total_len=None,
) -> bytes:
    tlvs = [] if in_port is None else [_in_port_tlv(in_port)]
    return PacketIn(
        xid=xid,
        buffer_id=buffer_id,
        total_len=len(data) if total_len is None else total_len,
        reason=PacketInReason(reason),
        table_id=table_id,
        cookie=cookie,
        match=Match(oxm_match_fields=tlvs),
        data=data,
    ).pack()


@settings(max_examples=200, deadline=None)
@given(
    xid=st.integers(0, 2**32 - 1),
    buffer_id=st.integers(0, 2**32 - 1),
    reason=st.integers(0, 2),
    table_id=st.integers(0, 254),
    cookie=st.integers(0, 2**64 - 1),
    in_port=st.one_of(st.none(), st.integers(1, 0xFFFFFF00)),
    data=st.binary(max_size=200),
    total_len=st.integers(0, 0xFFFF),
)
def test_every_field_matches_pyof(
    xid, buffer_id, reason, table_id, cookie, in_port, data, total_len
):
    frame = packet_in_frame(
        xid=xid,
        buffer_id=buffer_id,
        reason=reason,
        table_id=table_id,
        cookie=cookie,
        in_port=in_port,
        data=data,
        total_len=total_len,
    )
    record = decode_packet_in(frame)
    reference = unpack_message(frame)
    assert record.xid == reference.header.xid.value
    assert record.buffer_id == reference.buffer_id.value
    assert record.total_len == reference.total_len.value
    assert record.reason == int(reference.reason.value)
    assert record.table_id == reference.table_id.value
    assert record.cookie == reference.cookie.value
    assert record.match == match_to_dict(reference.match)
    assert record.data == reference.data.value
    assert record.in_port == (reference.in_port if in_port is not None else None)


def test_of_core_publishes_a_lazy_message_that_unpacks_pyof_only_when_read():
    frame = packet_in_frame(cookie=0x0102, in_port=7, data=b"abc")
    message = parse_message(frame)
    assert isinstance(message, PacketInMessage)
    assert message._pyof is None
    assert message.header.xid.value == 1
    assert pyof_decode.cookie_of(message) == 0x0102
    assert message._pyof is None  # routing and decoding read the record
    decoded = pyof_decode.packet_in("00:00:00:00:00:00:00:01", message)
    assert decoded.in_port == 7 and decoded.cookie == 0x0102 and decoded.total_len == 3
    assert message._pyof is None
    # an upstream listener reading pyof fields gets pyof's objects
    assert message.in_port == 7
    assert message.data.value == b"abc"
    assert message.pack() == frame


def test_fast_and_pyof_decode_give_the_same_decoded_packet_in():
    frame = packet_in_frame(cookie=5, in_port=2, data=bytes(range(60)))
    fast = pyof_decode.packet_in("d", parse_message(frame))
    slow = pyof_decode.packet_in("d", unpack_message(frame))
    assert fast == slow


def test_no_in_port_is_ignored_like_the_pyof_path():
    assert pyof_decode.packet_in("d", parse_message(packet_in_frame(in_port=None))) is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda f: f[:20],  # shorter than the fixed part
        lambda f: f[:2] + (len(f) + 1).to_bytes(2, "big") + f[4:],  # header length lies
        lambda f: f[:26] + (200).to_bytes(2, "big") + f[28:],  # match overruns
    ],
)
def test_malformed_frames_raise_a_value_error(mangle):
    frame = mangle(packet_in_frame())
    assert is_packet_in(frame)
    with pytest.raises(PacketInDecodeError):
        decode_packet_in(frame)
