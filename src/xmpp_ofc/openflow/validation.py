"""Input checks that name the offending key and value.

Every error a user can cause carries a *path* such as ``flows[0].match.nw_src``
so that a REST client (or an event producer reading the log) can find the bad
value without guessing which of fifty flows was wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class FlowValidationError(ValueError):
    """A flow, match, action or instruction that must not reach a switch."""


def fail(path: str, value: Any, reason: str) -> FlowValidationError:
    """Build the error for ``value`` found at ``path``."""
    return FlowValidationError(f"{path}: {value!r} {reason}")


def require_int(path: str, value: Any, low: int, high: int) -> int:
    """Return ``value`` if it is an int in ``[low, high]``.

    ``bool`` is rejected although it is an ``int`` subclass: ``true`` as a port
    number is a client bug, not port 1.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(path, value, "is not an integer")
    if not low <= value <= high:
        raise fail(path, value, f"is out of range {low}..{high}")
    return value


def require_mapping(path: str, value: Any) -> Mapping[str, Any]:
    """Return ``value`` if it is a JSON object."""
    if not isinstance(value, Mapping):
        raise fail(path, value, "is not a JSON object")
    return value


def require_list(path: str, value: Any) -> list[Any]:
    """Return ``value`` if it is a JSON array."""
    if not isinstance(value, list):
        raise fail(path, value, "is not a JSON array")
    return value


def reject_unknown_keys(path: str, given: Iterable[str], allowed: Iterable[str]) -> None:
    """Refuse keys we do not understand instead of silently ignoring them.

    Upstream ignored unknown keys, so a typo such as ``idle_timout`` installed a
    permanent flow.  Refusing is the only way the typo gets noticed.
    """
    allowed_set = set(allowed)
    unknown = sorted(str(key) for key in given if key not in allowed_set)
    if unknown:
        raise FlowValidationError(
            f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(allowed_set))}"
        )


def as_int(value: Any) -> int:
    """Return the int inside a pyof field, an enum member or a plain int.

    Messages unpacked by pyof hold ``GenericType`` objects (``.value``); messages
    we built ourselves hold plain ints or enum members.
    """
    return int(getattr(value, "value", value))
