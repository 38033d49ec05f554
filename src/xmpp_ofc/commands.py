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


Command = PacketOut | InstallFlow | DeleteFlows
