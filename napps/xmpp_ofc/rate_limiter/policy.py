"""The flood policy, in shaper terms: two token buckets per connection, judged at each poll.

Read this file to know when a client is blocked. Everything else in the rate
limiter measures (flow counters -> what a connection sent since the last poll) or
enforces (drop flows, escalation); the decision is :func:`judge`.

Each monitored connection has an :class:`Allowance`'s worth of two buckets, the
model of ejabberd's shapers and prosody's mod_limits:

* **payload bytes**: refilled at ``payload_rate_bps`` up to ``payload_burst_bytes``.
  Payload = frame bytes minus a pure ACK's headers per packet, so a heavy
  *receiver* (whose ACKs carry no payload) spends nothing from it.
* **messages**: refilled at ``message_rate_per_s`` up to ``message_burst``. Flow
  counters see packets, not stanzas; a message is estimated as a data packet,
  at most one per :data:`MIN_STANZA_BYTES` of payload (:func:`estimated_messages`).
  This bucket is what stops a flood of short messages: 20 msg/s of ~140 bytes is
  2.8 kB/s, under ejabberd's own byte shaper.

A bucket is *dry* when a window asked for more than it held. A client is acted on
only when a bucket has stayed dry for ``sustain_s`` (a large stanza or a burst of
messages empties a bucket for one window; a flood keeps it empty). Tokens never go
below zero, so a past burst is not a debt that keeps a client dry afterwards.

A connection starts with full buckets (a login is ~10 packets), except a *suspect*
(its address offended lately): it starts empty, so a reconnecting spammer gets no
fresh burst.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The smallest chat stanza's payload (``<message to='a@b'><body>x</body></message>``).
MIN_STANZA_BYTES = 60
#: Polls run on a timer and replies come back a little late or early: a dry spell
#: seen at polls 1.95 s apart has lasted the 2 s it was asked to.
SUSTAIN_SLACK_S = 0.25
#: Payload bytes per packet not counted towards a message: TCP options beyond the
#: timestamps (SACK blocks) make an ACK look like it carries a few bytes.
ACK_SLACK_BYTES = 20


@dataclass(frozen=True, slots=True)
class Allowance:
    """What one connection may send: sustained rates, bursts, and the patience."""

    payload_rate_bps: float
    payload_burst_bytes: float
    message_rate_per_s: float
    message_burst: float
    sustain_s: float


@dataclass(frozen=True, slots=True)
class Usage:
    """What one connection sent during one window (from two counter samples)."""

    packets: int
    payload_bytes: float
    elapsed: float

    @property
    def messages(self) -> float:
        """Estimated messages (see :func:`estimated_messages`)."""
        return estimated_messages(self.packets, self.payload_bytes)


def estimated_messages(packets: float, payload_bytes: float) -> float:
    """Data packets in a window, estimated from its packet and payload counts.

    At most one per packet, and at most one per MIN_STANZA_BYTES of payload beyond
    ACK_SLACK_BYTES a packet: pure ACKs count nothing, a flood of short stanzas
    counts one per packet.
    """
    return max(
        0.0, min(float(packets), (payload_bytes - packets * ACK_SLACK_BYTES) / MIN_STANZA_BYTES)
    )


class Buckets:
    """One connection's token buckets and since when one of them is dry."""

    __slots__ = ("dry_since", "messages", "payload")

    def __init__(self, allowance: Allowance, *, full: bool = True) -> None:
        self.payload = allowance.payload_burst_bytes if full else 0.0
        self.messages = allowance.message_burst if full else 0.0
        #: Monotonic time of the first poll of the current dry spell (None: not dry).
        self.dry_since: float | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one window: over the allowance, and whether to act now."""

    #: A bucket ran dry in this window.
    over: bool
    #: A bucket has been dry for at least ``sustain_s``: block (or flag).
    act: bool
    #: Why, in the units of the settings (history, logs).
    reason: str


WITHIN = Verdict(False, False, "")


def _drain(
    tokens: float, rate: float, burst: float, elapsed: float, spent: float
) -> tuple[float, bool]:
    """(tokens left, dry) after a window: refill, spend, clamp to [0, burst]."""
    left = tokens + rate * elapsed - spent
    if left < 0:
        return 0.0, True
    return min(burst, left), False


def judge(buckets: Buckets, usage: Usage, allowance: Allowance, now: float) -> Verdict:
    """Spend one window's usage from ``buckets``; say whether the client must be stopped."""
    buckets.payload, payload_dry = _drain(
        buckets.payload,
        allowance.payload_rate_bps,
        allowance.payload_burst_bytes,
        usage.elapsed,
        usage.payload_bytes,
    )
    messages = usage.messages
    buckets.messages, messages_dry = _drain(
        buckets.messages,
        allowance.message_rate_per_s,
        allowance.message_burst,
        usage.elapsed,
        messages,
    )
    if not (payload_dry or messages_dry):
        buckets.dry_since = None
        return WITHIN
    if buckets.dry_since is None:
        buckets.dry_since = now
    dry_for = now - buckets.dry_since
    elapsed = max(usage.elapsed, 1e-9)
    over = []
    if messages_dry:
        over.append(f"{messages / elapsed:.1f} msg/s > {allowance.message_rate_per_s:g} msg/s")
    if payload_dry:
        over.append(
            f"{usage.payload_bytes / elapsed:.0f} payload B/s > {allowance.payload_rate_bps:g} B/s"
        )
    reason = f"{' and '.join(over)}, burst spent, for {dry_for:.1f} s"
    return Verdict(True, dry_for + SUSTAIN_SLACK_S >= allowance.sustain_s, reason)
