"""The one spelling of a datapath id (Kytos' switch key)."""

import pytest

from xmpp_ofc.openflow.dpid import DPID_MAX, dpid_to_str


@pytest.mark.parametrize(
    ("dpid", "text"),
    [
        (0, "00:00:00:00:00:00:00:00"),
        (10, "00:00:00:00:00:00:00:0a"),
        (0x0123456789ABCDEF, "01:23:45:67:89:ab:cd:ef"),
        (DPID_MAX, "ff:ff:ff:ff:ff:ff:ff:ff"),
    ],
)
def test_dpid_to_str_is_eight_lowercase_hex_octets(dpid, text):
    assert dpid_to_str(dpid) == text


@pytest.mark.parametrize("dpid", [-1, DPID_MAX + 1])
def test_dpid_to_str_refuses_what_is_not_64_bits(dpid):
    with pytest.raises(ValueError, match="64 bits"):
        dpid_to_str(dpid)
