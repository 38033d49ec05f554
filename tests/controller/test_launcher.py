"""The launcher (``make run``) starts kytosd with all five NApps and stops cleanly."""

from __future__ import annotations

from xmpp_ofc import napp_layout


def test_all_bundled_napps_enabled_and_loaded(controller_factory):
    controller = controller_factory()
    status, body = controller.get("kytos/core/napps_enabled")
    assert status == 200
    enabled = {f"{user}/{name}" for user, name in body["napps"]}
    assert enabled == {napp.napp_id for napp in napp_layout.bundled_napps()}
    log = controller.log_text()
    assert "NApp initialization failed" not in log
    assert "Error loading NApp" not in log


def test_debug_flag_starts_and_logs_at_debug(controller_factory):
    """``--debug`` (documented in the README) starts and serves; it used to die with
    ``NoSectionError: logger_api_server`` because Kytos sets that logger's level."""
    controller = controller_factory(extra_args=["--debug"])
    status, _ = controller.get("kytos/core/napps_enabled")
    assert status == 200
    log = controller.log_text()
    assert "NoSectionError" not in log
    assert "Traceback" not in log
    assert " DEBUG " in log
    assert controller.stop() == 0


def test_sigterm_stops_controller_cleanly(controller_factory):
    controller = controller_factory()
    assert controller.stop() == 0
    assert not controller.running
    assert "Traceback" not in controller.log_text()


def test_napp_disable_and_enable_over_core_rest(controller_factory):
    """Kytos' own enable/disable endpoints work on our .installed layout."""
    controller = controller_factory()
    status, body = controller.get("kytos/core/napps/xmpp_ofc/rate_limiter/disable")
    assert (status, body) == (200, {"response": "disabled"})
    _, body = controller.get("kytos/core/napps_enabled")
    assert ["xmpp_ofc", "rate_limiter"] not in body["napps"]
    status, body = controller.get("kytos/core/napps/xmpp_ofc/rate_limiter/enable")
    assert (status, body) == (200, {"response": "enabled"})
    _, body = controller.get("kytos/core/napps_enabled")
    assert ["xmpp_ofc", "rate_limiter"] in body["napps"]
