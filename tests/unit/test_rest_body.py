"""xmpp_ofc.rest_body: one way to refuse a bad REST body."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from xmpp_ofc.rest_body import (
    MAX_BODY_BYTES,
    RequestError,
    json_object,
    parse_json,
    read_body,
    require_bool,
)

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
        (b"[" * 5000, JSON, 400, "nested too deeply"),  # RecursionError inside json.loads
        (b'{"enabled": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", JSON, 400, "nested too deeply"),
        (b" " * (MAX_BODY_BYTES + 1), JSON, 413, "at most"),
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


def test_parse_json_takes_any_shape_and_a_caller_wording_for_empty():
    assert parse_json(b"[1]", JSON) == [1]
    assert parse_json(b" " * 10 + b"{}", JSON) == {}
    with pytest.raises(RequestError, match=r"^The request body is empty$"):
        parse_json(b"", JSON)
    with pytest.raises(RequestError, match=r"^nothing here$"):
        parse_json(b"", JSON, empty_message="nothing here")


def test_read_body_refuses_a_large_announced_length_without_reading():
    def must_not_read() -> bytes:
        raise AssertionError("read a body announced as too large")

    huge = SimpleNamespace(content_length=MAX_BODY_BYTES + 1, get_data=must_not_read)
    with pytest.raises(RequestError) as caught:
        read_body(huge)
    assert caught.value.status == 413
    small = SimpleNamespace(content_length=2, get_data=lambda: b"{}")
    assert read_body(small) == b"{}"
    chunked = SimpleNamespace(content_length=None, get_data=lambda: b"[]")
    assert read_body(chunked) == b"[]"
