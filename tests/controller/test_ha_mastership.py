"""Mastership elected through a real PostgreSQL: one master per switch, fenced by generation."""

from __future__ import annotations

import os
import threading
import time

import pytest

from xmpp_ofc.ha.mastership import Mastership, MastershipUnavailable
from xmpp_ofc.testing.postgres import PostgresServer, postgres_bin_dir

pytestmark = pytest.mark.skipif(
    postgres_bin_dir() is None or os.geteuid() != 0,
    reason="needs root and Debian's postgresql (scripts/ensure-system-deps.sh installs it)",
)
DPID = "00:00:00:00:00:00:00:01"


@pytest.fixture(scope="module")
def pg():
    with PostgresServer() as server:
        yield server


def test_one_master_the_other_told_who(pg):
    a, b = Mastership(pg.url, "a"), Mastership(pg.url, "b")
    first = a.claim("s1")
    assert first.master and first.generation == 1
    second = b.claim("s1")
    assert not second.master and second.holder == "a" and second.generation == 1
    assert a.claim("s1").generation == 1  # renewing keeps the generation
    assert 0 < a.claim("s1").lease_left_s <= a.lease_s


def test_a_dead_masters_lease_runs_out_and_the_new_master_fences_it(pg):
    a, b = Mastership(pg.url, "a", lease_s=0.5), Mastership(pg.url, "b", lease_s=0.5)
    assert a.claim("s2").master
    time.sleep(0.7)  # "a" was killed: it renews no more
    taken = b.claim("s2")
    assert taken.master and taken.generation == 2
    back = a.claim("s2")  # the old master returns while b's lease runs
    assert not back.master and back.holder == "b" and back.generation == 2


def test_a_clean_release_hands_over_at_once(pg):
    a, b = Mastership(pg.url, "a", lease_s=60), Mastership(pg.url, "b", lease_s=60)
    assert a.claim("s3").master
    a.release("s3")
    assert b.claim("s3").master


def test_concurrent_claims_elect_exactly_one(pg):
    contenders = [Mastership(pg.url, f"c{n}") for n in range(8)]
    results = []
    start = threading.Barrier(len(contenders))

    def claim(m: Mastership) -> None:
        start.wait()
        results.append(m.claim("s4"))

    threads = [threading.Thread(target=claim, args=(m,)) for m in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 8
    assert len({r.holder for r in results}) == 1
    assert sum(r.master for r in results) == 1


def test_an_unreachable_database_says_so():
    m = Mastership("postgresql://postgres@127.0.0.1:1/none", "a")
    with pytest.raises(MastershipUnavailable, match="unreachable"):
        m.claim(DPID)
