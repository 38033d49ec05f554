"""openapi.yml lists exactly the routes and status codes the NApp serves."""

from __future__ import annotations

from tests.openapi_check import documented_operations, openapi_path, served_operations

NAPP = "kytos/flow_manager"


def test_documented_routes_are_the_served_routes():
    from napps.kytos.flow_manager.main import Main

    assert set(documented_operations(openapi_path(NAPP))) == served_operations(Main, NAPP)


def test_documented_status_codes():
    operations = documented_operations(openapi_path(NAPP))
    assert operations[("/v2/flows/{dpid}", "POST")] == {
        "200",
        "400",
        "401",
        "404",
        "409",
        "413",
        "415",
    }
    assert operations[("/v2/flows", "POST")] == {"200", "400", "401", "413", "415"}
    assert operations[("/v2/flows/{dpid}", "GET")] == {"200", "404"}
