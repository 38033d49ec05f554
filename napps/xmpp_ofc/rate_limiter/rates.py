"""Rates from flow counters: the delta between two polls, never a whole-life average.

The seed divided a flow's packet_count by its duration_sec: a whole-life average
(a client that floods after an hour of silence is never caught, a login burst in
the first second looks like a flood) that divides by zero at 0 s. Here a rate is
always ``(counter now - counter at the previous sample) / elapsed``.

Which clock measures ``elapsed``: the flow's own duration, as reported by the
switch in the same reply as the counters. Both come from the switch's clock at
the same instant, so controller-side delays (a reply queued behind a 50k-entry
poll, a Kytos thread that ran late, an NTP step, a suspended VM) do not distort
the rate. The controller's monotonic clock is the fallback when the switch's
duration did not advance (switches that report whole seconds only).

Edge cases, all of which produce *no rate* rather than a wrong one:

* first sample of a flow: there is nothing to subtract. (The flow's own
  duration would give a whole-life average -- the seed's bug -- including the
  login burst; one poll of delay is the price of never using it.)
* a counter or the duration went down: the flow was deleted and re-created
  under the same cookie/match (e.g. re-added after a reconnect); the sample
  becomes the new baseline.
* elapsed below ``min_elapsed`` (two replies close together, e.g. our poll and
  of_core's own): the old baseline is kept so the next window is long enough.
* elapsed <= 0 on both clocks (a repeated reply, a clock that went back): rebase.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CounterSample:
    """One flow's counters as read in one poll, and when."""

    packet_count: int
    byte_count: int
    #: The flow's age in seconds (duration_sec + duration_nsec / 1e9).
    duration: float
    #: Controller monotonic time when the reply was handled.
    at: float


@dataclass(frozen=True, slots=True)
class Rate:
    """Per-second rates over one window."""

    packets_per_s: float
    bytes_per_s: float
    elapsed: float

    @property
    def packets_per_min(self) -> float:
        """The unit of the threshold."""
        return self.packets_per_s * 60.0

    @property
    def bytes_per_min(self) -> float:
        """Frame bytes per minute."""
        return self.bytes_per_s * 60.0

    def payload_bytes_per_min(self, header_bytes: int) -> float:
        """Bytes per minute beyond ``header_bytes`` per packet (0 for pure ACKs)."""
        return max(0.0, (self.bytes_per_s - self.packets_per_s * header_bytes) * 60.0)


class RateTracker:
    """The baseline sample of one flow and the rate it last produced.

    ``__slots__`` keeps one tracker per monitored client small: at 50k clients
    it is most of the limiter's memory.
    """

    __slots__ = ("last", "rate", "resets")

    def __init__(self) -> None:
        self.last: CounterSample | None = None
        self.rate: Rate | None = None
        #: How often the flow was seen re-created (counters or duration went down).
        self.resets = 0

    def update(self, sample: CounterSample, min_elapsed: float = 1.0) -> Rate | None:
        """Feed one sample; return the rate since the baseline, or None (see module doc)."""
        last = self.last
        if last is None:
            self.last = sample
            return None
        if (
            sample.packet_count < last.packet_count
            or sample.byte_count < last.byte_count
            or sample.duration < last.duration
        ):
            self.resets += 1
            self.last = sample
            self.rate = None
            return None
        elapsed = sample.duration - last.duration
        if elapsed <= 0:
            elapsed = sample.at - last.at
        if elapsed <= 0:
            self.last = sample
            return None
        if elapsed < min_elapsed:
            return None
        rate = Rate(
            packets_per_s=(sample.packet_count - last.packet_count) / elapsed,
            bytes_per_s=(sample.byte_count - last.byte_count) / elapsed,
            elapsed=elapsed,
        )
        self.last = sample
        self.rate = rate
        return rate
