"""Every NApp's openapi.yml is valid YAML and valid OpenAPI 3 (issue 13).

tests/openapi_check.py reads the files line by line to compare routes with the
code; it cannot tell a file that no YAML parser accepts (an unquoted ``: `` in
a description made dispatcher's spec unreadable to every OpenAPI tool).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

REPOSITORY = Path(__file__).parents[2]
SPECS = sorted(REPOSITORY.glob("napps/*/*/openapi.yml"))


def test_every_napp_with_rest_has_a_spec() -> None:
    assert {spec.parent.name for spec in SPECS} >= {
        "flow_manager",
        "dispatcher",
        "l2_switch",
        "rate_limiter",
    }


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: f"{spec.parts[-3]}/{spec.parts[-2]}")
def test_openapi_spec_is_valid_openapi_3(spec: Path) -> None:
    document = yaml.safe_load(spec.read_text())
    assert str(document.get("openapi", "")).startswith("3."), "not an OpenAPI 3 document"
    validate(document)  # raises OpenAPIValidationError with the failing path
