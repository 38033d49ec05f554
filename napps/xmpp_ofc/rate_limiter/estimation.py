"""Rate estimation: a flow-stats entry of a monitor flow -> what its connection sent.

One reply carries the counters of every monitor of a switch. Each connection's
:class:`~.rates.RateTracker` keeps the baseline (the previous sample); the usage
since then (:class:`~.policy.Usage`: packets, payload bytes, seconds) is what the
policy spends from the buckets. A monitor we installed is judged at its very first
poll, from a zero baseline: it counted every packet since the connection's SYN, so
a flood that starts with its connection waits for no baseline. An adopted or
replaced flow (older than our install) only sets the baseline, as :mod:`.rates`
explains. The displayed rates (GET ``monitored``) are the tracker's.

No switch, no policy, no bookkeeping: counters in, usage out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from napps.xmpp_ofc.rate_limiter.policy import Usage
from napps.xmpp_ofc.rate_limiter.rates import CounterSample, RateTracker
from napps.xmpp_ofc.rate_limiter.state import STALE_SLACK_S
from xmpp_ofc import cookies
from xmpp_ofc.cookies import Kind
from xmpp_ofc.messages import FlowStatsEntry


def monitor_entries(entries: Iterable[FlowStatsEntry]) -> Iterator[FlowStatsEntry]:
    """The entries of our monitor flows (a reply may answer of_core's poll of every flow)."""
    monitor_kind = Kind.MONITOR
    for entry in entries:
        if (entry.cookie >> cookies.KIND_SHIFT) & 0xFF != monitor_kind or (
            cookies.owner_of(entry.cookie) is not cookies.Owner.RATE_LIMITER
        ):
            continue
        yield entry


def min_window(poll_interval_s: float) -> float:
    """The shortest window judged: two replies closer than this keep the old baseline."""
    return min(1.0, poll_interval_s / 2)


def usage_since_last_poll(
    tracker: RateTracker,
    installed_at: float,
    sample: CounterSample,
    min_elapsed: float,
    header: int,
) -> Usage | None:
    """What the connection sent since its baseline, or None when there is no window yet.

    Feeds ``sample`` to ``tracker`` (the displayed rates and the next baseline).
    ``installed_at``: monotonic time we installed the monitor flow; the first sample
    of a flow no older than that is a delta from zero.
    """
    previous = tracker.last
    fresh = previous is None and sample.duration <= (sample.at - installed_at) + STALE_SLACK_S
    rate = tracker.update(sample, min_elapsed)
    if rate is not None and previous is not None:
        packets = sample.packet_count - previous.packet_count
        octets = sample.byte_count - previous.byte_count
        elapsed = rate.elapsed
    elif fresh:
        packets, octets = sample.packet_count, sample.byte_count
        elapsed = max(sample.duration, 1e-3)
    else:
        return None
    return Usage(packets, max(0.0, octets - packets * header), elapsed)
