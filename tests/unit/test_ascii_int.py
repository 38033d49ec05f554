"""User-typed integers: ASCII digits only, whatever str.isdigit() or int() would take."""

import pytest

from xmpp_ofc.ascii_int import parse_decimal, parse_int_literal


@pytest.mark.parametrize(("text", "number"), [("0", 0), ("7", 7), ("0065535", 65535)])
def test_decimal_reads_ascii_digits(text, number):
    assert parse_decimal(text) == number


@pytest.mark.parametrize(
    "text",
    ["", " 1", "1 ", "-1", "+1", "1_0", "0x10", "1.0", "\u00b2", "\u0663", "\uff11", "1\n"],
)
def test_decimal_refuses_everything_else(text):
    # '²' passes str.isdigit() but int() refuses it; int() reads Arabic-Indic and fullwidth digits
    assert parse_decimal(text) is None


@pytest.mark.parametrize(
    ("text", "number"),
    [("10", 10), ("010", 10), ("0x1F", 31), ("0XfF", 255), ("0o17", 15), ("0b101", 5)],
)
def test_literal_reads_decimal_and_prefixed_forms(text, number):
    assert parse_int_literal(text) == number


@pytest.mark.parametrize(
    "text", ["", "0x", "0xg", "1_0", "0x1_0", "-1", "\u0663", "0x\u0663", "1e3"]
)
def test_literal_refuses_everything_else(text):
    assert parse_int_literal(text) is None
