"""Kytos' own CLI (kytos-utils 2021.1) manages the bundle's NApps on a running controller.

The controller starts with ``--napps-from-repository`` (no NApps), its kytos.conf
naming the local NApps repository the launcher built; ``kytos napps install``
then goes through Kytos core's own install path (download, unpack, install the
dependencies, enable, load).  Writes go through ``xmpp-ofc-kytos`` (the same
``kytos`` script plus the API token); plain ``kytos`` is refused for them.
"""

from __future__ import annotations

import email.parser
import email.policy
import fcntl
import http.server
import io
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import termios
import threading
from pathlib import Path

import pytest

from napps.xmpp_ofc.rate_limiter import flows
from tests.kytos_helpers import running_controller
from tests.waiting import wait_until
from xmpp_ofc import napp_layout, napp_repository
from xmpp_ofc.openflow.flow_json import flow_mod_from_dict, flow_mod_to_dict
from xmpp_ofc.testing.controller import ControllerProcess
from xmpp_ofc.testing.fake_switch import FakeSwitch

BIN = Path(sys.executable).parent
PORTS = (5222, 5269)
#: A controller that starts with no NApps and leaves them to `kytos napps`.
FROM_REPOSITORY = {"extra_args": ["--napps-from-repository"], "expect_napps": 0}
RATE_LIMITER_DEPENDENCIES = {
    ("kytos", "of_core"),
    ("kytos", "flow_manager"),
    ("xmpp_ofc", "dispatcher"),
    ("xmpp_ofc", "rate_limiter"),
}


@pytest.fixture(scope="module")
def controller(tmp_path_factory):
    base = tmp_path_factory.mktemp("kytos_cli")
    env = {
        "XMPP_OFC_RATE_LIMITER_XMPP_PORTS": ",".join(map(str, PORTS)),
        "XMPP_OFC_RATE_LIMITER_DB_PATH": str(base / "rate_limiter.sqlite"),
    }
    with running_controller(base, env=env, **FROM_REPOSITORY) as process:
        yield process


def cli_env(controller: ControllerProcess) -> dict[str, str]:
    home = controller.base_dir / "home"
    home.mkdir(exist_ok=True)
    return {
        **os.environ,
        "HOME": str(home),  # kytos-utils writes ~/.kytosrc at first use
        "VIRTUAL_ENV": str(controller.base_dir),  # and its NApp skeleton under $VIRTUAL_ENV/etc
        "KYTOS_API": f"http://127.0.0.1:{controller.api_port}/",
        "XMPP_OFC_API_TOKEN_FILE": str(controller.token_path),
    }


def kytos(controller: ControllerProcess, *args: str, token: bool = True, tty: bool = False):
    """Run ``xmpp-ofc-kytos`` (token) or kytos-utils' plain ``kytos``; stdin a terminal if asked."""
    program = BIN / ("xmpp-ofc-kytos" if token else "kytos")
    stdin = subprocess.DEVNULL
    master = slave = None
    if tty:  # kytos-utils' own list reads the width from `stty size` on stdin
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
        stdin = slave
    try:
        done = subprocess.run(
            [str(program), *args],
            stdin=stdin,
            capture_output=True,
            text=True,
            env=cli_env(controller),
            timeout=60,
            check=False,
        )
    finally:
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)
    return done


def napp_sets(controller: ControllerProcess) -> tuple[set, set]:
    _, installed = controller.get("kytos/core/napps_installed")
    _, enabled = controller.get("kytos/core/napps_enabled")
    return {tuple(n) for n in installed["napps"]}, {tuple(n) for n in enabled["napps"]}


def capture_flows_installed(controller: ControllerProcess) -> bool:
    """A fake switch that connects gets the rate limiter's capture flows (all four NApps work)."""
    wanted = [flow_mod_to_dict(flow_mod_from_dict(f, "add")) for f in flows.capture_flows(PORTS)]
    with FakeSwitch("127.0.0.1", controller.of_port, dpid=0x4C1) as switch:
        switch.handshake()

        def installed():
            got = [flow_mod_to_dict(r.message) for r in switch.of_type(14)]  # OFPT_FLOW_MOD
            return all(flow in got for flow in wanted)

        return wait_until(installed, 15)


