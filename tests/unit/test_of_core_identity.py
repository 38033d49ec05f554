"""Claims on a connected switch's dpid: the incumbent's echo reply decides (issue 13)."""

from napps.kytos.of_core.identity import IdentityArbiter

DPID = "00:00:00:00:00:00:00:01"


def opened(timeout=0.5, **limits):
    arbiter = IdentityArbiter(timeout, **limits)
    claim = arbiter.open(DPID, "new", "old", probe_xid=7, now=10.0, first="features")
    assert claim is not None
    return arbiter, claim


def test_answer_to_the_probe_refuses_the_newcomer():
    arbiter, claim = opened()
    assert arbiter.waiting("new") and arbiter.pending_for(DPID)
    assert arbiter.answered("old", [6]) is None  # not our probe
    assert arbiter.answered("new", [7]) is None  # not the incumbent
    assert arbiter.answered("old", [7]) is claim
    assert not arbiter.waiting("new") and len(arbiter) == 0


def test_no_answer_within_the_timeout_hands_the_dpid_over_with_what_was_held():
    arbiter, claim = opened(timeout=0.5)
    assert arbiter.hold("new", "echo reply")
    assert arbiter.expired(10.49) == []
    assert arbiter.expired(10.5) == [claim]
    assert claim.held == ["features", "echo reply"]
    assert not arbiter.pending_for(DPID)


def test_incumbent_ending_during_the_probe_hands_over_at_once():
    arbiter, claim = opened()
    assert arbiter.connection_gone("old") is claim
    assert len(arbiter) == 0


def test_newcomer_ending_drops_its_claim():
    arbiter, _ = opened()
    assert arbiter.connection_gone("new") is None
    assert len(arbiter) == 0 and not arbiter.waiting("new")


def test_one_claim_per_dpid_and_held_outputs_are_bounded():
    arbiter, claim = opened(max_held=2)
    assert arbiter.open(DPID, "third", "old", probe_xid=8, now=10.1, first="f") is None
    assert arbiter.hold("new", "a")
    assert not arbiter.hold("new", "b")
    assert claim.dropped == 1 and claim.held == ["features", "a"]
