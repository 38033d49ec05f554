"""Only the operator gets in: the real controller refuses unauthenticated writes, foreign origins.

Two controllers (``make run``'s launcher, real Kytos): one on the defaults, one
with ``--cors-origin`` and ``--token-for-reads``.  The requests go over HTTP
exactly as a browser or curl sends them (``ControllerProcess.exchange``).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kytos_helpers import stop_and_show_traceback
from xmpp_ofc.testing.controller import ControllerProcess

DPID = "00:00:00:00:00:00:00:01"
RATE_LIMITER = "xmpp_ofc/rate_limiter/v1"
SETTINGS = f"{RATE_LIMITER}/settings"
ALLOWED = "http://ui.example:8181"
EVIL = "http://evil.example"

#: One state-changing call per NApp and Kytos core's napps endpoints (GETs in 2021.1).
WRITES = [
    ("PATCH", SETTINGS, {"mode": "monitor"}),
    ("POST", f"{RATE_LIMITER}/blocked", {"dpid": DPID, "ip": "10.0.0.9", "duration": 60}),
    ("DELETE", f"{RATE_LIMITER}/blocked/{DPID}/10.0.0.9", None),
    ("PATCH", f"xmpp_ofc/dispatcher/v1/switches/{DPID}/modules/l2_switch", {"enabled": False}),
    ("DELETE", f"xmpp_ofc/l2_switch/v1/mac_table/{DPID}", None),
    ("POST", f"kytos/flow_manager/v2/flows/{DPID}", {"flows": [{"priority": 1}]}),
    ("DELETE", "kytos/flow_manager/v2/flows", {"flows": [{}]}),
    ("POST", "kytos/flow_manager/v2/delete", {"flows": [{}]}),
    ("GET", "kytos/core/napps/xmpp_ofc/rate_limiter/disable", None),
    ("GET", "kytos/core/napps/kytos/flow_manager/uninstall", None),
    ("GET", "kytos/core/napps/xmpp_ofc/l2_switch/install", None),
    ("GET", "kytos/core/_shutdown", None),
    ("PUT", SETTINGS, {"mode": "monitor"}),
]
#: What the writes above would change, read back (reads are open on the defaults).
STATE = [
    SETTINGS,
    f"{RATE_LIMITER}/blocked",
    "kytos/core/napps_enabled",
    "kytos/core/napps_installed",
    "kytos/flow_manager/v2/flows",
]


def started(base: Path, extra_args: list[str] | None = None) -> ControllerProcess:
    return ControllerProcess(base, extra_args=extra_args).start()


@pytest.fixture(scope="module")
def controller(tmp_path_factory):
    running = started(tmp_path_factory.mktemp("auth_default"))
    yield running
    stop_and_show_traceback(running)


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    running = started(
        tmp_path_factory.mktemp("auth_strict"), ["--cors-origin", ALLOWED, "--token-for-reads"]
    )
    yield running
    stop_and_show_traceback(running)


def snapshot(controller: ControllerProcess) -> dict[str, object]:
    state = {}
    for path in STATE:
        status, body = controller.get(path)
        assert status == 200, (path, body)
        state[path] = body
    return state


def test_every_unauthenticated_write_is_401_and_changes_nothing(controller):
    before = snapshot(controller)
    for method, path, body in WRITES:
        status, reply = controller.request(method, path, body, auth=False)
        assert status == 401, (method, path, reply)
        assert "Authorization: Bearer" in reply["description"]
        assert "xmpp-ofc-controller --print-token" in reply["description"]
    assert controller.running
    assert snapshot(controller) == before
    assert before[SETTINGS]["mode"] == "block"


def test_a_wrong_token_is_401_too(controller):
    status, _ = controller.patch(SETTINGS, {"mode": "monitor"}, auth="not-the-token")
    assert status == 401
    assert controller.get(SETTINGS)[1]["mode"] == "block"


def test_reads_are_open_on_the_defaults(controller):
    assert controller.get(SETTINGS, auth=False)[0] == 200


def test_authenticated_writes_work(controller):
    status, body = controller.patch(SETTINGS, {"mode": "monitor"})
    assert status == 200, body
    assert controller.get(SETTINGS)[1]["mode"] == "monitor"
    status, body = controller.patch(SETTINGS, {"mode": "block"})
    assert status == 200, body
    disable = "kytos/core/napps/xmpp_ofc/l2_switch/disable"
    assert controller.get(disable) == (200, {"response": "disabled"})
    assert ["xmpp_ofc", "l2_switch"] not in controller.get("kytos/core/napps_enabled")[1]["napps"]
    enable = "kytos/core/napps/xmpp_ofc/l2_switch/enable"
    assert controller.get(enable) == (200, {"response": "enabled"})


def test_the_token_file_is_private(controller):
    mode = stat.S_IMODE(os.stat(controller.token_path).st_mode)
    assert mode == 0o600
    assert controller.token_path == controller.base_dir / "etc" / "kytos" / "xmpp_ofc.token"


def test_print_token_gives_the_token_the_controller_accepts(controller):
    printed = subprocess.run(
        [*controller_cli(), "--print-token", "--base-dir", str(controller.base_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    assert controller.patch(SETTINGS, {"mode": "block"}, auth=printed)[0] == 200


def test_rotate_refuses_the_old_token_at_once(controller):
    old = controller.token()
    rotated = subprocess.run(
        [*controller_cli(), "--rotate-token", "--base-dir", str(controller.base_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    assert rotated and rotated != old
    assert controller.patch(SETTINGS, {"mode": "monitor"}, auth=old)[0] == 401
    assert controller.get(SETTINGS)[1]["mode"] == "block"
    assert controller.patch(SETTINGS, {"mode": "block"}, auth=rotated)[0] == 200


def test_a_cross_origin_preflight_and_request_are_refused(controller):
    preflight = {
        "Origin": EVIL,
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "content-type,authorization",
    }
    status, _, headers = controller.exchange("OPTIONS", SETTINGS, auth=False, headers=preflight)
    assert status == 200  # Flask's own OPTIONS answer, without any grant
    assert not {h.lower() for h in headers} & {
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
    }
    status, _, headers = controller.exchange(
        "PATCH", SETTINGS, {"mode": "monitor"}, auth=False, headers={"Origin": EVIL}
    )
    assert status == 401
    assert "Access-Control-Allow-Origin" not in headers
    status, _, headers = controller.exchange("GET", SETTINGS, auth=False, headers={"Origin": EVIL})
    assert status == 200
    assert "Access-Control-Allow-Origin" not in headers  # the browser hides the answer
    assert controller.get(SETTINGS)[1]["mode"] == "block"


def test_an_allow_listed_origin_is_granted(strict):
    preflight = {"Origin": ALLOWED, "Access-Control-Request-Method": "PATCH"}
    _, _, headers = strict.exchange("OPTIONS", SETTINGS, auth=False, headers=preflight)
    assert headers["Access-Control-Allow-Origin"] == ALLOWED
    _, _, headers = strict.exchange(
        "OPTIONS", SETTINGS, auth=False, headers={**preflight, "Origin": EVIL}
    )
    assert "Access-Control-Allow-Origin" not in headers


def test_token_for_reads_guards_gets_but_not_the_dashboard_page(strict):
    assert strict.get(SETTINGS, auth=False)[0] == 401
    assert strict.get(SETTINGS)[0] == 200
    status, page = strict.get("xmpp_ofc/dispatcher/v1/dashboard/", auth=False)
    assert status == 200
    assert "<html" in page


def test_kytos_own_shutdown_carries_the_token(tmp_path):
    running = started(tmp_path / "shutdown")
    assert running.stop() == 0
    log = running.log_text()
    assert "refused GET /api/kytos/core/_shutdown" not in log
    assert "Traceback" not in log


def controller_cli() -> list[str]:
    launcher = Path(sys.executable).with_name("xmpp-ofc-controller")
    return [str(launcher)] if launcher.exists() else [sys.executable, "-m", "xmpp_ofc.launcher"]