def test_kytos_napps_install_list_disable_enable_uninstall(controller):
    repo = napp_repository.default_repository_dir(controller.base_dir)
    assert (repo / "xmpp_ofc" / "rate_limiter-0.1.0.napp").is_file()
    assert napp_sets(controller) == (set(), set())

    done = kytos(controller, "napps", "install", "xmpp_ofc/rate_limiter")
    assert done.returncode == 0, done.stderr
    assert "Error" not in done.stderr, done.stderr
    installed, enabled = napp_sets(controller)
    assert installed == enabled == RATE_LIMITER_DEPENDENCIES  # not l2_switch: not a dependency
    napps = controller.base_dir / "var" / "lib" / "kytos" / "napps"
    unpacked = napps / ".installed" / "xmpp_ofc" / "rate_limiter"
    assert unpacked.is_dir() and not unpacked.is_symlink()  # Kytos unpacked the .napp
    assert (unpacked / ".repo").read_text().strip() == napp_repository.repository_url(repo)
    # Generous: on a loaded CI box Kytos' loading of four NApps has taken over 20 s.
    four_running = wait_until(lambda: controller.log_text().count("Running NApp:") >= 4, 60)
    assert four_running, controller.log_text()[-4000:]
    assert controller.get("xmpp_ofc/rate_limiter/v1/settings")[0] == 200
    assert capture_flows_installed(controller)

    # kytos-utils' own listing, on a terminal as it expects, and ours through a pipe.
    for listing in (
        kytos(controller, "napps", "list", token=False, tty=True),
        kytos(controller, "napps", "list"),
    ):
        assert listing.returncode == 0, listing.stderr
        assert "[ie]" in listing.stdout and "xmpp_ofc/rate_limiter:0.1.0" in listing.stdout
        assert "l2_switch" not in listing.stdout

    # Without the token Kytos' enable/disable are refused: nothing changes.
    kytos(controller, "napps", "disable", "xmpp_ofc/rate_limiter", token=False)
    assert ("xmpp_ofc", "rate_limiter") in napp_sets(controller)[1]
    assert "refused GET /api/kytos/core/napps/xmpp_ofc/rate_limiter/disable" in (
        controller.log_text()
    )

    done = kytos(controller, "napps", "disable", "xmpp_ofc/rate_limiter")
    assert done.returncode == 0, done.stderr
    assert ("xmpp_ofc", "rate_limiter") not in napp_sets(controller)[1]
    assert wait_until(lambda: controller.get("xmpp_ofc/rate_limiter/v1/settings")[0] == 404, 10)
    listing = kytos(controller, "napps", "list")
    assert "[i-]" in listing.stdout

    done = kytos(controller, "napps", "enable", "xmpp_ofc/rate_limiter")
    assert done.returncode == 0, done.stderr
    assert ("xmpp_ofc", "rate_limiter") in napp_sets(controller)[1]
    assert wait_until(lambda: controller.get("xmpp_ofc/rate_limiter/v1/settings")[0] == 200, 10)

    done = kytos(controller, "napps", "uninstall", "xmpp_ofc/rate_limiter")
    assert done.returncode == 0, done.stderr
    installed, enabled = napp_sets(controller)
    assert installed == enabled == RATE_LIMITER_DEPENDENCIES - {("xmpp_ofc", "rate_limiter")}
    assert not unpacked.exists()

    # A second NApp whose dependencies are already there.
    done = kytos(controller, "napps", "install", "xmpp_ofc/l2_switch")
    assert done.returncode == 0, done.stderr
    assert ("xmpp_ofc", "l2_switch") in napp_sets(controller)[1]
    assert "Traceback" not in controller.log_text()


def test_installed_napps_survive_a_restart_with_napps_from_repository(tmp_path):
    """The launcher leaves a base dir that ``kytos napps`` manages alone across restarts."""
    with running_controller(tmp_path, **FROM_REPOSITORY) as process:
        done = kytos(process, "napps", "install", "xmpp_ofc/l2_switch")
        assert done.returncode == 0, done.stderr
        first_log = process.log_text()
    with running_controller(tmp_path, **FROM_REPOSITORY) as restarted:
        assert wait_until(
            lambda: restarted.log_text()[len(first_log) :].count("Running NApp:") >= 4, 60
        )
        installed, enabled = napp_sets(restarted)
    assert (
        installed
        == enabled
        == {
            ("kytos", "of_core"),
            ("kytos", "flow_manager"),
            ("xmpp_ofc", "dispatcher"),
            ("xmpp_ofc", "l2_switch"),
        }
    )


class _NAppsServerStub(http.server.BaseHTTPRequestHandler):
    """Records what ``kytos napps upload`` POSTs; the NApps server's answer is all it fakes."""

    uploads: list[tuple[dict[str, list[str]], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body
        )
        fields: dict[str, list[str]] = {}
        package = b""
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "file":
                package = part.get_payload(decode=True)
            else:
                fields.setdefault(name, []).append(part.get_content().strip())
        self.uploads.append((fields, package))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("napp_id", ["xmpp_ofc/rate_limiter", "kytos/of_core"])
def test_kytos_napps_upload_sends_the_package_our_repository_serves(napp_id, tmp_path):
    """``kytos napps upload`` in a NApp directory: it packs and POSTs the same files."""
    napp = next(n for n in napp_layout.bundled_napps() if n.napp_id == napp_id)
    copy = tmp_path / napp.username / napp.name
    shutil.copytree(napp.source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NAppsServerStub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _NAppsServerStub.uploads = []
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "VIRTUAL_ENV": str(tmp_path / "venv"),
        "NAPPS_API_URI": f"http://127.0.0.1:{server.server_port}/api/",
        "NAPPS_USER": napp.username,
        "NAPPS_TOKEN": "token-from-the-napps-server",
    }
    try:
        done = subprocess.run(
            [str(BIN / "kytos"), "napps", "upload"],
            cwd=copy,
            input="n\n",  # no new openapi.yml skeleton
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    assert f"SUCCESS: NApp {napp_id} uploaded." in done.stdout
    [(fields, package)] = _NAppsServerStub.uploads
    assert (fields["username"], fields["name"], fields["version"]) == (
        [napp.username],
        [napp.name],
        [napp.version],
    )
    assert fields["token"] == ["token-from-the-napps-server"]
    with tarfile.open(fileobj=io.BytesIO(package), mode="r:xz") as tar:
        uploaded = sorted(tar.getnames())
    assert uploaded == napp_repository.package_members(napp.source)
    assert not list(copy.glob("*.napp"))  # kytos-utils removes its temporary package
