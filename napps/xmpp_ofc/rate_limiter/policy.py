"""The rate limiter's whole policy: when a client is stopped, how, and for how long.

Read this file to know what the rate limiter decides. Everything else measures
(:mod:`.estimation`: flow counters -> what a connection sent since the last poll),
keeps books (:mod:`.monitors`, :mod:`.blocks`, :mod:`.escalation`'s record of
offences) or enforces (:mod:`.enforcement`: drop flows, meters); the coordinator
(:mod:`.limiter`) asks this module at each step. All of it is pure: values in,
decisions out, no switch and no Kytos.

1. **When: two token buckets per connection** (:func:`judge`), the model of
   ejabberd's shapers and prosody's mod_limits. Each monitored connection has an
   :class:`Allowance`'s worth of two buckets:

   * **payload bytes**: refilled at ``payload_rate_bps`` up to ``payload_burst_bytes``.
     Payload = frame bytes minus a pure ACK's headers per packet, so a heavy
     *receiver* (whose ACKs carry no payload) spends nothing from it.
   * **messages**: refilled at ``message_rate_per_s`` up to ``message_burst``. Flow
     counters see packets, not stanzas; a message is estimated as a data packet,
     at most one per :data:`MIN_STANZA_BYTES` of payload (:func:`estimated_messages`).
     This bucket is what stops a flood of short messages: 20 msg/s of ~140 bytes is
     2.8 kB/s, under ejabberd's own byte shaper.

   A bucket is *dry* when a window asked for more than it held. A client is acted
   on only when a bucket has stayed dry for ``sustain_s`` (a large stanza or a burst
   of messages empties a bucket for one window; a flood keeps it empty). Tokens
   never go below zero, so a past burst is not a debt that keeps a client dry
   afterwards. A connection starts with full buckets (a login is ~10 packets),
   except a *suspect* (point 4): it starts empty.

2. **How: flag or block** (:func:`why_not_block`). A client acted on is blocked,
   except a whitelisted one, any client in ``monitor`` mode, and a metered one (meter
   mode: its meter polices it in the switch) -- those are flagged once (history
   ``flag``). Graduated response: a metered client still dry :data:`METER_GRACE_S`
   after ``sustain_s`` is blocked anyway (police, then block, then escalate).

3. **How long: escalation** (:func:`sentence`, fail2ban's ``bantime.increment``).
   Every automatic block is an offence of its address; the n-th offence within
   ``offence_window_s`` of the previous one is blocked for ``block_duration_s`` *
   2^(n-1), at most ``block_max_s``; from offence ``address_block_after`` on, the
   whole address is blocked (every source port, each XMPP port). A block the switch
   refused is no offence; an operator's unblock forgives the address.

4. **Reconnects** (:func:`blocks_reconnect`, :func:`is_suspect`). A new connection of
   an address that has an automatic per-connection block, or that offended within
   the window, is a *suspect*: its buckets start empty (no fresh burst). With
   ``per_ip_aggregate`` (off by default: NAT-safe) a new connection of an address
   with an automatic block is blocked at once until that block ends.

5. **Address totals** (:class:`AddressTotals`, only with ``per_ip_aggregate``): the
   estimated messages/s of all connections of one address are summed; an address
   over ``aggregate_messages_per_s`` for ``sustain_s`` is blocked as a whole.

6. **Connection floods** (counted by :mod:`.connection_guard`: more than 50 new
   connections in 10 s from one address, or 200 from one /24 or /64, is a
   flood): the address gets a whole-address block, the prefix a prefix block of
   its new connections, each for the guard's block period (60 s).

7. **Never blocked automatically** (:func:`exemption`, :func:`never_blocked`):
   whitelisted addresses (for a prefix: one overlapping the whitelist), the
   protected XMPP server's ``protected_addresses`` (a prefix containing one),
   addresses that are never a client (unspecified, loopback, link-local,
   multicast), and anything in ``monitor`` mode; they are flagged or logged
   instead. Manual blocks are the operator's, but never of those addresses
   (:mod:`.guards`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from napps.xmpp_ofc.rate_limiter import guards

#: The smallest chat stanza's payload (``<message to='a@b'><body>x</body></message>``).
MIN_STANZA_BYTES = 60
#: Polls run on a timer and replies come back a little late or early: a dry spell
#: seen at polls 1.95 s apart has lasted the 2 s it was asked to.
SUSTAIN_SLACK_S = 0.25
#: Payload bytes per packet not counted towards a message: TCP options beyond the
#: timestamps (SACK blocks) make an ACK look like it carries a few bytes.
ACK_SLACK_BYTES = 20
#: Seconds a metered client may stay over its allowance before it is blocked anyway.
METER_GRACE_S = 30.0


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


# --- 1. when: the buckets ------------------------------------------------------------


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


# --- 2. how: flag or block ---------------------------------------------------------------


def why_not_block(
    *,
    exempt: str | None,
    monitor_mode: bool,
    metered: bool,
    dry_since: float | None,
    now: float,
    sustain_s: float,
) -> str | None:
    """Why a client acted on is only flagged (history text), or None: block it.

    ``exempt``: the client's :func:`exemption`, if any.
    """
    if exempt is not None:
        return exempt
    if monitor_mode:
        return "monitor-only mode"
    if metered and not meter_not_enough(dry_since, now, sustain_s):
        return "metered"  # its meter polices it in the switch
    return None


def meter_not_enough(dry_since: float | None, now: float, sustain_s: float) -> bool:
    """Graduated response: a metered client still dry after METER_GRACE_S is blocked.

    Its monitor flow counts what it sends before the meter drops the excess, so a
    client that keeps trying past its meter for that long is a flooder, not a burst.
    """
    return dry_since is not None and now - dry_since >= sustain_s + METER_GRACE_S


# --- 3. how long: escalation ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sentence:
    """What the n-th offence gets."""

    offence: int
    duration_s: int
    whole_address: bool


def sentence(
    offence: int,
    *,
    block_duration_s: int,
    block_max_s: int,
    address_block_after: int,
) -> Sentence:
    """The block for the ``offence``-th offence (1-based) of one address."""
    doubling = min(offence - 1, 30)  # 2**30 s outlasts any block_max_s
    duration = min(block_max_s, block_duration_s * 2**doubling)
    whole = address_block_after > 0 and offence >= address_block_after
    return Sentence(offence, max(1, duration), whole)


def sentence_reason(
    why: str,
    given: Sentence,
    *,
    ip: str,
    offence_window_s: int,
    address_block_after: int,
    whole_already: bool,
) -> str:
    """The history reason of an automatic block: why, which offence, for how long.

    e.g. ``20.0 msg/s > 5 msg/s, burst spent, for 2.0 s; offence 2 of 10.0.0.7
    within 3600 s (from offence 2: the whole address); 120 s``.
    """
    detail = f"offence {given.offence} of {ip} within {offence_window_s} s"
    if given.whole_address and not whole_already:
        detail += f" (from offence {address_block_after}: the whole address)"
    return f"{why}; {detail}; {given.duration_s} s"


# --- 4. reconnects ---------------------------------------------------------------------------


def blocks_reconnect(*, per_ip_aggregate: bool, monitor_mode: bool, exempt: bool) -> bool:
    """Whether a new connection of an address with an automatic block is blocked at once.

    Off by default: behind a NAT one address is many users, and blocking every new
    connection of the address would punish the flooder's neighbours. Then the
    reconnect is a suspect instead (:func:`is_suspect`).
    """
    return per_ip_aggregate and not monitor_mode and not exempt


def is_suspect(*, address_blocked: bool, recent_offences: int) -> bool:
    """A new connection whose buckets start empty (its address is blocked or offended)."""
    return address_blocked or recent_offences > 0


# --- 5. address totals -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressOver:
    """An address whose connections together stayed over the limit for ``sustain_s``."""

    ip: str
    reason: str
    packets_per_min: float


class AddressTotals:
    """Per switch, since when each address over its total has been over (``per_ip_aggregate``)."""

    def __init__(self) -> None:
        self._over_since: dict[str, dict[str, float]] = {}

    def judge(
        self,
        dpid: str,
        usages: Iterable[tuple[str, Usage]],
        *,
        limit: float,
        sustain_s: float,
        now: float,
        blocked: Callable[[str], bool] | None = None,
    ) -> list[AddressOver]:
        """Sum each address's estimated messages/s over its connections' ``usages``.

        Only addresses over at this poll keep their "over since" (sustained like a
        connection's excess); an address already blocked as a whole is skipped.
        """
        per_ip: dict[str, list[float]] = {}
        for ip, usage in usages:
            sums = per_ip.setdefault(ip, [0.0, 0.0, 0])
            elapsed = max(usage.elapsed, 1e-9)
            sums[0] += estimated_messages(usage.packets, usage.payload_bytes) / elapsed
            sums[1] += usage.packets / elapsed * 60
            sums[2] += 1
        previous = self._over_since.get(dpid, {})
        current: dict[str, float] = {}
        self._over_since[dpid] = current
        over = []
        for ip, (messages_per_s, ppm, count) in per_ip.items():
            if messages_per_s <= limit or (blocked is not None and blocked(ip)):
                continue
            since = current[ip] = previous.get(ip, now)
            if now - since < sustain_s:
                continue
            reason = (
                f"address total {messages_per_s:.1f} msg/s over {int(count)} connections "
                f"> {limit:g} msg/s for {now - since:.1f} s"
            )
            over.append(AddressOver(ip, reason, ppm))
        return over

    def forget_switch(self, dpid: str) -> None:
        """The module was disabled on ``dpid``."""
        self._over_since.pop(dpid, None)


# --- 7. never blocked --------------------------------------------------------------------------


def exemption(*, whitelisted: bool, protected: bool, special: str | None) -> str | None:
    """Why an address is never blocked automatically (history text), or None.

    ``special``: the kind of an address that is never a client (:mod:`.guards`).
    """
    if whitelisted:
        return "whitelisted"
    if protected:
        return "protected XMPP server address"
    if special is not None:
        return f"{special} address"
    return None


def address_exemption(ip: str, settings: Any) -> str | None:
    """:func:`exemption` of ``ip`` under ``settings`` (a ``LimiterSettings``)."""
    return exemption(
        whitelisted=settings.is_whitelisted(ip),
        protected=settings.is_protected(ip),
        special=guards.special_address(ip),
    )


def never_blocked(*, monitor_mode: bool, exempt: bool) -> bool:
    """Whether an automatic decision to block must stay a log line or a flag.

    ``exempt``: the address has an :func:`exemption` (a prefix: overlaps the
    whitelist or holds a protected address).
    """
    return monitor_mode or exempt
