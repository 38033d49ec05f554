"""What a REST call to the rate limiter can do wrong, one exception per HTTP status.

The shell (main.py) maps each class to its status code; the message says what was
wrong and goes into the response body as it is.
"""


class LimiterError(Exception):
    """Base of the errors a REST call can cause; the message says what was wrong."""


class UnknownSwitchError(LimiterError, KeyError):
    """The dpid was never seen (REST 404)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NotBlockedError(LimiterError, KeyError):
    """Unblock of a client that is not blocked (REST 404)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class WhitelistedError(LimiterError):
    """Manual block of a whitelisted address (REST 409)."""


class InvalidRequestError(LimiterError, ValueError):
    """A malformed address, port or duration (REST 400)."""
