"""Names for OFPT_ERROR type/code pairs, for logs and events people read."""

from __future__ import annotations

from pyof.v0x04.asynchronous.error_msg import ErrorType


def error_names(error_type: int, code: int) -> tuple[str, str]:
    """Return e.g. ``("OFPET_BAD_MATCH", "OFPBMC_BAD_PREREQ")``.

    Unknown numbers (experimenter errors, newer OpenFlow versions) come back as
    the decimal number so a log line is never lost to a lookup error.
    """
    try:
        kind = ErrorType(int(error_type))
    except ValueError:
        return str(int(error_type)), str(int(code))
    code_class = kind.get_class()
    try:
        return kind.name, code_class(int(code)).name
    except (ValueError, TypeError):
        return kind.name, str(int(code))
