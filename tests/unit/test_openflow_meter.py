"""Meter-mod builder: wire format (pyof's own MeterMod mis-sizes its bands)."""

from __future__ import annotations

import pytest
from pyof.utils import unpack
from pyof.v0x04.controller2switch.meter_mod import MeterBandDrop, MeterModCommand

from xmpp_ofc.openflow.meter import meter_mod
from xmpp_ofc.openflow.validation import FlowValidationError


def test_add_has_one_drop_band_and_a_correct_length():
    packed = meter_mod("add", 7, rate=100, burst=10).pack()
    assert int.from_bytes(packed[2:4], "big") == len(packed) == 16 + 16
    message = unpack(packed)
    assert message.command == MeterModCommand.OFPMC_ADD
    assert message.meter_id == 7
    assert message.flags == 0b1110  # PKTPS | BURST | STATS
    (band,) = message.bands
    assert isinstance(band, MeterBandDrop)
    assert (band.rate, band.burst_size) == (100, 10)


def test_kbps_without_burst_or_stats():
    message = unpack(meter_mod("modify", 3, rate=500, kbps=True, stats=False).pack())
    assert message.command == MeterModCommand.OFPMC_MODIFY
    assert message.flags == 0b0001


def test_delete_all_meters_has_no_band():
    message = unpack(meter_mod("delete", 0xFFFFFFFF).pack())
    assert message.command == MeterModCommand.OFPMC_DELETE
    assert message.meter_id == 0xFFFFFFFF
    assert len(message.bands) == 0


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("add", 0), {"rate": 1}, "meter_id: 0 is out of range"),
        (("add", 0xFFFFFFFF), {"rate": 1}, "meter_id"),
        (("add", 1), {}, "rate: missing"),
        (("add", 1), {"rate": 0}, "rate: 0"),
        (("add", 1), {"rate": 1, "burst": -1}, "burst"),
        (("replace", 1), {"rate": 1}, "'replace'"),
    ],
)
def test_bad_meter_arguments(args, kwargs, message):
    with pytest.raises(FlowValidationError) as error:
        meter_mod(*args, **kwargs)
    assert message in str(error.value)
