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
    assert settings.threshold_ppm == 100
    assert settings.xmpp_ports == (5222,)
    assert settings.mode is Mode.BLOCK
    assert LimiterSettings.from_json(settings.to_json()) == settings


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"threshold": 5}, "threshold"),
        ({"threshold_ppm": "100"}, "threshold_ppm"),
        ({"threshold_ppm": True}, "threshold_ppm"),
        ({"threshold_ppm": 0}, "threshold_ppm"),
        ({"threshold_ppm": -1}, "threshold_ppm"),
        ({"poll_interval_s": 0.5}, "poll_interval_s"),
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
        apply_patch(LimiterSettings(), ["threshold_ppm", 5])  # type: ignore[arg-type]


def test_whitelist_is_normalised_and_matches_v4_and_v6() -> None:
    update = apply_patch(
        LimiterSettings(), {"whitelist": ["10.0.0.7/24", "2001:db8::/32", "10.0.0.0/24"]}
    )
    settings = update.settings
    assert settings.whitelist == ("10.0.0.0/24", "2001:db8::/32")
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
    same = apply_patch(base, {"threshold_ppm": 100})
    assert same.changed == frozenset()
