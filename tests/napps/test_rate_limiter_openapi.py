"""rate_limiter's openapi.yml lists exactly the routes and status codes it serves."""

from __future__ import annotations

from tests.openapi_check import documented_operations, openapi_path, served_operations

NAPP = "xmpp_ofc/rate_limiter"


def test_documented_routes_are_the_served_routes(tmp_path, monkeypatch):
    from napps.xmpp_ofc.rate_limiter import settings
    from napps.xmpp_ofc.rate_limiter.main import Main

    monkeypatch.setattr(settings, "DB_PATH", str(tmp_path / "rate_limiter.sqlite"))
    assert set(documented_operations(openapi_path(NAPP))) == served_operations(Main, NAPP)


def test_documented_status_codes():
    operations = documented_operations(openapi_path(NAPP))
    assert operations == {
        ("/v1/monitored", "GET"): {"200", "400", "404"},
        ("/v1/blocked", "GET"): {"200", "400", "404"},
        ("/v1/blocked", "POST"): {"200", "201", "400", "401", "404", "409", "413", "415"},
        ("/v1/blocked/{dpid}/{ip}", "DELETE"): {"200", "400", "401", "404"},
        ("/v1/blocked/{dpid}/{ip}/{port}", "DELETE"): {"200", "400", "401", "404"},
        ("/v1/settings", "GET"): {"200"},
        ("/v1/settings", "PATCH"): {"200", "400", "401", "413", "415"},
        ("/v1/events", "GET"): {"200", "400"},
        ("/v1/status", "GET"): {"200"},
    }
