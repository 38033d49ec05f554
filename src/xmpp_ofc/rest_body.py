"""Request-body checks shared by the bundle's REST endpoints (no Flask here).

Every endpoint answers bad input the same way: a 4xx with ``{"response": message}``
saying what is wrong, and nothing changed.  Handlers call these helpers first and
turn :class:`RequestError` into that answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

JSON_CONTENT_TYPE = "application/json"
MAX_BODY_BYTES = 1 << 20
"""Largest body any endpoint reads: the biggest real request (a few hundred flows) is far below."""

EMPTY_BODY = "The request body is empty"


class RequestError(Exception):
    """A request refused with ``status`` and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _HttpRequest(Protocol):
    """The two attributes of a Flask/werkzeug request that :func:`read_body` uses."""

    content_length: int | None

    def get_data(self) -> bytes: ...


def read_body(request: _HttpRequest) -> bytes:
    """The raw body, refusing (413) one that announces more than MAX_BODY_BYTES before reading it.

    werkzeug reads at most Content-Length bytes, so checking it first keeps a huge
    upload out of memory; :func:`parse_json` checks the length again for bodies
    that came without one.
    """
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise RequestError(413, _too_large(request.content_length))
    return request.get_data()


def parse_json(data: bytes, mimetype: str | None, empty_message: str = EMPTY_BODY) -> Any:
    """Decode a JSON body of any shape: 400 empty, 415 not JSON, 413 too large, 400 unreadable.

    ``empty_message`` lets flow_manager keep upstream's exact wording.  Every way
    ``json.loads`` can fail on client bytes is a 400 here -- including
    RecursionError for a body such as ``[[[[...`` nested thousands deep.
    """
    if not data:
        raise RequestError(400, empty_message)
    if mimetype != JSON_CONTENT_TYPE:
        raise RequestError(415, f"The request body must be {JSON_CONTENT_TYPE}, not {mimetype!r}")
    if len(data) > MAX_BODY_BYTES:
        raise RequestError(413, _too_large(len(data)))
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError(400, f"The request body is not valid JSON: {error}") from None
    except RecursionError:
        raise RequestError(400, "The request body has JSON nested too deeply") from None


def _too_large(size: int) -> str:
    return f"The request body is {size} bytes; at most {MAX_BODY_BYTES} are accepted"


def json_object(data: bytes, mimetype: str | None, allowed: Iterable[str]) -> dict[str, Any]:
    """Parse a JSON object body whose keys are a non-empty subset of ``allowed``.

    400 for an empty body, invalid JSON, a non-object, no keys or an unknown key;
    415 for a content type other than JSON; 413 for more than MAX_BODY_BYTES.
    """
    allowed = sorted(allowed)
    body = parse_json(data, mimetype, f"{EMPTY_BODY}; expected a JSON object with {allowed}")
    if not isinstance(body, Mapping):
        raise RequestError(
            400, f"The request body must be a JSON object, not {type(body).__name__}"
        )
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise RequestError(400, f"unknown key(s) {unknown}; allowed: {allowed}")
    if not body:
        raise RequestError(400, f"The request body names nothing to change; allowed: {allowed}")
    return dict(body)


def require_bool(body: Mapping[str, Any], key: str) -> bool:
    """``body[key]`` if it is a JSON boolean; 400 otherwise."""
    value = body[key]
    if not isinstance(value, bool):
        raise RequestError(400, f"{key}: expected true or false, got {json.dumps(value)}")
    return value
