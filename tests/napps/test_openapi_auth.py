"""Every openapi.yml documents the 401 of exactly the calls ``rest_auth`` guards by default."""

from __future__ import annotations

import pytest

from tests.openapi_check import REPOSITORY, documented_operations
from xmpp_ofc import rest_auth

SPECS = sorted((REPOSITORY / "napps").glob("*/*/openapi.yml"))


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_401_is_documented_where_the_token_is_needed(spec):
    napp = f"{spec.parent.parent.name}/{spec.parent.name}"
    for (route, method), codes in documented_operations(spec).items():
        guarded = rest_auth.needs_token(method, f"/api/{napp}{route}", token_for_reads=False)
        assert ("401" in codes) is guarded, (napp, route, method)
        if guarded:
            assert "security: [{apiToken: []}]" in spec.read_text()


def test_there_are_specs():
    assert len(SPECS) >= 4
