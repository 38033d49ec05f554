"""Environment overrides for NApp settings.

NApp ``settings.py`` files are plain modules; tests, benchmarks and the lab
need other values without editing them (e.g. a 1 s echo interval so a silent
switch is declared dead quickly).  Each setting may be overridden by an
environment variable ``<PREFIX><NAME>``, parsed to the type of its default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T", bool, int, float, str)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingError(ValueError):
    """An environment override that cannot be parsed as its setting's type."""


def _parse(raw: str, default: T, variable: str) -> T:
    text = raw.strip()
    if isinstance(default, bool):  # before int: bool is an int subclass
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise SettingError(f"{variable}={raw!r}: expected one of {sorted(_TRUE | _FALSE)}")
    try:
        return type(default)(text)
    except ValueError as error:
        raise SettingError(f"{variable}={raw!r}: expected {type(default).__name__}") from error


def env_setting(prefix: str, name: str, default: T, environ: Mapping[str, str] | None = None) -> T:
    """Return ``default`` or the value of ``$<prefix><name>`` parsed to its type.

    A malformed value raises :class:`SettingError` naming the variable: a
    typo in a deployment should stop the NApp loudly, not be ignored.
    """
    environ = os.environ if environ is None else environ
    variable = f"{prefix}{name}"
    raw = environ.get(variable)
    if raw is None:
        return default
    return _parse(raw, default, variable)
