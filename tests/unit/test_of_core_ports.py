"""Interface events for port status changes, and interface attributes of a Port."""

import pytest
from pyof.v0x04.asynchronous.port_status import PortReason
from pyof.v0x04.common.port import Port

from napps.kytos.of_core.ports import interface_attributes, port_description, port_status_events
from xmpp_ofc.testing.fake_switch import make_port

ADD, DELETE, MODIFY = PortReason.OFPPR_ADD, PortReason.OFPPR_DELETE, PortReason.OFPPR_MODIFY
UP, DOWN = 4, 1  # OFPPS_LIVE, OFPPS_LINK_DOWN


@pytest.mark.parametrize(
    ("reason", "old", "new", "events"),
    [
        (ADD, None, UP, ["created"]),
        (DELETE, UP, UP, ["deleted"]),
        (MODIFY, None, UP, ["created"]),
        (MODIFY, UP, UP, ["modified"]),
        (MODIFY, UP, DOWN, ["modified", "link_down"]),
        (MODIFY, DOWN, UP, ["modified", "link_up"]),
        (MODIFY, DOWN, DOWN | 2, ["modified"]),
    ],
)
def test_port_status_events(reason, old, new, events):
    assert port_status_events(reason, old, new) == events


def test_interface_attributes_from_an_unpacked_port():
    port = Port()
    port.unpack(make_port(3, name="veth3").pack())
    attributes = interface_attributes(port)
    assert attributes == {
        "name": "veth3",
        "port_number": 3,
        "address": "02:00:00:00:00:03",
        "state": 4,
        "features": port.curr.value,
        "config": 0,
        "speed": 125_000_000.0,  # 1 Gb/s in bytes per second
    }
    assert port_description(attributes) == {
        "alias": "veth3",
        "mac": "02:00:00:00:00:03",
        "state": 4,
    }
