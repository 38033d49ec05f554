"""Match dict (upstream kytos field names) <-> OpenFlow 1.3 OXM match.

Each field is described once in :data:`FIELDS` (OXM number, value codec,
whether a mask is allowed, prerequisites); encoding, decoding and the
prerequisite check all read that table.

Read-back normalises values the way upstream did (lowercase MACs, ``/32`` and
all-ones masks dropped, IPv6 fully expanded), so a flow read from a switch
compares equal to the flow that was posted in canonical form.

Two deliberate differences from upstream:

* prerequisites (``tp_dst`` needs ``nw_proto`` 6, ...) are checked here, because
  a switch answers an unmet one with OFPT_ERROR BAD_PREREQ long after the REST
  call returned 200;
* a masked value is ANDed with its mask (``10.0.0.1/24`` is sent as
  ``10.0.0.0/24``), because Open vSwitch rejects 1-bits under a 0 mask bit with
  BAD_WILDCARDS.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyof.v0x04.common.flow_match import (
    Match,
    OxmClass,
    OxmMatchFields,
    OxmOfbMatchField,
    OxmTLV,
    VlanId,
)

from xmpp_ofc.ascii_int import parse_decimal, parse_int_literal
from xmpp_ofc.openflow.validation import (
    FlowValidationError,
    as_int,
    fail,
    reject_unknown_keys,
    require_int,
    require_mapping,
)

ETH_TYPE_IPV4 = 0x0800
ETH_TYPE_ARP = 0x0806
ETH_TYPE_IPV6 = 0x86DD
ETH_TYPE_MPLS = (0x8847, 0x8848)
ETH_TYPE_PBB = 0x88E7
IP_PROTO_ICMP = 1
IP_PROTO_TCP = 6
IP_PROTO_UDP = 17
IP_PROTO_ICMPV6 = 58
IP_PROTO_SCTP = 132

_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


# --- value codecs -----------------------------------------------------------
#
# A codec turns one JSON value into (value bytes, mask bytes or None) and back.
# ``maskable`` comes from the field: the codec refuses a mask when it is False.


class _Codec:
    """Base class of the per-kind value codecs."""

    def encode(self, path: str, value: Any, maskable: bool) -> tuple[bytes, bytes | None]:
        raise NotImplementedError

    def decode(self, value: bytes, mask: bytes | None) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class _IntCodec(_Codec):
    """Unsigned integer of ``bits`` significant bits in ``width`` bytes.

    Maskable integers also accept the upstream string form ``"value/mask"``
    (decimal or 0x-hex), and read back in that form when the mask is partial.
    """

    width: int
    bits: int

    def _parse(self, path: str, text: str) -> int:
        number = parse_int_literal(text.strip())
        if number is None:
            raise fail(path, text, "is not an integer")
        return require_int(path, number, 0, (1 << self.bits) - 1)

    def encode(self, path: str, value: Any, maskable: bool) -> tuple[bytes, bytes | None]:
        high = (1 << self.bits) - 1
        if isinstance(value, str) and "/" in value:
            if not maskable:
                raise fail(path, value, "cannot be masked")
            text_value, text_mask = value.split("/", 1)
            number = self._parse(path, text_value)
            mask = self._parse(path, text_mask)
            return self._bytes(number), self._bytes(mask)
        if isinstance(value, str):
            suffix = " or a 'value/mask' string" if maskable else ""
            raise fail(path, value, f"is not an integer{suffix}")
        return self._bytes(require_int(path, value, 0, high)), None

    def _bytes(self, number: int) -> bytes:
        return number.to_bytes(self.width, "big")

    def decode(self, value: bytes, mask: bytes | None) -> Any:
        number = int.from_bytes(value, "big")
        if mask is None or _all_ones(mask, self.bits):
            return number
        return f"{number}/{int.from_bytes(mask, 'big')}"


class _MacCodec(_Codec):
    """Ethernet address ``aa:bb:cc:dd:ee:ff`` (optionally ``mac/mask``)."""

    @staticmethod
    def _parse(path: str, text: Any) -> bytes:
        if not isinstance(text, str) or not _MAC_RE.match(text):
            raise fail(path, text, "is not a MAC address (aa:bb:cc:dd:ee:ff)")
        return bytes.fromhex(text.replace(":", ""))

    def encode(self, path: str, value: Any, maskable: bool) -> tuple[bytes, bytes | None]:
        if isinstance(value, str) and "/" in value:
            if not maskable:
                raise fail(path, value, "cannot be masked")
            text_value, text_mask = value.split("/", 1)
            return self._parse(path, text_value), self._parse(path, text_mask)
        return self._parse(path, value), None

    def decode(self, value: bytes, mask: bytes | None) -> Any:
        text = ":".join(f"{byte:02x}" for byte in value)
        if mask is None or _all_ones(mask, 48):
            return text
        return f"{text}/{':'.join(f'{byte:02x}' for byte in mask)}"


@dataclass(frozen=True)
class _IpCodec(_Codec):
    """IPv4 or IPv6 address, optionally ``addr/prefixlen`` or ``addr/bitmask``."""

    version: int

    @property
    def _name(self) -> str:
        return "an IPv4 address" if self.version == 4 else "an IPv6 address"

    def encode(self, path: str, value: Any, maskable: bool) -> tuple[bytes, bytes | None]:
        if not isinstance(value, str):
            raise fail(path, value, f"is not {self._name}")
        text_value, _, text_mask = value.partition("/")
        try:
            address = ipaddress.ip_address(text_value.strip())
        except ValueError:
            raise fail(path, value, f"is not {self._name}") from None
        if address.version != self.version:
            raise fail(path, value, f"is not {self._name}")
        if not text_mask:
            return address.packed, None
        if not maskable:
            raise fail(path, value, "cannot be masked")
        return address.packed, self._mask(path, value, text_mask.strip())

    def _mask(self, path: str, value: str, text: str) -> bytes:
        """A prefix length, or any bit mask written as an address (OXM allows both)."""
        width = 32 if self.version == 4 else 128
        ones = parse_decimal(text)
        if ones is not None and ones <= width:
            return (((1 << ones) - 1) << (width - ones)).to_bytes(width // 8, "big")
        try:
            mask = ipaddress.ip_address(text)
        except ValueError:
            mask = None
        if mask is None or mask.version != self.version:
            raise fail(path, value, "has an invalid prefix length or netmask")
        return mask.packed

    def decode(self, value: bytes, mask: bytes | None) -> Any:
        address = ipaddress.ip_address(value)
        text = str(address) if self.version == 4 else address.exploded
        if mask is None or _all_ones(mask, len(mask) * 8):
            return text
        mask_int = int.from_bytes(mask, "big")
        prefix = bin(mask_int).count("1")
        if mask_int == ((1 << prefix) - 1) << (len(mask) * 8 - prefix):
            return f"{text}/{prefix}"
        return f"{text}/{ipaddress.ip_address(mask)}"


class _VlanCodec(_Codec):
    """``dl_vlan``: a VLAN id, ``"vid/mask"``, ``"untagged"`` or ``"any"``.

    The OXM carries OFPVID_PRESENT (0x1000) for tagged packets; callers give
    the plain 12-bit id and we add the bit, as upstream did.  ``untagged`` and
    ``any`` are the kytos-ng spellings of OFPVID_NONE and PRESENT/PRESENT.
    """

    _PRESENT = int(VlanId.OFPVID_PRESENT)

    def encode(
        self,
        path: str,
        value: Any,
        maskable: bool,  # noqa: ARG002 - dl_vlan is always maskable
    ) -> tuple[bytes, bytes | None]:
        if value == "untagged":
            return (0).to_bytes(2, "big"), None
        if value == "any":
            present = self._PRESENT.to_bytes(2, "big")
            return present, present
        if isinstance(value, str) and "/" in value:
            text_vid, text_mask = value.split("/", 1)
            vid = _IntCodec(2, 12)._parse(path, text_vid)
            mask = _IntCodec(2, 12)._parse(path, text_mask)
            return (
                (vid | self._PRESENT).to_bytes(2, "big"),
                (mask | self._PRESENT).to_bytes(2, "big"),
            )
        if isinstance(value, str):
            raise fail(path, value, "is not a VLAN id, 'vid/mask', 'untagged' or 'any'")
        vid = require_int(path, value, 0, 4095)
        return (vid | self._PRESENT).to_bytes(2, "big"), None

    def decode(self, value: bytes, mask: bytes | None) -> Any:
        number = int.from_bytes(value, "big")
        if mask is None:
            return number & 0x0FFF if number & self._PRESENT else "untagged"
        mask_int = int.from_bytes(mask, "big")
        if number == self._PRESENT and mask_int == self._PRESENT:
            return "any"
        if mask_int & 0x0FFF == 0x0FFF:
            return number & 0x0FFF
        return f"{number & 0x0FFF}/{mask_int & 0x0FFF}"


def _all_ones(mask: bytes, bits: int) -> bool:
    return int.from_bytes(mask, "big") & ((1 << bits) - 1) == (1 << bits) - 1


# --- the field table ---------------------------------------------------------


@dataclass(frozen=True)
class Prerequisite:
    """``field`` must be in the match (with one of ``values`` when given)."""

    field: str
    values: tuple[Any, ...] = ()
    meaning: str = ""


@dataclass(frozen=True)
class MatchField:
    """One match key of the JSON contract and its OXM encoding."""

    name: str
    oxm: OxmOfbMatchField
    codec: _Codec
    maskable: bool = False
    prerequisites: tuple[Prerequisite, ...] = field(default_factory=tuple)


def _needs_eth(*eth_types: int, meaning: str) -> Prerequisite:
    return Prerequisite("dl_type", eth_types, meaning)


def _needs_proto(proto: int, meaning: str) -> Prerequisite:
    return Prerequisite("nw_proto", (proto,), meaning)


_IP = _needs_eth(ETH_TYPE_IPV4, ETH_TYPE_IPV6, meaning="IPv4 or IPv6")
_IPV4 = _needs_eth(ETH_TYPE_IPV4, meaning="IPv4")
_IPV6 = _needs_eth(ETH_TYPE_IPV6, meaning="IPv6")
_ARP = _needs_eth(ETH_TYPE_ARP, meaning="ARP")
_MPLS = _needs_eth(*ETH_TYPE_MPLS, meaning="MPLS")
_TCP = _needs_proto(IP_PROTO_TCP, "TCP")
_UDP = _needs_proto(IP_PROTO_UDP, "UDP")
_SCTP = _needs_proto(IP_PROTO_SCTP, "SCTP")
_ICMP = _needs_proto(IP_PROTO_ICMP, "ICMP")
_ICMPV6 = _needs_proto(IP_PROTO_ICMPV6, "ICMPv6")

_F = OxmOfbMatchField
_U8, _U16, _U32, _U64 = _IntCodec(1, 8), _IntCodec(2, 16), _IntCodec(4, 32), _IntCodec(8, 64)
_MAC, _IPV4_ADDR, _IPV6_ADDR = _MacCodec(), _IpCodec(4), _IpCodec(6)

FIELDS: dict[str, MatchField] = {
    spec.name: spec
    for spec in (
        MatchField("in_port", _F.OFPXMT_OFB_IN_PORT, _U32),
        MatchField(
            "in_phy_port",
            _F.OFPXMT_OFB_IN_PHY_PORT,
            _U32,
            prerequisites=(Prerequisite("in_port", meaning="an in_port"),),
        ),
        MatchField("metadata", _F.OFPXMT_OFB_METADATA, _U64, maskable=True),
        MatchField("dl_dst", _F.OFPXMT_OFB_ETH_DST, _MAC, maskable=True),
        MatchField("dl_src", _F.OFPXMT_OFB_ETH_SRC, _MAC, maskable=True),
        MatchField("dl_type", _F.OFPXMT_OFB_ETH_TYPE, _U16),
        MatchField("dl_vlan", _F.OFPXMT_OFB_VLAN_VID, _VlanCodec(), maskable=True),
        MatchField(
            "dl_vlan_pcp",
            _F.OFPXMT_OFB_VLAN_PCP,
            _IntCodec(1, 3),
            prerequisites=(Prerequisite("dl_vlan", meaning="a tagged dl_vlan"),),
        ),
        MatchField("ip_dscp", _F.OFPXMT_OFB_IP_DSCP, _IntCodec(1, 6), prerequisites=(_IP,)),
        MatchField("ip_ecn", _F.OFPXMT_OFB_IP_ECN, _IntCodec(1, 2), prerequisites=(_IP,)),
        MatchField("nw_proto", _F.OFPXMT_OFB_IP_PROTO, _U8, prerequisites=(_IP,)),
        MatchField("nw_src", _F.OFPXMT_OFB_IPV4_SRC, _IPV4_ADDR, True, (_IPV4,)),
        MatchField("nw_dst", _F.OFPXMT_OFB_IPV4_DST, _IPV4_ADDR, True, (_IPV4,)),
        MatchField("tp_src", _F.OFPXMT_OFB_TCP_SRC, _U16, prerequisites=(_TCP,)),
        MatchField("tp_dst", _F.OFPXMT_OFB_TCP_DST, _U16, prerequisites=(_TCP,)),
        MatchField("udp_src", _F.OFPXMT_OFB_UDP_SRC, _U16, prerequisites=(_UDP,)),
        MatchField("udp_dst", _F.OFPXMT_OFB_UDP_DST, _U16, prerequisites=(_UDP,)),
        MatchField("sctp_src", _F.OFPXMT_OFB_SCTP_SRC, _U16, prerequisites=(_SCTP,)),
        MatchField("sctp_dst", _F.OFPXMT_OFB_SCTP_DST, _U16, prerequisites=(_SCTP,)),
        MatchField("icmpv4_type", _F.OFPXMT_OFB_ICMPV4_TYPE, _U8, prerequisites=(_ICMP, _IPV4)),
        MatchField("icmpv4_code", _F.OFPXMT_OFB_ICMPV4_CODE, _U8, prerequisites=(_ICMP, _IPV4)),
        MatchField("arp_op", _F.OFPXMT_OFB_ARP_OP, _U16, prerequisites=(_ARP,)),
        MatchField("arp_spa", _F.OFPXMT_OFB_ARP_SPA, _IPV4_ADDR, True, (_ARP,)),
        MatchField("arp_tpa", _F.OFPXMT_OFB_ARP_TPA, _IPV4_ADDR, True, (_ARP,)),
        MatchField("arp_sha", _F.OFPXMT_OFB_ARP_SHA, _MAC, True, (_ARP,)),
        MatchField("arp_tha", _F.OFPXMT_OFB_ARP_THA, _MAC, True, (_ARP,)),
        MatchField("ipv6_src", _F.OFPXMT_OFB_IPV6_SRC, _IPV6_ADDR, True, (_IPV6,)),
        MatchField("ipv6_dst", _F.OFPXMT_OFB_IPV6_DST, _IPV6_ADDR, True, (_IPV6,)),
        MatchField("ipv6_flabel", _F.OFPXMT_OFB_IPV6_FLABEL, _IntCodec(4, 20), True, (_IPV6,)),
        MatchField("icmpv6_type", _F.OFPXMT_OFB_ICMPV6_TYPE, _U8, prerequisites=(_ICMPV6, _IPV6)),
        MatchField("icmpv6_code", _F.OFPXMT_OFB_ICMPV6_CODE, _U8, prerequisites=(_ICMPV6, _IPV6)),
        MatchField(
            "nd_tar",
            _F.OFPXMT_OFB_IPV6_ND_TARGET,
            _IPV6_ADDR,
            prerequisites=(Prerequisite("icmpv6_type", (135, 136), "a neighbour solicitation"),),
        ),
        MatchField(
            "nd_sll",
            _F.OFPXMT_OFB_IPV6_ND_SLL,
            _MAC,
            prerequisites=(Prerequisite("icmpv6_type", (135,), "a neighbour solicitation"),),
        ),
        MatchField(
            "nd_tll",
            _F.OFPXMT_OFB_IPV6_ND_TLL,
            _MAC,
            prerequisites=(Prerequisite("icmpv6_type", (136,), "a neighbour advertisement"),),
        ),
        MatchField("mpls_lab", _F.OFPXMT_OFB_MPLS_LABEL, _IntCodec(4, 20), prerequisites=(_MPLS,)),
        MatchField("mpls_tc", _F.OFPXMT_OFB_MPLS_TC, _IntCodec(1, 3), prerequisites=(_MPLS,)),
        MatchField("mpls_bos", _F.OFPXMT_OFP_MPLS_BOS, _IntCodec(1, 1), prerequisites=(_MPLS,)),
        MatchField(
            "pbb_isid",
            _F.OFPXMT_OFB_PBB_ISID,
            _IntCodec(3, 24),
            True,
            (_needs_eth(ETH_TYPE_PBB, meaning="PBB"),),
        ),
        MatchField("tun_id", _F.OFPXMT_OFB_TUNNEL_ID, _U64, maskable=True),
        MatchField("v6_hdr", _F.OFPXMT_OFB_IPV6_EXTHDR, _IntCodec(2, 9), True, (_IPV6,)),
    )
}

_BY_OXM: dict[int, MatchField] = {int(spec.oxm): spec for spec in FIELDS.values()}


# --- public API ---------------------------------------------------------------


def match_from_dict(match: Any, path: str = "match") -> Match:
    """Return the pyof Match for a match dict, or raise FlowValidationError.

    OXMs are emitted in OXM-number order, which puts every prerequisite before
    the fields that depend on it, as OpenFlow 1.3 requires.
    """
    match = require_mapping(path, match)
    reject_unknown_keys(path, match.keys(), FIELDS)
    _check_prerequisites(match, path)
    tlvs = []
    for name, value in match.items():
        spec = FIELDS[name]
        value_bytes, mask_bytes = spec.codec.encode(f"{path}.{name}", value, spec.maskable)
        tlvs.append((int(spec.oxm), oxm_tlv(spec.oxm, value_bytes, mask_bytes)))
    tlvs.sort(key=lambda item: item[0])
    return Match(oxm_match_fields=OxmMatchFields([tlv for _, tlv in tlvs]))


def oxm_tlv(oxm: OxmOfbMatchField, value: bytes, mask: bytes | None = None) -> OxmTLV:
    """Build one OpenFlow-basic OXM TLV; a mask is ANDed into the value."""
    if mask is None:
        return OxmTLV(oxm_field=oxm, oxm_hasmask=False, oxm_value=value)
    masked = bytes(v & m for v, m in zip(value, mask, strict=True))
    return OxmTLV(oxm_field=oxm, oxm_hasmask=True, oxm_value=masked + mask)


def match_to_dict(match: Match | None) -> dict[str, Any]:
    """Return the match dict of a pyof Match (from a switch or built by us).

    Non-basic OXM classes and fields outside the JSON contract are skipped:
    read-back must never fail on what a switch chooses to report.
    """
    result: dict[str, Any] = {}
    if match is None:
        return result
    for tlv in match.oxm_match_fields:
        decoded = decode_tlv(tlv)
        if decoded is not None:
            result[decoded[0]] = decoded[1]
    return result


def decode_tlv(tlv: OxmTLV) -> tuple[str, Any] | None:
    """Return ``(field name, JSON value)`` of one OXM TLV, None if unknown."""
    if as_int(tlv.oxm_class) != OxmClass.OFPXMC_OPENFLOW_BASIC:
        return None
    raw = bytes(getattr(tlv.oxm_value, "value", tlv.oxm_value))
    return decode_oxm(as_int(tlv.oxm_field), bool(tlv.oxm_hasmask), raw)


def decode_oxm(oxm_field: int, has_mask: bool, payload: bytes) -> tuple[str, Any] | None:
    """Return ``(field name, JSON value)`` of one OpenFlow-basic OXM from its raw payload.

    The payload is value + mask when ``has_mask``.  None for a field outside the
    JSON contract.  Shared by the pyof path (:func:`decode_tlv`) and the
    pyof-free flow-stats codec, so both read a match back identically.
    """
    spec = _BY_OXM.get(oxm_field)
    if spec is None:
        return None
    if has_mask:
        half = len(payload) // 2
        return spec.name, spec.codec.decode(payload[:half], payload[half:])
    return spec.name, spec.codec.decode(payload, None)


def _check_prerequisites(match: Mapping[str, Any], path: str) -> None:
    for name in match:
        for prerequisite in FIELDS[name].prerequisites:
            present = prerequisite.field in match
            value = match.get(prerequisite.field)
            satisfied = present and (
                value in prerequisite.values if prerequisite.values else value != "untagged"
            )
            if satisfied:
                continue
            wanted = prerequisite.field
            if prerequisite.values:
                wanted += " " + " or ".join(_show(v) for v in prerequisite.values)
            raise FlowValidationError(
                f"{path}.{name}: needs {wanted} ({prerequisite.meaning}) in the same match; "
                "a switch rejects it otherwise (OFPBMC_BAD_PREREQ)"
            )


def _show(value: Any) -> str:
    return f"0x{value:04x}" if isinstance(value, int) and value > 255 else str(value)


def match_covers(general: Mapping[str, Any], specific: Mapping[str, Any]) -> bool:
    """True if every packet ``specific`` matches is also matched by ``general``.

    This is the OpenFlow non-strict delete rule: a flow is removed when the
    delete's match is equal to or more general than the flow's match.  Both
    matches must be valid (e.g. canonical dicts); masks are compared bitwise,
    so ``10.0.0.0/8`` covers ``10.1.2.3`` and ``10.0.0.0/16``.
    """
    for name, general_value in general.items():
        if name not in specific:
            return False
        spec = FIELDS[name]
        g_value, g_mask = spec.codec.encode(name, general_value, True)
        s_value, s_mask = spec.codec.encode(name, specific[name], True)
        if len(g_value) != len(s_value):
            return False
        full = b"\xff" * len(g_value)
        g_mask, s_mask = g_mask or full, s_mask or full
        for gv, gm, sv, sm in zip(g_value, g_mask, s_value, s_mask, strict=True):
            if sm & gm != gm or sv & gm != gv & gm:
                return False
    return True
