"""Rate limiter settings: validation with field names, patches and their effects."""

from __future__ import annotations

import pytest

from napps.xmpp_ofc.rate_limiter.settings_model import (
    LimiterSettings,
    Mode,
    SettingsError,
    apply_patch,
)


def test_defaults_are_valid_and_documented_values() -> None:
    settings = LimiterSettings()
    # ejabberd's `normal` shaper for bytes; fail2ban-like escalation.
    assert (settings.payload_rate_bps, settings.payload_burst_bytes) == (3000, 20000)
    assert (settings.message_rate_per_s, settings.message_burst, settings.sustain_s) == (5, 10, 2)
    assert (settings.poll_interval_s, settings.block_duration_s, settings.block_max_s) == (
        1,
        60,
        3600,
    )
    assert (settings.offence_window_s, settings.address_block_after) == (3600, 2)
    assert settings.xmpp_ports == (5222,)
    assert settings.mode is Mode.BLOCK
    assert LimiterSettings.from_json(settings.to_json()) == settings


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"threshold": 5}, "threshold"),
        ({"threshold_ppm": 100}, "threshold_ppm"),  # retired
        ({"payload_rate_bps": "3000"}, "payload_rate_bps"),
        ({"payload_rate_bps": True}, "payload_rate_bps"),
        ({"payload_rate_bps": 0}, "payload_rate_bps"),
        ({"payload_burst_bytes": -1}, "payload_burst_bytes"),
        ({"message_rate_per_s": 0}, "message_rate_per_s"),
        ({"message_rate_per_s": float("inf")}, "message_rate_per_s"),
        ({"message_burst": 1.5}, "message_burst"),
        ({"sustain_s": -1}, "sustain_s"),
        ({"block_max_s": 30}, "block_max_s"),  # below block_duration_s
        ({"offence_window_s": -1}, "offence_window_s"),
        ({"address_block_after": -1}, "address_block_after"),
        ({"aggregate_messages_per_s": 0}, "aggregate_messages_per_s"),
        ({"poll_interval_s": 0.1}, "poll_interval_s"),
        ({"poll_interval_s": float("nan")}, "poll_interval_s"),
        ({"block_duration_s": 70_000}, "block_duration_s"),
        ({"monitor_idle_timeout_s": 0}, "monitor_idle_timeout_s"),
        ({"xmpp_ports": []}, "xmpp_ports"),
        ({"xmpp_ports": 5222}, "xmpp_ports"),
        ({"xmpp_ports": [5222, 5222]}, "xmpp_ports"),
        ({"xmpp_ports": [5222, 70000]}, "xmpp_ports[1]"),
        ({"whitelist": "10.0.0.0/8"}, "whitelist"),
        ({"whitelist": ["10.0.0.0/8", "nope"]}, "whitelist[1]"),
        ({"whitelist": [7]}, "whitelist[0]"),
        ({"mode": "drop"}, "mode"),
        ({"mode": 1}, "mode"),
        ({"per_ip_aggregate": "yes"}, "per_ip_aggregate"),
        ({"meter_rate_pps": 0}, "meter_rate_pps"),
    ],
)
def test_bad_patch_is_refused_naming_the_field(patch: dict, field: str) -> None:
    current = LimiterSettings()
    with pytest.raises(SettingsError) as info:
        apply_patch(current, patch)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}:")
    assert current == LimiterSettings()  # nothing changed


def test_patch_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(SettingsError, match="JSON object"):
        apply_patch(LimiterSettings(), ["message_burst", 5])  # type: ignore[arg-type]


def test_whitelist_is_normalised_and_matches_v4_and_v6() -> None:
    update = apply_patch(
        LimiterSettings(), {"whitelist": ["10.0.0.7/24", "2001:db8::/48", "10.0.0.0/24"]}
    )
    settings = update.settings
    assert settings.whitelist == ("10.0.0.0/24", "2001:db8::/48")
    assert settings.is_whitelisted("10.0.0.200")
    assert settings.is_whitelisted("2001:db8::1")
    assert not settings.is_whitelisted("10.0.1.1")
    assert update.effects.whitelist_changed


def test_effects_of_each_kind_of_change() -> None:
    base = LimiterSettings()
    ports = apply_patch(base, {"xmpp_ports": [5223, 5222]})
    assert ports.settings.xmpp_ports == (5222, 5223)
    assert ports.effects.reinstall_capture and ports.changed == {"xmpp_ports"}
    idle = apply_patch(base, {"monitor_idle_timeout_s": 30})
    assert idle.effects.new_monitors_only and not idle.effects.reinstall_capture
    to_meter = apply_patch(base, {"mode": "meter"})
    assert to_meter.effects.remeter
    assert not apply_patch(base, {"mode": "monitor"}).effects.remeter
    rate = apply_patch(to_meter.settings, {"meter_rate_pps": 5})
    assert rate.effects.modify_meters and not rate.effects.remeter
    assert not apply_patch(base, {"meter_rate_pps": 5}).effects.modify_meters
    same = apply_patch(base, {"message_rate_per_s": 5})
    assert same.changed == frozenset()


def test_a_retired_setting_names_what_replaced_it() -> None:
    with pytest.raises(SettingsError, match="use message_rate_per_s and message_burst"):
        apply_patch(LimiterSettings(), {"threshold_ppm": 100})


@pytest.mark.parametrize(
    "wide", ["0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/15", "::/0", "2001:db8::/32"]
)
def test_a_whitelist_wider_than_16_or_48_needs_force(wide: str) -> None:
    with pytest.raises(SettingsError, match='"force": true') as info:
        apply_patch(LimiterSettings(), {"whitelist": ["192.0.2.0/24", wide]})
    assert info.value.field == "whitelist"
    forced = apply_patch(LimiterSettings(), {"whitelist": [wide]}, force=True)
    assert forced.settings.whitelist == (wide,)
    # Once accepted, it stays: a later patch that keeps it needs no force again.
    again = apply_patch(forced.settings, {"whitelist": [wide, "192.0.2.0/24"]})
    assert "192.0.2.0/24" in again.settings.whitelist


@pytest.mark.parametrize("narrow", ["10.0.0.0/16", "10.1.2.3", "2001:db8::/48", "2001:db8::1"])
def test_a_whitelist_of_16_or_48_and_narrower_needs_no_force(narrow: str) -> None:
    assert apply_patch(LimiterSettings(), {"whitelist": [narrow]}).settings.whitelist
