"""Parse integers typed by a client, accepting ASCII digits only.

``str.isdigit()`` is true for '²' (which ``int()`` then refuses, a 500 instead
of a 400) and ``int()`` itself reads Arabic-Indic '٣' as 3 and '1_0' as 10.  A
REST path, query string or flow field is not meant to accept any of those, so
every user-supplied integer in the bundle goes through here.
"""

from __future__ import annotations

import re

_DECIMAL = re.compile(r"[0-9]+")
_LITERAL = re.compile(r"0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|[0-9]+")


def parse_decimal(text: str) -> int | None:
    """``text`` as a non-negative decimal integer, or None unless it is only ASCII 0-9."""
    if not _DECIMAL.fullmatch(text):
        return None
    return int(text, 10)


def parse_int_literal(text: str) -> int | None:
    """A non-negative decimal or 0x/0o/0b literal in ASCII, or None.

    Leading zeros in decimal are accepted (unlike ``int(text, 0)``): "010" is 10.
    """
    if not _LITERAL.fullmatch(text):
        return None
    if len(text) > 2 and text[0] == "0" and text[1] in "xXoObB":
        return int(text, 0)
    return int(text, 10)
