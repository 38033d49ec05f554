"""Check that a NApp's openapi.yml lists exactly the routes and methods it serves.

Shared by every NApp's openapi test.  PyYAML is not a dependency of the bundle;
the openapi.yml files keep a regular layout (paths at two spaces, methods at
four, status codes at eight), which is all :func:`documented_operations` reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).parents[1]


def openapi_path(napp: str) -> Path:
    """``napps/<user>/<name>/openapi.yml`` of ``napp`` (``"user/name"``)."""
    return REPOSITORY / "napps" / napp / "openapi.yml"


def documented_operations(path: Path) -> dict[tuple[str, str], set[str]]:
    """(path, METHOD) -> status codes documented in the openapi file at ``path``."""
    operations: dict[tuple[str, str], set[str]] = {}
    route = method = None
    in_paths = False
    for line in path.read_text().splitlines():
        if re.match(r"^\S", line):
            in_paths = line.startswith("paths:")
            continue
        if not in_paths:
            continue
        if found := re.match(r"^  (/\S+):$", line):
            route, method = found.group(1), None
        elif found := re.match(r"^    (get|post|delete|put|patch):$", line):
            method = found.group(1).upper()
            operations[(route, method)] = set()
        elif method and (found := re.match(r'^        "(\d{3})":', line)):
            operations[(route, method)].add(found.group(1))
    return operations


def served_operations(make_napp: Callable[[Any], Any], napp: str) -> set[tuple[str, str]]:
    """(path, METHOD) the NApp built by ``make_napp(controller)`` registers under its prefix.

    Paths use openapi's ``{name}`` for Flask's ``<name>``; HEAD and OPTIONS,
    which Flask adds by itself, are left out.
    """
    from kytos.lib.helpers import get_controller_mock, get_test_client

    controller = get_controller_mock()
    get_test_client(controller, make_napp(controller))
    prefix = f"/api/{napp}"
    served = set()
    for rule in controller.api_server.app.url_map.iter_rules():
        if rule.rule.startswith(prefix + "/"):
            route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule[len(prefix) :])
            served |= {(route, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return served
