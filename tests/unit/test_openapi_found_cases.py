"""The specs agree with the code on every case schemathesis found (issue 13).

Each case is a request the code refuses, and rightly: before, the spec called it
valid, so every client generated from the spec (and schemathesis) sent it and
got a 400. The spec now says so. The cases the code accepts stay valid.
``tests/controller/test_schemathesis.py`` runs the whole pass on a controller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30WriteValidator, oas30_format_checker

REPOSITORY = Path(__file__).parents[2]


def spec(napp: str) -> dict[str, Any]:
    return yaml.safe_load((REPOSITORY / "napps" / napp / "openapi.yml").read_text())


def resolved(document: dict[str, Any], node: Any) -> Any:
    """``node`` with every local ``$ref`` replaced by what it names (the specs have no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolved(document, target)
        return {key: resolved(document, value) for key, value in node.items()}
    if isinstance(node, list):
        return [resolved(document, item) for item in node]
    return node


def is_valid(schema: dict[str, Any], value: Any) -> bool:
    return OAS30WriteValidator(schema, format_checker=oas30_format_checker).is_valid(value)


def body_schema(napp: str, path: str, method: str) -> dict[str, Any]:
    document = spec(napp)
    body = resolved(document, document["paths"][path][method]["requestBody"])
    return body["content"]["application/json"]["schema"]


def parameter_schema(napp: str, path: str, method: str, name: str) -> dict[str, Any]:
    document = spec(napp)
    item = resolved(document, document["paths"][path])
    parameters = item.get("parameters", []) + item[method].get("parameters", [])
    (found,) = [parameter for parameter in parameters if parameter["name"] == name]
    return found["schema"]


RATE_LIMITER = "xmpp_ofc/rate_limiter"
FLOW_MANAGER = "kytos/flow_manager"


@pytest.mark.parametrize("path", ["/v1/blocked/{dpid}/{ip}", "/v1/blocked/{dpid}/{ip}/{port}"])
def test_rate_limiter_ip_parameter_is_an_address(path):
    schema = parameter_schema(RATE_LIMITER, path, "delete", "ip")
    assert not is_valid(schema, "0")  # schemathesis' case
    assert not is_valid(schema, "fe80::1%eth0")
    assert is_valid(schema, "10.0.0.7")
    assert is_valid(schema, "2001:db8::7")


def test_rate_limiter_block_body_ip_is_an_address():
    schema = body_schema(RATE_LIMITER, "/v1/blocked", "post")
    assert not is_valid(schema, {"dpid": "00:00:00:00:00:00:00:01", "ip": "0"})
    assert is_valid(schema, {"dpid": "00:00:00:00:00:00:00:01", "ip": "10.0.0.7"})


def test_rate_limiter_events_limit_is_at_most_the_history():
    schema = parameter_schema(RATE_LIMITER, "/v1/events", "get", "limit")
    assert not is_valid(schema, 7582)  # schemathesis' case
    assert not is_valid(schema, 1001)
    assert is_valid(schema, 1000)


def test_rate_limiter_xmpp_ports_are_unique():
    schema = body_schema(RATE_LIMITER, "/v1/settings", "patch")
    assert not is_valid(schema, {"xmpp_ports": [1, 1]})  # schemathesis' case
    assert is_valid(schema, {"xmpp_ports": [5222, 5223]})


def test_rate_limiter_whitelist_entries_are_addresses_or_cidrs():
    schema = body_schema(RATE_LIMITER, "/v1/settings", "patch")
    for entry in ("10.0.0.0/24", "10.0.0.7", "2001:db8::/48", "2001:db8::1"):
        assert is_valid(schema, {"whitelist": [entry]}), entry
    for entry in (":/120", "10.0.0.0/33", "10.0.0.256/8", "2001:db8::/129", "any"):
        assert not is_valid(schema, {"whitelist": [entry]}), entry


@pytest.mark.parametrize(("path", "method"), [("/v2/flows", "post"), ("/v2/flows/{dpid}", "post")])
def test_flow_manager_add_takes_buffer_id_but_not_delete_filters(path, method):
    schema = body_schema(FLOW_MANAGER, path, method)
    assert is_valid(schema, {"flows": [{"buffer_id": 7}]})
    assert not is_valid(schema, {"flows": [{"out_port": 1}]})  # schemathesis' case
    assert not is_valid(schema, {"flows": [{"out_group": 1}]})
    assert not is_valid(schema, {"flows": [{"table_id": 255}]})
    assert not is_valid(schema, {"flows": [{}], "force": True})
    assert not is_valid(schema, {"flows": [{"actions": [], "instructions": []}]})


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/v2/flows", "delete"),
        ("/v2/flows/{dpid}", "delete"),
        ("/v2/delete", "post"),
        ("/v2/delete/{dpid}", "post"),
    ],
)
def test_flow_manager_delete_takes_filters_and_force_but_not_buffer_id(path, method):
    schema = body_schema(FLOW_MANAGER, path, method)
    assert is_valid(schema, {"flows": [{"table_id": 255, "out_port": 1, "out_group": 2}]})
    assert is_valid(schema, {"flows": [{}], "force": True})
    assert not is_valid(schema, {"flows": [{"buffer_id": 7}]})  # schemathesis' case
    # The GET shape's keys are accepted with any value (the code ignores them).
    assert is_valid(schema, {"flows": [{"switch": 1, "id": None, "stats": "x"}]})
