"""The capture path's bounds (issue 14 item 5): what keeps it from becoming an outage.

Every packet towards an XMPP port that no monitor or block flow matches goes up to
the controller as a capture packet-in. Three bounds hold that path, whatever a
client does (the README's "Capture-path bounds" explains each choice):

* **In the switch, a meter on the capture flows** (``meter_rate_pps``/``meter_burst``)
  where the switch has OpenFlow 1.3 packets/s DROP meters (the same
  :class:`~.state.MeterSupport` that meter mode reads; the capture meter takes the
  switch's highest meter id, clients the others). 200 packet-ins/s per switch is
  under half of what the whole controller handles (~500 packet-ins/s through
  l2_switch in docs/benchmarks.md), so L2 learning and other switches keep the rest;
  a burst of 100 lets a login storm of 50 clients through whole (one SYN each, a few
  more packets while their monitor flow goes in). OpenFlow 1.3 meters drop the
  packet, not only its controller copy: over the rate, a *new* XMPP connection's SYN
  is dropped and TCP retries it a second later; monitored and blocked connections
  never touch the capture flow, and no other traffic does.
* **Monitored connections per switch** (``max_per_switch``, 50,000): the flow-stats
  poll is benchmarked up to 50k clients, and one monitor flow each keeps table 0 at
  most that big. Past it a new connection is not monitored.
* **Monitored connections per address** (``max_per_address``, 64): an XMPP client
  holds one long-lived connection, so 64 covers a household or office behind one
  NAT; a whitelisted address (a big NAT, a gateway) has no per-address bound.

At either monitor bound the new connection is *not monitored*: it keeps working on
the capture flow (which forwards it), its packets come up as capture packet-ins,
which the capture meter and the dispatcher's per-switch budget bound, and it is
counted (``unmonitored``, by reason) and logged at most once per switch every
``LOG_INTERVAL_S``. It is not blocked: reaching a bound is not proof of abuse (a
connection flood is, and the connection guard blocks it by rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from napps.xmpp_ofc.rate_limiter.state import MeterSupport

#: Seconds between two "bound reached" log lines of one switch.
LOG_INTERVAL_S = 10.0


class Unmonitored(StrEnum):
    """Why a capture packet-in did not start monitoring its connection."""

    SWITCH_BOUND = "switch_bound"
    ADDRESS_BOUND = "address_bound"


@dataclass(frozen=True, slots=True)
class CaptureBounds:
    """The capture meter's rate and burst and the monitor bounds (see the module doc)."""

    meter_rate_pps: int = 200
    meter_burst: int = 100
    max_per_switch: int = 50_000
    max_per_address: int = 64

    def __post_init__(self) -> None:
        for name in ("meter_rate_pps", "meter_burst", "max_per_switch", "max_per_address"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"capture bound {name} must be a positive integer, got {value!r}")


def capture_meter_id(support: MeterSupport | None) -> int | None:
    """The capture meter's id on a switch (its highest), None where meters are unusable."""
    if support is None or not support.usable:
        return None
    return support.max_meter


def client_meter_count(support: MeterSupport) -> int:
    """Meter ids left for meter mode's per-client meters (1..max_meter-1)."""
    return max(0, support.max_meter - 1) if support.usable else support.max_meter
