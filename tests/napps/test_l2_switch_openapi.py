"""l2_switch's openapi.yml lists exactly the routes and status codes it serves."""

from __future__ import annotations

from tests.openapi_check import documented_operations, openapi_path, served_operations

NAPP = "xmpp_ofc/l2_switch"


def test_documented_routes_are_the_served_routes():
    from napps.xmpp_ofc.l2_switch.main import Main

    assert set(documented_operations(openapi_path(NAPP))) == served_operations(Main, NAPP)


def test_documented_status_codes():
    operations = documented_operations(openapi_path(NAPP))
    assert operations == {
        ("/v1/mac_table", "GET"): {"200"},
        ("/v1/mac_table/{dpid}", "GET"): {"200", "404"},
        ("/v1/mac_table/{dpid}", "DELETE"): {"200", "401", "404"},
    }
