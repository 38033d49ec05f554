"""Environment overrides of settings, and the on-loop listener decorator."""

import logging

import pytest

from xmpp_ofc.kytos_events import listen_on_loop
from xmpp_ofc.settings_env import SettingError, env_setting


@pytest.mark.parametrize(
    ("default", "raw", "expected"),
    [
        (5.0, "0.25", 0.25),
        (64, "8", 8),
        (True, "off", False),
        (False, "YES", True),
        ("a", "b", "b"),
    ],
)
def test_override_is_parsed_to_the_type_of_the_default(default, raw, expected):
    value = env_setting("P_", "X", default, {"P_X": raw})
    assert value == expected
    assert type(value) is type(expected)


def test_missing_variable_keeps_the_default():
    assert env_setting("P_", "X", 3, {"OTHER": "1"}) == 3


@pytest.mark.parametrize(("default", "raw"), [(1, "one"), (1.0, ""), (True, "maybe")])
def test_malformed_override_names_the_variable(default, raw):
    with pytest.raises(SettingError, match="P_X"):
        env_setting("P_", "X", default, {"P_X": raw})


def test_of_core_settings_read_the_environment(monkeypatch):
    import importlib

    from napps.kytos.of_core import settings

    monkeypatch.setenv("KYTOS_OF_CORE_ECHO_INTERVAL", "0.5")
    try:
        assert importlib.reload(settings).ECHO_INTERVAL == 0.5
    finally:
        monkeypatch.delenv("KYTOS_OF_CORE_ECHO_INTERVAL")
        importlib.reload(settings)
    assert settings.ECHO_INTERVAL == 5.0


def test_listen_on_loop_registers_events_and_runs_inline():
    calls = []

    class NApp:
        @listen_on_loop("a/b.c", "a/b.d")
        def handler(self, event):
            calls.append(event)

    napp = NApp()
    assert napp.handler.events == ["a/b.c", "a/b.d"]
    napp.handler("event")
    assert calls == ["event"]  # same thread, already done


def test_listen_on_loop_logs_and_swallows_errors(caplog):
    class NApp:
        @listen_on_loop("a/b.c")
        def handler(self, event):
            raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR):
        NApp().handler("event")  # must not raise into Kytos' dispatch task
    assert "boom" in caplog.text
