"""Request-body checks shared by the bundle's REST endpoints (no Flask here).

Every endpoint answers bad input the same way: a 4xx with ``{"response": message}``
saying what is wrong, and nothing changed.  Handlers call these helpers first and
turn :class:`RequestError` into that answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

JSON_CONTENT_TYPE = "application/json"


class RequestError(Exception):
    """A request refused with ``status`` and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_object(data: bytes, mimetype: str | None, allowed: Iterable[str]) -> dict[str, Any]:
    """Parse a JSON object body whose keys are a non-empty subset of ``allowed``.

    400 for an empty body, invalid JSON, a non-object, no keys or an unknown key;
    415 for a content type other than JSON.
    """
    allowed = sorted(allowed)
    if not data:
        raise RequestError(400, f"The request body is empty; expected a JSON object with {allowed}")
    if mimetype != JSON_CONTENT_TYPE:
        raise RequestError(415, f"The request body must be {JSON_CONTENT_TYPE}, not {mimetype!r}")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError(400, f"The request body is not valid JSON: {error}") from None
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
