"""OpenFlow 1.3 meter-mod builder (per-client policing in meter mode).

Kept next to the flow codec so that rate_limiter and any later NApp build
meters one way; validation errors are the same FlowValidationError.
"""

from __future__ import annotations

from pyof.v0x04.controller2switch.meter_mod import (
    ListOfMeterBandHeader,
    MeterBandDrop,
    MeterFlags,
    MeterMod,
    MeterModCommand,
)

from xmpp_ofc.openflow.validation import FlowValidationError, require_int


class MeterModWithBands(MeterMod):
    """pyof 2021.1's MeterMod sizes its band list as 0 bytes (its ``bands`` is a
    bare FixedTypeList that cannot rebuild itself), so the header length is
    short by every band and switches reject the message.  The typed list
    fixes the size; the wire format is unchanged (unpack yields MeterMod).
    """

    bands = ListOfMeterBandHeader()


OFPM_MAX = 0xFFFF0000
OFPM_ALL = 0xFFFFFFFF
METER_COMMANDS = {
    "add": MeterModCommand.OFPMC_ADD,
    "modify": MeterModCommand.OFPMC_MODIFY,
    "delete": MeterModCommand.OFPMC_DELETE,
}


def meter_mod(
    command: str,
    meter_id: int,
    rate: int | None = None,
    burst: int = 0,
    *,
    kbps: bool = False,
    stats: bool = True,
    xid: int | None = None,
) -> MeterMod:
    """Return a MeterMod with one DROP band of ``rate`` packets/s (or kb/s).

    ``delete`` takes no band and accepts ``meter_id`` OFPM_ALL (every meter),
    which is how a controller clears its meters before replaying them.
    """
    if command not in METER_COMMANDS:
        raise FlowValidationError(f"meter command: {command!r} is not one of add, modify, delete")
    high = OFPM_ALL if command == "delete" else OFPM_MAX
    meter_id = require_int("meter_id", meter_id, 1, high)
    if command == "delete":
        return MeterModWithBands(
            xid=xid, command=METER_COMMANDS[command], flags=0, meter_id=meter_id, bands=[]
        )
    if rate is None:
        raise FlowValidationError("rate: missing (a meter needs a drop band rate)")
    rate = require_int("rate", rate, 1, 0xFFFFFFFF)
    burst = require_int("burst", burst, 0, 0xFFFFFFFF)
    flags = int(MeterFlags.OFPMF_KBPS if kbps else MeterFlags.OFPMF_PKTPS)
    if burst:
        flags |= int(MeterFlags.OFPMF_BURST)
    if stats:
        flags |= int(MeterFlags.OFPMF_STATS)
    return MeterModWithBands(
        xid=xid,
        command=METER_COMMANDS[command],
        flags=flags,
        meter_id=meter_id,
        bands=[MeterBandDrop(rate=rate, burst_size=burst)],
    )
