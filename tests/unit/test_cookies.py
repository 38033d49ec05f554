"""The cookie plan: encoding, decoding, selectors and the plan's invariants."""

import pytest

from xmpp_ofc import cookies
from xmpp_ofc.cookies import Cookie, CookieError, Kind, Owner


def test_encode_places_owner_kind_and_id():
    assert cookies.encode(Owner.L2_SWITCH, Kind.FORWARDING, 0x0A0B0C0D0E0F) == 0xA2020A0B0C0D0E0F


def test_decode_inverts_encode_for_every_planned_pair():
    for owner, kinds in cookies.PLAN.items():
        for kind in kinds:
            for ident in (0, 1, cookies.MAX_ID):
                assert cookies.decode(cookies.encode(owner, kind, ident)) == Cookie(
                    owner, kind, ident
                )


@pytest.mark.parametrize(
    "owner, kind, ident",
    [
        (Owner.L2_SWITCH, Kind.FORWARDING, -1),
        (Owner.L2_SWITCH, Kind.FORWARDING, 1 << 48),
        (Owner.L2_SWITCH, Kind.FORWARDING, True),
        (Owner.L2_SWITCH, Kind.FORWARDING, "1"),
        (Owner.DISPATCHER, Kind.BLOCK, 0),
        (Owner.RATE_LIMITER, Kind.FORWARDING, 0),
    ],
)
def test_encode_refuses_what_the_plan_does_not_allow(owner, kind, ident):
    with pytest.raises(CookieError):
        cookies.encode(owner, kind, ident)


@pytest.mark.parametrize(
    "cookie",
    [0, 1, cookies.NO_FLOW_COOKIE, 0xA400000000000000, 0xA2FF000000000000, -1, 1 << 64],
)
def test_decode_returns_none_for_foreign_cookies(cookie):
    assert cookies.decode(cookie) is None


def test_owner_of_ignores_unknown_kinds_but_not_unknown_owners():
    assert cookies.owner_of(0xA2FF000000000001) is Owner.L2_SWITCH
    assert cookies.owner_of(0xA400000000000000) is None
    assert cookies.owner_of(cookies.NO_FLOW_COOKIE) is None
    assert cookies.owner_of(0) is None


def test_no_owner_uses_the_reserved_bytes_and_all_share_the_namespace():
    for owner in Owner:
        assert owner not in (0x00, 0xFF)
        assert cookies.is_ours(cookies.encode(owner, next(iter(cookies.PLAN[owner]))))
    assert not cookies.is_ours(0)
    assert not cookies.is_ours(cookies.NO_FLOW_COOKIE)


def test_select_owner_selects_all_of_its_flows_and_none_of_others():
    selector = cookies.select_owner(Owner.RATE_LIMITER)
    assert cookies.selects(selector, cookies.encode(Owner.RATE_LIMITER, Kind.MONITOR, 77))
    assert cookies.selects(selector, cookies.encode(Owner.RATE_LIMITER, Kind.BLOCK, 0))
    assert not cookies.selects(selector, cookies.encode(Owner.L2_SWITCH, Kind.TABLE_MISS))
    assert selector[1] != 0, "a zero mask would select every flow (the seed's bug)"


def test_select_kind_separates_kinds_of_one_owner():
    selector = cookies.select_kind(Owner.RATE_LIMITER, Kind.MONITOR)
    assert cookies.selects(selector, cookies.encode(Owner.RATE_LIMITER, Kind.MONITOR, 5))
    assert not cookies.selects(selector, cookies.encode(Owner.RATE_LIMITER, Kind.BLOCK, 5))


def test_select_exact_selects_one_cookie():
    selector = cookies.select_exact(Owner.L2_SWITCH, Kind.FORWARDING, 0x112233445566)
    assert cookies.selects(
        selector, cookies.encode(Owner.L2_SWITCH, Kind.FORWARDING, 0x112233445566)
    )
    assert not cookies.selects(
        selector, cookies.encode(Owner.L2_SWITCH, Kind.FORWARDING, 0x112233445567)
    )


def test_select_ours_covers_every_owner_but_not_foreign_flows():
    selector = cookies.select_ours()
    for owner, kinds in cookies.PLAN.items():
        for kind in kinds:
            assert cookies.selects(selector, cookies.encode(owner, kind, 9))
    assert not cookies.selects(selector, 0)
    assert not cookies.selects(selector, 0x10A2000000000000)


def test_owner_module_names_round_trip():
    for owner in Owner:
        assert cookies.owner_by_module(owner.module_name) is owner
    with pytest.raises(KeyError):
        cookies.owner_by_module("of_l2ls")
