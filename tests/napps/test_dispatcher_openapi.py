"""The dispatcher's openapi.yml lists exactly the routes and status codes it serves."""

from __future__ import annotations

from tests.openapi_check import documented_operations, openapi_path, served_operations

NAPP = "xmpp_ofc/dispatcher"


def test_documented_routes_are_the_served_routes():
    from napps.xmpp_ofc.dispatcher.main import Main

    assert set(documented_operations(openapi_path(NAPP))) == served_operations(Main, NAPP)


def test_documented_status_codes():
    operations = documented_operations(openapi_path(NAPP))
    assert operations == {
        ("/v1/switches", "GET"): {"200"},
        ("/v1/switches/{dpid}", "GET"): {"200", "404"},
        ("/v1/switches/{dpid}/modules/{module}", "PATCH"): {
            "200",
            "400",
            "401",
            "404",
            "413",
            "415",
        },
        ("/v1/metrics", "GET"): {"200"},
        ("/v1/messages/history", "GET"): {"200"},
        ("/v1/dashboard/", "GET"): {"200"},
        ("/v1/dashboard/{name}", "GET"): {"200", "404"},
    }
