"""Framing of a switch's byte stream and hello version negotiation."""

import pytest
from pyof.v0x04.symmetric.echo_request import EchoRequest
from pyof.v0x04.symmetric.hello import Hello

from napps.kytos.of_core.hello import bitmap_versions, negotiate_version
from napps.kytos.of_core.stream import MessageFramer, StreamError
from xmpp_ofc.testing.fake_switch import hello_bytes


def drain(framer):
    frames = []
    while (frame := framer.next_message()) is not None:
        frames.append(frame)
    return frames


def negotiated_framer():
    framer = MessageFramer()
    framer.version = 4
    return framer


def test_messages_split_across_chunks_are_reassembled_byte_by_byte():
    stream = Hello(xid=1).pack() + EchoRequest(xid=2, data=b"abc").pack()
    framer = MessageFramer()
    frames = []
    for index in range(len(stream)):
        framer.feed(stream[index : index + 1])
        frames += drain(framer)
        if frames and framer.version is None:
            framer.version = 4
    assert frames == [Hello(xid=1).pack(), EchoRequest(xid=2, data=b"abc").pack()]
    assert framer.buffered == 0


def test_many_messages_in_one_chunk_come_out_in_order():
    framer = negotiated_framer()
    framer.feed(b"".join(EchoRequest(xid=i).pack() for i in range(50)))
    frames = drain(framer)
    assert [int.from_bytes(f[4:8], "big") for f in frames] == list(range(50))


def test_truncated_message_waits_for_the_rest():
    message = EchoRequest(xid=9, data=b"x" * 100).pack()
    framer = negotiated_framer()
    framer.feed(message[:50])
    assert framer.next_message() is None
    assert framer.buffered == 50
    framer.feed(message[50:])
    assert framer.next_message() == message


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "expected a HELLO first"),
        (EchoRequest(xid=1).pack(), "expected a HELLO first"),
        (b"\x00\x00\x00\x08\x00\x00\x00\x00", "expected a HELLO first"),  # version 0
        (b"\x04\x00\x00\x04\x00\x00\x00\x00", "less than the 8-byte header"),
    ],
)
def test_garbage_before_the_hello_is_rejected(data, reason):
    framer = MessageFramer()
    framer.feed(data)
    with pytest.raises(StreamError, match=reason):
        framer.next_message()


def test_garbage_after_the_hello_is_rejected():
    framer = negotiated_framer()
    framer.feed(EchoRequest(xid=1).pack() + b"\xde\xad\xbe\xef" * 4)
    assert framer.next_message() is not None
    with pytest.raises(StreamError, match="version 0xde"):
        framer.next_message()


def test_oversized_header_is_rejected_before_buffering_its_body():
    framer = MessageFramer(max_message_bytes=1024)
    framer.version = 4
    framer.feed(b"\x04\x02\x08\x00\x00\x00\x00\x01")  # announces 2048 bytes
    with pytest.raises(StreamError, match="more than the limit of 1024"):
        framer.next_message()


def test_hello_of_any_version_is_framed_before_negotiation():
    framer = MessageFramer()
    framer.feed(hello_bytes(version=1))
    assert framer.next_message() == hello_bytes(version=1)


@pytest.mark.parametrize(
    ("hello", "expected"),
    [
        (hello_bytes(4), 4),
        (hello_bytes(5), 4),  # newer switch without bitmap: min(5, 4)
        (hello_bytes(1), None),
        (hello_bytes(4, bitmap=[1, 4]), 4),
        (hello_bytes(6, bitmap=[4, 5, 6]), 4),
        (hello_bytes(6, bitmap=[1, 5, 6]), None),  # header says 6, bitmap excludes 1.3
        (hello_bytes(4, bitmap=[1]), None),  # bitmap wins over the header version
        (hello_bytes(4, bitmap=[4, 40]), 4),  # two bitmap words
    ],
)
def test_version_negotiation(hello, expected):
    assert negotiate_version(hello, {4}) == expected


def test_bitmap_parsing_skips_unknown_elements():
    unknown = b"\x00\x07\x00\x05\xaa\x00\x00\x00"  # type 7, length 5, padded to 8
    hello = hello_bytes(4, bitmap=[1, 4])
    body = hello[8:]
    message = bytes([4, 0]) + (8 + 8 + len(body)).to_bytes(2, "big") + b"\0\0\0\0"
    assert bitmap_versions(message + unknown + body) == {1, 4}


def test_malformed_hello_element_fails_negotiation():
    bad = b"\x04\x00\x00\x10\x00\x00\x00\x00" + b"\x00\x01\x00\x40\x00\x00\x00\x10"
    assert negotiate_version(bad, {4}) is None
