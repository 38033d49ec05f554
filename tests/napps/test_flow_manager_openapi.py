"""openapi.yml lists exactly the routes and status codes the NApp serves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

OPENAPI = Path(__file__).parents[2] / "napps" / "kytos" / "flow_manager" / "openapi.yml"
PREFIX = "/api/kytos/flow_manager"


def documented_operations() -> dict[tuple[str, str], set[str]]:
    """(path, METHOD) -> status codes, read from the fixed layout of openapi.yml.

    PyYAML is not a dependency of the bundle; the file's indentation is regular
    enough to read the three levels we check.
    """
    operations: dict[tuple[str, str], set[str]] = {}
    path = method = None
    in_paths = False
    for line in OPENAPI.read_text().splitlines():
        if re.match(r"^\S", line):
            in_paths = line.startswith("paths:")
            continue
        if not in_paths:
            continue
        if found := re.match(r"^  (/\S+):$", line):
            path, method = found.group(1), None
        elif found := re.match(r"^    (get|post|delete|put|patch):$", line):
            method = found.group(1).upper()
            operations[(path, method)] = set()
        elif method and (found := re.match(r'^        "(\d{3})":', line)):
            operations[(path, method)].add(found.group(1))
    return operations


@pytest.fixture
def served_routes():
    from kytos.lib.helpers import get_controller_mock, get_test_client

    from napps.kytos.flow_manager.main import Main

    controller = get_controller_mock()
    get_test_client(controller, Main(controller))
    routes = set()
    for rule in controller.api_server.app.url_map.iter_rules():
        if rule.rule.startswith(PREFIX):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule[len(PREFIX) :])
            routes |= {(path, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def test_documented_routes_are_the_served_routes(served_routes):
    assert set(documented_operations()) == served_routes


def test_documented_status_codes():
    operations = documented_operations()
    assert operations[("/v2/flows/{dpid}", "POST")] == {"200", "400", "404", "409", "415"}
    assert operations[("/v2/flows", "POST")] == {"200", "400", "415"}
    assert operations[("/v2/flows/{dpid}", "GET")] == {"200", "404"}
