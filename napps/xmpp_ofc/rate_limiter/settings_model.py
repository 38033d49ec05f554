"""The rate limiter's runtime settings: one frozen, validated value, patched as a whole.

Every setting is checked when a :class:`LimiterSettings` is built, so an invalid
value can never reach the policy: a REST PATCH goes through :func:`apply_patch`,
which either returns a complete new value plus what must change on the switches,
or raises :class:`SettingsError` naming the field and changes nothing.

The policy's settings are shaper terms (:mod:`.policy`): a payload byte rate and
burst, a message rate and burst, and how long a client must stay over them before
it is stopped. The escalation settings are fail2ban's (:mod:`.escalation`).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from napps.xmpp_ofc.rate_limiter.policy import Allowance

MAX_TIMEOUT = 0xFFFF  # OpenFlow idle/hard timeouts are 16-bit seconds
MAX_PORTS = 16
MAX_WHITELIST = 1024
#: The protected XMPP server's own addresses, at most (issue 13).
MAX_PROTECTED = 64
#: The widest whitelist entry a PATCH may add without ``"force": true`` (issue 13): a
#: /0 silently turns blocking off, a /8 exempts a continent's users.
WIDEST_WHITELIST_V4 = 16
WIDEST_WHITELIST_V6 = 48
#: The key of a PATCH body that accepts wider whitelist entries (not a setting).
FORCE = "force"

#: Ethernet + IPv4/IPv6 + TCP header with the timestamp option: a pure ACK's size.
HEADER_BYTES_IPV4 = 14 + 20 + 32
HEADER_BYTES_IPV6 = 14 + 40 + 32


def header_bytes(ip_version: int) -> int:
    """Frame bytes of a payload-free TCP segment, the per-packet overhead we subtract.

    An estimate: without timestamps an ACK is 12 bytes shorter (payload is then
    under-estimated, which only errs towards not blocking), with SACK blocks it is
    longer (a few bytes per ACK count as payload, far below the default threshold).
    """
    return HEADER_BYTES_IPV6 if ip_version == 6 else HEADER_BYTES_IPV4


class Mode(StrEnum):
    """How an over-threshold client is dealt with."""

    #: Drop flow with a hard timeout.
    BLOCK = "block"
    #: Per-client OpenFlow meter on the monitor flow (falls back to BLOCK without support).
    METER = "meter"
    #: Measure and flag only; nothing is ever blocked automatically.
    MONITOR = "monitor"


class SettingsError(ValueError):
    """A setting or patch that was refused; the message names the field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def _int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(name, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise SettingsError(name, f"must be in {low}..{high}, got {value}")
    return value


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SettingsError(name, f"must be a number, got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise SettingsError(name, f"must be in {low:g}..{high:g}, got {value!r}")
    return float(value)


def _ports(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise SettingsError("xmpp_ports", f"must be a non-empty list of TCP ports, got {value!r}")
    if len(value) > MAX_PORTS:
        raise SettingsError("xmpp_ports", f"at most {MAX_PORTS} ports, got {len(value)}")
    ports = tuple(_int(f"xmpp_ports[{i}]", port, 1, 0xFFFF) for i, port in enumerate(value))
    if len(set(ports)) != len(ports):
        raise SettingsError("xmpp_ports", f"ports must be unique, got {list(ports)}")
    return tuple(sorted(ports))


def _whitelist(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise SettingsError("whitelist", f"must be a list of CIDRs, got {value!r}")
    if len(value) > MAX_WHITELIST:
        raise SettingsError("whitelist", f"at most {MAX_WHITELIST} entries, got {len(value)}")
    networks = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise SettingsError(f"whitelist[{index}]", f"must be a CIDR string, got {item!r}")
        try:
            # strict=False: "10.0.0.7/24" means the /24 it lies in, as operators write it.
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise SettingsError(
                f"whitelist[{index}]", f"{item!r} is not an IPv4/IPv6 address or CIDR"
            ) from None
    return tuple(dict.fromkeys(str(net) for net in networks))


def _protected(value: Any) -> tuple[str, ...]:
    """The server's own addresses: single addresses (a network would be a whitelist)."""
    name = "protected_addresses"
    if not isinstance(value, list | tuple):
        raise SettingsError(name, f"must be a list of IP addresses, got {value!r}")
    if len(value) > MAX_PROTECTED:
        raise SettingsError(name, f"at most {MAX_PROTECTED} addresses, got {len(value)}")
    addresses = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise SettingsError(f"{name}[{index}]", f"must be an address string, got {item!r}")
        try:
            if "%" in item:
                raise ValueError(item)
            addresses.append(ipaddress.ip_address(item.strip()))
        except ValueError:
            raise SettingsError(
                f"{name}[{index}]",
                f"{item!r} is not an IPv4/IPv6 address (one address each, no prefix or zone)",
            ) from None
    return tuple(dict.fromkeys(str(address) for address in addresses))


@dataclass(frozen=True)
class LimiterSettings:
    """All tunables; defaults are what an operator gets without configuring anything.

    * ``payload_rate_bps`` 3000 with a ``payload_burst_bytes`` of 20000: ejabberd's
      ``normal`` shaper, so sustained traffic is never held to less than what
      ejabberd ships (and ejabberd only slows such a client down; we block it).
    * ``message_rate_per_s`` 5 with a ``message_burst`` of 10: a person types far
      less; a login is ~10 packets; 30 messages in 3 s leave the bucket dry for
      at most one window. A 20 msg/s flood empties it within a second.
    * ``sustain_s`` 2: one dry window (a 100 kB stanza, a burst) is not enough.
    * ``poll_interval_s`` 1: the bucket is judged every second, so a 20 msg/s
      flood is stopped 3-4 s after its first message. Switches with many clients
      are polled less often, to keep the poll's CPU within budget (``main.py``).
    * ``block_duration_s`` 60, doubled for each further offence of the address
      within ``offence_window_s`` 3600, at most ``block_max_s`` 3600; from the
      ``address_block_after`` 2nd offence on the whole address is blocked
      (fail2ban's ``bantime``/``findtime``/``bantime.increment``).
    * ``monitor_idle_timeout_s`` 120: an idle client's keepalive comes every
      300 s, so its monitor idles out and the next keepalive costs one
      packet-in; a live chat client keeps its monitor.
    * ``meter_rate_pps`` 2 with a burst of 50 packets: meter mode's per-client
      police, with room for a login.
    * ``protected_addresses`` empty: the XMPP server's own addresses, never blocked
      (by hand: a 400; automatically: flagged instead). Learned addresses come on top
      (:mod:`.server_addresses`).
    """

    payload_rate_bps: int = 3000
    payload_burst_bytes: int = 20000
    message_rate_per_s: float = 5.0
    message_burst: int = 10
    sustain_s: float = 2.0
    poll_interval_s: float = 1.0
    block_duration_s: int = 60
    block_max_s: int = 3600
    offence_window_s: int = 3600
    address_block_after: int = 2
    monitor_idle_timeout_s: int = 120
    xmpp_ports: tuple[int, ...] = (5222,)
    whitelist: tuple[str, ...] = ()
    protected_addresses: tuple[str, ...] = ()
    mode: Mode = Mode.BLOCK
    per_ip_aggregate: bool = False
    aggregate_messages_per_s: float = 50.0
    meter_rate_pps: int = 2
    meter_burst_packets: int = 50
    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        _int("payload_rate_bps", self.payload_rate_bps, 1, 1_000_000_000)
        _int("payload_burst_bytes", self.payload_burst_bytes, 0, 1_000_000_000)
        self._set_number("message_rate_per_s", 0.01, 1_000_000)
        _int("message_burst", self.message_burst, 0, 1_000_000)
        self._set_number("sustain_s", 0, 600)
        self._set_number("poll_interval_s", 0.5, 3600)
        _int("block_duration_s", self.block_duration_s, 1, MAX_TIMEOUT)
        _int("block_max_s", self.block_max_s, 1, MAX_TIMEOUT)
        if self.block_max_s < self.block_duration_s:
            raise SettingsError(
                "block_max_s",
                f"must be at least block_duration_s ({self.block_duration_s}), "
                f"got {self.block_max_s}",
            )
        _int("offence_window_s", self.offence_window_s, 0, 30 * 86400)
        _int("address_block_after", self.address_block_after, 0, 1000)
        _int("monitor_idle_timeout_s", self.monitor_idle_timeout_s, 1, MAX_TIMEOUT)
        object.__setattr__(self, "xmpp_ports", _ports(self.xmpp_ports))
        whitelist = _whitelist(self.whitelist)
        object.__setattr__(self, "whitelist", whitelist)
        object.__setattr__(self, "_networks", tuple(ipaddress.ip_network(n) for n in whitelist))
        object.__setattr__(self, "protected_addresses", _protected(self.protected_addresses))
        try:
            object.__setattr__(self, "mode", Mode(self.mode))
        except ValueError:
            choices = ", ".join(m.value for m in Mode)
            raise SettingsError("mode", f"must be one of {choices}, got {self.mode!r}") from None
        if not isinstance(self.per_ip_aggregate, bool):
            raise SettingsError(
                "per_ip_aggregate", f"must be true or false, got {self.per_ip_aggregate!r}"
            )
        self._set_number("aggregate_messages_per_s", 0.01, 10_000_000)
        _int("meter_rate_pps", self.meter_rate_pps, 1, 1_000_000)
        _int("meter_burst_packets", self.meter_burst_packets, 0, 1_000_000)

    def _set_number(self, name: str, low: float, high: float) -> None:
        object.__setattr__(self, name, _number(name, getattr(self, name), low, high))

    @property
    def allowance(self) -> Allowance:
        """The per-connection allowance the policy judges against."""
        return Allowance(
            payload_rate_bps=self.payload_rate_bps,
            payload_burst_bytes=self.payload_burst_bytes,
            message_rate_per_s=self.message_rate_per_s,
            message_burst=self.message_burst,
            sustain_s=self.sustain_s,
        )

    def is_whitelisted(self, ip: str) -> bool:
        """True when ``ip`` lies in a whitelisted network (never blocked)."""
        address = ipaddress.ip_address(ip)
        return any(address in network for network in self._networks)

    def is_protected(self, ip: str) -> bool:
        """True when ``ip`` (canonical) is one of ``protected_addresses``."""
        return ip in self.protected_addresses

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (what GET returns and the store persists)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        data["xmpp_ports"] = list(self.xmpp_ports)
        data["whitelist"] = list(self.whitelist)
        data["protected_addresses"] = list(self.protected_addresses)
        data["mode"] = self.mode.value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LimiterSettings:
        """Build from a complete or partial dict; unknown keys are refused."""
        return apply_patch(cls(), data, force=True).settings  # stored: accepted once


SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(LimiterSettings) if f.init)

#: Settings of releases before the shaper policy, and what replaced them. A stored
#: value of one is logged and dropped; a PATCH naming one is refused with this hint.
RETIRED_SETTINGS: dict[str, str] = {
    "threshold_ppm": "message_rate_per_s and message_burst",
    "payload_threshold_bpm": "payload_rate_bps and payload_burst_bytes",
    "aggregate_threshold_ppm": "aggregate_messages_per_s",
}


@dataclass(frozen=True)
class SettingsEffects:
    """What an accepted patch means for flows and state already in place.

    Changes not listed take effect by themselves: the allowance, sustain time,
    aggregate limit and poll interval at the next evaluation/poll (a bucket fuller
    than a new, smaller burst is clamped then); block durations and escalation for
    blocks made after the change (a running block keeps the expiry it
    was announced with, and its drop flow's hard timeout cannot be changed anyway).
    """

    #: Capture flows are deleted and reinstalled for the new ports; monitors of
    #: connections to a port no longer listed are deleted.
    reinstall_capture: bool = False
    #: OpenFlow cannot change a flow's timeouts in place, so a new idle timeout
    #: applies to monitors installed from now on; running ones keep theirs.
    new_monitors_only: bool = False
    #: Meters are added or removed and monitors re-added with/without the meter
    #: instruction (mode changed to or from meter).
    remeter: bool = False
    #: Meter bands are modified in place (rate or burst changed in meter mode).
    modify_meters: bool = False
    #: Blocks of addresses now whitelisted or protected are lifted; whitelisted flags
    #: recomputed.
    whitelist_changed: bool = False


@dataclass(frozen=True)
class SettingsUpdate:
    """The result of :func:`apply_patch`."""

    settings: LimiterSettings
    changed: frozenset[str]
    effects: SettingsEffects


def too_wide(whitelist: Iterable[str]) -> str | None:
    """The first whitelisted network wider than WIDEST_WHITELIST_V4/_V6, if any."""
    for entry in whitelist:
        network = ipaddress.ip_network(entry)
        widest = WIDEST_WHITELIST_V4 if network.version == 4 else WIDEST_WHITELIST_V6
        if network.prefixlen < widest:
            return entry
    return None


def apply_patch(
    current: LimiterSettings, patch: Mapping[str, Any], *, force: bool = False
) -> SettingsUpdate:
    """Return the settings with ``patch`` applied, and what must change on switches.

    Raises :class:`SettingsError` (a ValueError) for a patch that is not a JSON
    object, an unknown field, a wrong type or an out-of-range value, and for a
    whitelist entry wider than /16 (IPv4) or /48 (IPv6) unless ``force``;
    ``current`` is never modified, so a refused patch changes nothing.
    """
    if not isinstance(patch, Mapping):
        raise SettingsError("settings", f"must be a JSON object, got {patch!r}")
    retired = sorted(str(key) for key in patch if key in RETIRED_SETTINGS)
    if retired:
        raise SettingsError(
            retired[0], f"retired setting; use {RETIRED_SETTINGS[retired[0]]} (README.md)"
        )
    unknown = sorted(str(key) for key in patch if key not in SETTING_NAMES)
    if unknown:
        raise SettingsError(
            unknown[0], f"unknown setting; known settings are {', '.join(SETTING_NAMES)}"
        )
    values = dict(patch)
    for key in ("xmpp_ports", "whitelist", "protected_addresses"):
        if key in values and isinstance(values[key], list):
            values[key] = tuple(values[key])
    if "mode" in values and not isinstance(values["mode"], str):
        raise SettingsError("mode", f"must be a string, got {values['mode']!r}")
    new = replace(current, **values)
    if "whitelist" in values and not force:
        added = [entry for entry in new.whitelist if entry not in current.whitelist]
        wide = too_wide(added)
        if wide is not None:
            raise SettingsError(
                "whitelist",
                f"{wide} is wider than /{WIDEST_WHITELIST_V4} (IPv4) or /{WIDEST_WHITELIST_V6} "
                f"(IPv6) and would exempt that many addresses from blocking; "
                f'send "{FORCE}": true with the patch if you mean it',
            )
    changed = frozenset(
        name for name in SETTING_NAMES if getattr(new, name) != getattr(current, name)
    )
    return SettingsUpdate(new, changed, _effects(current, new, changed))


def _effects(old: LimiterSettings, new: LimiterSettings, changed: Iterable[str]) -> SettingsEffects:
    changed = set(changed)
    meter_involved = Mode.METER in (old.mode, new.mode)
    return SettingsEffects(
        reinstall_capture="xmpp_ports" in changed,
        new_monitors_only="monitor_idle_timeout_s" in changed,
        remeter="mode" in changed and meter_involved,
        modify_meters=(
            "mode" not in changed
            and new.mode is Mode.METER
            and bool({"meter_rate_pps", "meter_burst_packets"} & changed)
        ),
        whitelist_changed=bool({"whitelist", "protected_addresses"} & changed),
    )


__all__ = [
    "FORCE",
    "HEADER_BYTES_IPV4",
    "HEADER_BYTES_IPV6",
    "RETIRED_SETTINGS",
    "SETTING_NAMES",
    "LimiterSettings",
    "Mode",
    "SettingsEffects",
    "SettingsError",
    "SettingsUpdate",
    "apply_patch",
    "header_bytes",
]
