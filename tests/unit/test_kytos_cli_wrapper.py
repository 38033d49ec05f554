"""``xmpp-ofc-kytos``: the token goes to the Kytos API only; kytos-utils lists without a TTY."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import pytest

from xmpp_ofc import kytos_cli, rest_auth

API = "http://localhost:8181/"


def authorization(handler: kytos_cli.BearerToKytosAPI, url: str) -> str | None:
    request = handler.http_request(urllib.request.Request(url))
    return request.unredirected_hdrs.get("Authorization")


def test_token_sent_to_the_configured_kytos_api():
    handler = kytos_cli.BearerToKytosAPI(API, "s3cret")
    url = "http://localhost:8181/api/kytos/core/napps/xmpp_ofc/rate_limiter/install"
    assert authorization(handler, url) == "Bearer s3cret"
    assert authorization(handler, "http://LOCALHOST:8181/api/x") == "Bearer s3cret"


@pytest.mark.parametrize(
    "url",
    [
        "https://napps.kytos.io/api/napps/",  # the NApps server kytos-utils also talks to
        "http://localhost:8182/api/kytos/core/napps_enabled",
        "http://127.0.0.1:8181/api/kytos/core/napps_enabled",  # another spelling: not trusted
        "https://localhost:8181/api/",
    ],
)
def test_token_never_sent_elsewhere(url):
    assert authorization(kytos_cli.BearerToKytosAPI(API, "s3cret"), url) is None


def test_default_ports_compare_equal():
    assert kytos_cli.origin("http://h/") == kytos_cli.origin("http://h:80/x")


def test_token_from_env_then_file_then_base_dir(tmp_path, monkeypatch):
    path = tmp_path / "token"
    rest_auth.rotate_token(path)
    expected = rest_auth.read_token(path)
    assert kytos_cli.find_token({kytos_cli.TOKEN_ENV: " t0k "}) == ("t0k", None)
    assert kytos_cli.find_token({kytos_cli.TOKEN_FILE_ENV: str(path)}) == (expected, path)
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path / "base"))
    token, where = kytos_cli.find_token({})
    assert (token, where) == (None, rest_auth.token_path(tmp_path / "base"))


PRINT_NAPPS = """
import sys
if sys.argv[1] == "fixed":
    from xmpp_ofc import kytos_py311
    kytos_py311.apply_kytos_utils()
from kytos.cli.commands.napps.api import NAppsAPI
NAppsAPI.print_napps([("[ie]", "xmpp_ofc/rate_limiter:0.1.0", "XMPP client monitor")])
"""


@pytest.mark.parametrize("fixed", [True, False])
def test_kytos_utils_lists_napps_without_a_terminal(fixed, tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "VIRTUAL_ENV": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", PRINT_NAPPS, "fixed" if fixed else "plain"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    if fixed:
        assert done.returncode == 0, done.stderr
        assert " [ie]  | xmpp_ofc/rate_limiter:0.1.0 | XMPP client monitor" in done.stdout
    else:  # what the fix is for: kytos-utils 2021.1 reads `stty size` and dies
        assert done.returncode != 0 and "IndexError" in done.stderr
