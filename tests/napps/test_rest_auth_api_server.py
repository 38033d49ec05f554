"""``rest_auth.install`` on Kytos' real ``APIServer`` (in-process, nothing listens).

The first test shows what Kytos 2021.1 does on its own (allow-all CORS, open
writes), so the others are known to test a change.
"""

from __future__ import annotations

import logging

import pytest

from xmpp_ofc import rest_auth

EVIL = {"Origin": "http://evil.example", "Access-Control-Request-Method": "PATCH"}
CORE_DISABLE = "/api/kytos/core/napps/xmpp_ofc/rate_limiter/disable"


def build_server(listen: str = "127.0.0.1"):
    from kytos.core.api_server import APIServer

    server = APIServer("test", listen=listen, port=18181)
    server.app.add_url_rule("/api/x/y/v1/thing", "thing", lambda: "changed", methods=["PATCH"])
    server.app.add_url_rule(CORE_DISABLE, "disable", lambda: "disabled")
    return server


@pytest.fixture
def installed(tmp_path):
    settings = rest_auth.AuthSettings(base_dir=tmp_path, cors_origins=("http://ui.example:8181",))
    rest_auth.install(settings)
    yield settings
    rest_auth.uninstall()


def test_plain_kytos_grants_every_origin_and_every_write():
    client = build_server().app.test_client()
    assert client.options("/api/x/y/v1/thing", headers=EVIL).headers[
        "Access-Control-Allow-Origin"
    ] in ("*", "http://evil.example")
    assert client.patch("/api/x/y/v1/thing").status_code == 200


def test_installed_server_refuses_writes_and_foreign_origins(installed):
    client = build_server().app.test_client()
    preflight = client.options("/api/x/y/v1/thing", headers=EVIL)
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert client.patch("/api/x/y/v1/thing").status_code == 401
    assert client.get(CORE_DISABLE).status_code == 401
    token = rest_auth.read_token(installed.token_path)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.patch("/api/x/y/v1/thing", headers=auth).data == b"changed"
    assert client.get(CORE_DISABLE, headers=auth).data == b"disabled"


@pytest.mark.parametrize(
    "path",
    [
        "/api/kytos/core//napps/xmpp_ofc/rate_limiter/disable",
        "/api/kytos/core/napps/xmpp_ofc/rate_limiter//disable",
        "/api/kytos/core/napps/xmpp_ofc/rate_limiter/disable/",
        "/api/kytos/core/napps/xmpp_ofc/rate_limiter/%64isable",
        "/api//kytos/core/napps/xmpp_ofc/rate_limiter/disable",
    ],
)
def test_no_spelling_of_a_guarded_path_gets_through(installed, path):
    client = build_server().app.test_client()
    reply = client.get(path)
    assert reply.status_code in (401, 404, 308), (path, reply.status_code)
    assert reply.data != b"disabled"


def test_an_allow_listed_origin_gets_cors(installed):
    client = build_server().app.test_client()
    headers = {**EVIL, "Origin": "http://ui.example:8181"}
    reply = client.options("/api/x/y/v1/thing", headers=headers)
    assert reply.headers["Access-Control-Allow-Origin"] == "http://ui.example:8181"


def test_socketio_gets_the_allow_list(installed):
    server = build_server()
    assert server.server.server.eio.cors_allowed_origins == ["http://ui.example:8181"]


def test_the_token_file_is_made_at_install(installed):
    assert rest_auth.read_token(installed.token_path)


def test_a_server_beyond_loopback_warns(installed, caplog):
    with caplog.at_level(logging.WARNING, logger="xmpp_ofc.rest_auth"):
        build_server("127.0.0.1")
        assert "WITHOUT TLS" not in caplog.text
        build_server("0.0.0.0")
    assert "0.0.0.0:18181 listens beyond loopback WITHOUT TLS" in caplog.text


def test_uninstall_restores_kytos(installed):
    rest_auth.uninstall()
    assert build_server().app.test_client().patch("/api/x/y/v1/thing").status_code == 200
    rest_auth.install(installed)  # the fixture uninstalls again
