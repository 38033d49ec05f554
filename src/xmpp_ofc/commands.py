"""What a module's logic asks the Kytos shell to send: the ``OFMessages`` of the seed.

Logic modules return lists of these instead of sending anything, so they are tested
by comparing lists, and the shell alone knows about events, buffers and pyof.
Order matters and is kept: a delete listed before an install must reach the switch
first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from xmpp_ofc.messages import NO_BUFFER


def _frozen(flow: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(flow))


@dataclass(frozen=True)
class PacketOut:
    """Send a frame (or the switch's buffered copy of it) out of ``out_port``.

    When ``buffer_id`` is not :data:`~xmpp_ofc.messages.NO_BUFFER` the switch still
    holds the frame, so ``data`` must be empty (OpenFlow 1.3, 7.3.7).
    """

    dpid: str
    in_port: int
    out_port: int
    buffer_id: int = NO_BUFFER
    data: bytes = b""

    def __post_init__(self) -> None:
        if self.buffer_id != NO_BUFFER and self.data:
            raise ValueError("a packet-out of a buffered frame carries no data")
        if self.buffer_id == NO_BUFFER and not self.data:
            raise ValueError("a packet-out without a buffer needs the frame")


@dataclass(frozen=True)
class InstallFlow:
    """Add one flow (flow_manager JSON, see :mod:`xmpp_ofc.pipeline`)."""

    dpid: str
    flow: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "flow", _frozen(self.flow))


@dataclass(frozen=True)
class DeleteFlows:
    """Delete flows, non-strictly: everything the cookie/mask and match select."""

    dpid: str
    flow: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "flow", _frozen(self.flow))


@dataclass(frozen=True)
class ModifyMeter:
    """Add, modify or delete one OpenFlow 1.3 meter (a packets/s DROP band).

    The shell builds the MeterMod with :func:`xmpp_ofc.openflow.meter.meter_mod`;
    ``meter_id`` OFPM_ALL (0xffffffff) with ``delete`` clears every meter, which is
    how meters are reset before they are replayed after a reconnect.
    """

    dpid: str
    command: str
    meter_id: int
    rate_pps: int | None = None
    burst: int = 0

    def __post_init__(self) -> None:
        if self.command not in ("add", "modify", "delete"):
            raise ValueError(f"meter command {self.command!r} is not add, modify or delete")
        if self.command != "delete" and self.rate_pps is None:
            raise ValueError(f"meter {self.command} needs rate_pps")


@dataclass(frozen=True)
class RequestFlowStats:
    """Ask one switch for the stats of the flows that ``cookie``/``cookie_mask`` select.

    One request per switch and poll, filtered by cookie, instead of one per flow
    (the seed's pattern, whose mask of 0 selected every flow anyway).
    """

    dpid: str
    cookie: int
    cookie_mask: int
    table_id: int = 0xFF


Command = PacketOut | InstallFlow | DeleteFlows
#: Every command a module may return; ``Command`` stays the flow/packet subset that
#: the first modules return, so code written against it keeps type-checking.
AnyCommand = Command | ModifyMeter | RequestFlowStats
