"""xmpp_ofc.rest_body: one way to refuse a bad REST body."""

from __future__ import annotations

import pytest

from xmpp_ofc.rest_body import RequestError, json_object, require_bool

JSON = "application/json"


@pytest.mark.parametrize(
    ("data", "mimetype", "status", "says"),
    [
        (b"", JSON, 400, "empty"),
        (b'{"enabled": true}', "text/plain", 415, "application/json"),
        (b"{", JSON, 400, "not valid JSON"),
        (b"\xff", JSON, 400, "not valid JSON"),
        (b"[1]", JSON, 400, "JSON object"),
        (b"{}", JSON, 400, "nothing to change"),
        (b'{"enabled": true, "x": 1}', JSON, 400, "'x'"),
    ],
)
def test_bad_bodies_are_refused_with_a_message(data, mimetype, status, says):
    with pytest.raises(RequestError) as caught:
        json_object(data, mimetype, ["enabled"])
    assert caught.value.status == status
    assert says in caught.value.message


def test_good_body_and_booleans():
    body = json_object(b'{"enabled": false}', JSON, ["enabled", "other"])
    assert require_bool(body, "enabled") is False
    with pytest.raises(RequestError, match="true or false"):
        require_bool({"enabled": 0}, "enabled")
