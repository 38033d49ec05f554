"""A bounded schemathesis pass over every NApp's openapi.yml on a running controller (issue 13).

One controller with one fake switch serves the module. For each spec the
schemathesis CLI runs every check (``--checks all``: no 5xx, status codes,
content types, headers and bodies as documented, schema-valid data accepted,
invalid data rejected, 401 without the token, 405 with ``Allow`` for
undeclared methods, ...) with the controller's bearer token, a bounded number
of examples per operation and a fixed seed, so a CI run is repeatable and takes
well under a minute per NApp. ``XMPP_OFC_SCHEMATHESIS_EXAMPLES`` and
``XMPP_OFC_SCHEMATHESIS_SEED`` widen or vary the search by hand.

The only relaxation is in ``schemathesis.toml`` beside this file: where the
code enforces rules OpenAPI 3.0 cannot state, a schema-valid request may get a
400 on those operations (listed there with their rules).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyof.v0x04.common.header import Type

from tests.kytos_helpers import running_controller
from xmpp_ofc.testing.fake_switch import FakeSwitch

REPOSITORY = Path(__file__).parents[2]
SPECS = sorted(REPOSITORY.glob("napps/*/*/openapi.yml"))
CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = os.environ.get("XMPP_OFC_SCHEMATHESIS_EXAMPLES", "30")
SEED = os.environ.get("XMPP_OFC_SCHEMATHESIS_SEED", "13")
#: One NApp's pass; 30 examples per operation take 5-25 s here.
PASS_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def controller(tmp_path_factory):
    with running_controller(tmp_path_factory.mktemp("schemathesis_controller")) as process:
        yield process


@pytest.fixture(scope="module")
def switch(controller):
    with FakeSwitch("127.0.0.1", controller.of_port, dpid=1).handshake() as fake:
        yield fake


def schemathesis_command(spec: Path, url: str, token: str) -> list[str]:
    executable = Path(sys.executable).with_name("schemathesis")
    return [
        str(executable),
        "--config-file",
        str(CONFIG),
        "run",
        str(spec),
        "--url",
        url,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--max-examples",
        EXAMPLES,
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--no-color",
    ]


def test_the_specs_cover_every_napp_with_rest():
    assert {"/".join(spec.parts[-3:-1]) for spec in SPECS} >= {
        "kytos/flow_manager",
        "xmpp_ofc/dispatcher",
        "xmpp_ofc/l2_switch",
        "xmpp_ofc/rate_limiter",
    }


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: "/".join(spec.parts[-3:-1]))
def test_schemathesis_finds_nothing(controller, switch, spec, tmp_path):
    napp = "/".join(spec.parts[-3:-1])
    token = controller.token()
    assert token, "the controller made no API token"
    result = subprocess.run(
        schemathesis_command(spec, controller.api_url(napp), token),
        cwd=tmp_path,  # schemathesis' own cache directory goes there
        capture_output=True,
        text=True,
        timeout=PASS_TIMEOUT_S,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"schemathesis on {napp}:\n{output[-12000:]}"
    assert "No issues found" in output or " passed" in output, output[-3000:]
    # The controller survived the pass and still serves the switch.
    assert controller.running
    since = switch.mark()
    switch.send_echo_request(0xC0FFEE, b"after schemathesis")
    assert switch.wait_for(Type.OFPT_ECHO_REPLY, since=since, timeout=5).xid == 0xC0FFEE
    assert "Traceback" not in controller.log_text()
