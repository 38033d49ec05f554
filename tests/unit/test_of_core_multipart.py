"""Multipart reassembly across REPLY_MORE, keyed by xid, bounded."""

from napps.kytos.of_core.multipart import OFPMPF_REPLY_MORE, MultipartAssembler

FLOW, PORT_STATS = 1, 4


def test_parts_are_joined_until_the_last_one():
    assembler = MultipartAssembler()
    assert assembler.add(7, FLOW, OFPMPF_REPLY_MORE, ["a", "b"]) is None
    assert assembler.add(7, FLOW, OFPMPF_REPLY_MORE, ["c"]) is None
    done = assembler.add(7, FLOW, 0, ["d"])
    assert (done.xid, done.multipart_type, done.body, done.parts) == (7, FLOW, list("abcd"), 3)
    assert len(assembler) == 0


def test_interleaved_xids_are_kept_apart():
    assembler = MultipartAssembler()
    assembler.add(1, FLOW, OFPMPF_REPLY_MORE, ["f1"])
    assembler.add(2, PORT_STATS, OFPMPF_REPLY_MORE, ["p1"])
    assert assembler.add(1, FLOW, 0, ["f2"]).body == ["f1", "f2"]
    assert assembler.add(2, PORT_STATS, 0, ["p2"]).body == ["p1", "p2"]


def test_single_part_reply_completes_at_once():
    assert MultipartAssembler().add(3, FLOW, 0, []).body == []


def test_in_flight_replies_are_bounded_dropping_the_oldest():
    assembler = MultipartAssembler(max_in_flight=2)
    for xid in (1, 2, 3):
        assembler.add(xid, FLOW, OFPMPF_REPLY_MORE, [xid])
    assert len(assembler) == 2
    assert assembler.discarded == 1
    # xid 1 was dropped: its last part starts (and ends) a fresh reply
    assert assembler.add(1, FLOW, 0, ["late"]).body == ["late"]
    assert assembler.add(3, FLOW, 0, []).body == [3]


def test_reply_beyond_max_entries_is_discarded_whole():
    assembler = MultipartAssembler(max_entries=3)
    assembler.add(5, FLOW, OFPMPF_REPLY_MORE, [1, 2])
    assert assembler.add(5, FLOW, OFPMPF_REPLY_MORE, [3, 4]) is None
    assert assembler.add(5, FLOW, 0, [5]) is None  # swallowed, not half a table
    assert assembler.discarded == 1
    assert len(assembler) == 0
    assert assembler.add(6, FLOW, 0, [1, 2, 3]).body == [1, 2, 3]


def test_xid_reused_by_another_type_restarts_the_reply():
    assembler = MultipartAssembler()
    assembler.add(9, FLOW, OFPMPF_REPLY_MORE, ["flow"])
    assert assembler.add(9, PORT_STATS, 0, ["port"]).body == ["port"]
    assert assembler.discarded == 1


def test_clear_forgets_partial_replies():
    assembler = MultipartAssembler()
    assembler.add(1, FLOW, OFPMPF_REPLY_MORE, ["x"])
    assert assembler.clear() == 1
    assert assembler.add(1, FLOW, 0, ["y"]).body == ["y"]
