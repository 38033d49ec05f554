"""The REST credential and CORS policy (``xmpp_ofc.rest_auth``) on a plain Flask app, no Kytos."""

from __future__ import annotations

import logging
import os
import stat

import pytest
from flask import Flask, jsonify

from xmpp_ofc import launcher, rest_auth

WRITE = ("POST", "PUT", "PATCH", "DELETE")


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --- the token file ---------------------------------------------------------------------------


def test_token_is_made_once_with_mode_0600_whatever_the_umask(tmp_path):
    path = rest_auth.token_path(tmp_path)
    old = os.umask(0)
    try:
        token = rest_auth.ensure_token(path)
    finally:
        os.umask(old)
    assert path == tmp_path / "etc" / "kytos" / "xmpp_ofc.token"
    assert mode_of(path) == 0o600
    assert len(token) >= 40
    assert rest_auth.ensure_token(path) == token  # kept across restarts
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_a_token_file_left_readable_is_put_back_to_0600(tmp_path, caplog):
    path = rest_auth.token_path(tmp_path)
    token = rest_auth.ensure_token(path)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="xmpp_ofc.rest_auth"):
        assert rest_auth.ensure_token(path) == token
    assert mode_of(path) == 0o600
    assert "had mode 644" in caplog.text


def test_an_empty_token_file_gets_a_token(tmp_path):
    path = rest_auth.token_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("\n")
    assert rest_auth.ensure_token(path)
    assert mode_of(path) == 0o600


def test_rotate_replaces_the_token_and_token_file_follows_at_once(tmp_path):
    path = rest_auth.token_path(tmp_path)
    old = rest_auth.ensure_token(path)
    tokens = rest_auth.TokenFile(path)
    assert tokens.current() == old
    new = rest_auth.rotate_token(path)
    assert new != old
    assert tokens.current() == new
    assert mode_of(path) == 0o600


def test_no_token_file_means_no_token(tmp_path):
    assert rest_auth.TokenFile(tmp_path / "missing").current() is None


# --- which requests need it -------------------------------------------------------------------


@pytest.mark.parametrize("method", WRITE)
def test_every_write_method_needs_the_token(method):
    assert rest_auth.needs_token(method, "/api/xmpp_ofc/x/v1/y", token_for_reads=False)
    assert rest_auth.needs_token(method.lower(), "/anything", token_for_reads=False)


@pytest.mark.parametrize(
    "path",
    [
        "/api/kytos/core/napps/xmpp_ofc/rate_limiter/disable",
        "/api/kytos/core/napps/xmpp_ofc/rate_limiter/enable/",
        "/api/kytos/core/napps/kytos/of_core/install",
        "/api/kytos/core/napps/kytos/of_core/uninstall",
        "/api/kytos/core/_shutdown",
        "/api/kytos/core/web/update/1.2",
    ],
)
def test_kytos_core_state_changing_gets_need_the_token(path):
    assert rest_auth.needs_token("GET", path, token_for_reads=False)


@pytest.mark.parametrize(
    "path",
    [
        "/api/xmpp_ofc/rate_limiter/v1/settings",
        "/api/kytos/core/napps_enabled",
        "/api/kytos/core/napps/xmpp_ofc/rate_limiter/metadata/version",
    ],
)
def test_reads_are_open_unless_configured(path):
    assert not rest_auth.needs_token("GET", path, token_for_reads=False)
    assert rest_auth.needs_token("GET", path, token_for_reads=True)
    assert rest_auth.needs_token("HEAD", path, token_for_reads=True)


@pytest.mark.parametrize(
    "path",
    [
        "/api/xmpp_ofc/dispatcher/v1/dashboard/",
        "/api/xmpp_ofc/dispatcher/v1/dashboard/dashboard.js",
        "/api/kytos/core/status/",
        "/ui/k-toolbar",
    ],
)
def test_the_dashboard_files_and_status_stay_open_even_for_reads(path):
    assert not rest_auth.needs_token("GET", path, token_for_reads=True)


def test_a_preflight_never_needs_the_token():
    assert not rest_auth.needs_token("OPTIONS", "/api/x", token_for_reads=True)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer s3cret", True),
        ("bearer s3cret", True),
        ("Bearer  s3cret ", True),
        ("Bearer s3cre", False),
        ("Bearer s3cretX", False),
        ("Basic s3cret", False),
        ("s3cret", False),
        ("", False),
        (None, False),
    ],
)
def test_bearer_header(header, ok):
    assert rest_auth.bearer_matches(header, "s3cret") is ok


def test_no_expected_token_refuses_everything():
    assert not rest_auth.bearer_matches("Bearer ", None)
    assert not rest_auth.bearer_matches("Bearer x", "")


def test_the_compare_is_constant_time(monkeypatch):
    calls = []
    real = rest_auth.hmac.compare_digest
    monkeypatch.setattr(
        rest_auth.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b)
    )
    assert rest_auth.bearer_matches("Bearer abc", "abc")
    assert calls == [(b"abc", b"abc")]


# --- the hook and CORS on a Flask app ---------------------------------------------------------


@pytest.fixture
def app_and_state(tmp_path):
    state = {"mode": "block"}
    app = Flask("t")

    @app.route("/api/xmpp_ofc/rate_limiter/v1/settings", methods=["GET", "PATCH"])
    def settings():
        from flask import request

        if request.method == "PATCH":
            state.update(request.get_json())
        return jsonify(state)

    settings_ = rest_auth.AuthSettings(base_dir=tmp_path)
    rest_auth.ensure_token(settings_.token_path)
    app.before_request(rest_auth.guard(settings_))
    return app, state, settings_


def test_unauthenticated_write_is_401_with_how_to_and_changes_nothing(app_and_state):
    app, state, _ = app_and_state
    reply = app.test_client().patch(
        "/api/xmpp_ofc/rate_limiter/v1/settings", json={"mode": "monitor"}
    )
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert "--print-token" in reply.get_json()["description"]
    assert state == {"mode": "block"}


def test_authenticated_write_goes_through(app_and_state):
    app, state, settings = app_and_state
    token = rest_auth.read_token(settings.token_path)
    reply = app.test_client().patch(
        "/api/xmpp_ofc/rate_limiter/v1/settings",
        json={"mode": "monitor"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status_code == 200
    assert state == {"mode": "monitor"}


def test_after_rotation_the_old_token_is_refused(app_and_state):
    app, state, settings = app_and_state
    old = rest_auth.read_token(settings.token_path)
    new = rest_auth.rotate_token(settings.token_path)
    client = app.test_client()
    path = "/api/xmpp_ofc/rate_limiter/v1/settings"
    bad = client.patch(path, json={"mode": "x"}, headers={"Authorization": f"Bearer {old}"})
    assert bad.status_code == 401
    good = client.patch(path, json={"mode": "y"}, headers={"Authorization": f"Bearer {new}"})
    assert good.status_code == 200
    assert state == {"mode": "y"}


def test_allow_list_cors_answers_only_listed_origins():
    app = Flask("t")
    app.add_url_rule("/api/x", "x", lambda: "ok", methods=["GET", "PATCH"])
    rest_auth.apply_cors(app, ("http://ui.example:8080",))
    client = app.test_client()
    preflight = {"Access-Control-Request-Method": "PATCH"}
    evil = client.options("/api/x", headers={"Origin": "http://evil.example", **preflight})
    assert "Access-Control-Allow-Origin" not in evil.headers
    good = client.options("/api/x", headers={"Origin": "http://ui.example:8080", **preflight})
    assert good.headers["Access-Control-Allow-Origin"] == "http://ui.example:8080"


def test_empty_allow_list_adds_no_cors_at_all():
    app = Flask("t")
    app.add_url_rule("/api/x", "x", lambda: "ok")
    rest_auth.apply_cors(app, ())
    reply = app.test_client().get("/api/x", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in reply.headers


# --- settings, origins, listen address ------------------------------------------------------


def test_origins_are_validated():
    assert rest_auth.parse_origins([" http://a.example:8080/ ", "", "https://b"]) == (
        "http://a.example:8080",
        "https://b",
    )
    for bad in ("*", "http://*.example", "a.example", "http://a.example/path", "ftp://a"):
        with pytest.raises(ValueError, match="scheme://host"):
            rest_auth.parse_origins([bad])


def test_settings_from_env(tmp_path):
    env = {"XMPP_OFC_API_TOKEN_FOR_READS": "yes", "XMPP_OFC_API_CORS_ORIGINS": "http://a,http://b"}
    settings = rest_auth.AuthSettings.from_env(tmp_path, env)
    assert settings.token_for_reads is True
    assert settings.cors_origins == ("http://a", "http://b")
    assert rest_auth.AuthSettings.from_env(tmp_path, settings.to_env()) == settings
    assert rest_auth.AuthSettings.from_env(tmp_path, {}).cors_origins == ()


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("ctl.example", False),
    ],
)
def test_loopback(listen, loopback):
    assert rest_auth.is_loopback(listen) is loopback


def test_listening_beyond_loopback_warns_loudly(caplog):
    with caplog.at_level(logging.WARNING, logger="xmpp_ofc.rest_auth"):
        assert not rest_auth.warn_if_exposed("127.0.0.1", 8181)
        assert not caplog.records
        assert rest_auth.warn_if_exposed("0.0.0.0", 8181)
    assert "WITHOUT TLS" in caplog.text
    assert "docs/tls-proxy.md" in caplog.text


# --- the launcher's token commands ------------------------------------------------------------


def test_print_token_prints_the_same_token_each_time(tmp_path, capsys):
    assert launcher.main(["--base-dir", str(tmp_path), "--print-token"]) == 0
    first = capsys.readouterr().out.strip()
    assert launcher.main(["--base-dir", str(tmp_path), "--print-token"]) == 0
    assert capsys.readouterr().out.strip() == first
    assert rest_auth.read_token(rest_auth.token_path(tmp_path)) == first


def test_rotate_token_prints_a_new_token(tmp_path, capsys):
    old = rest_auth.ensure_token(rest_auth.token_path(tmp_path))
    assert launcher.main(["--base-dir", str(tmp_path), "--rotate-token"]) == 0
    new = capsys.readouterr().out.strip()
    assert new != old
    assert rest_auth.read_token(rest_auth.token_path(tmp_path)) == new


def test_launcher_flags_override_env(tmp_path, monkeypatch):
    monkeypatch.setenv("XMPP_OFC_API_CORS_ORIGINS", "http://from-env")
    args = launcher.parse_args([])
    assert launcher.auth_settings(tmp_path, args).cors_origins == ("http://from-env",)
    assert launcher.auth_settings(tmp_path, args).token_for_reads is False
    args = launcher.parse_args(["--cors-origin", "http://flag", "--token-for-reads"])
    settings = launcher.auth_settings(tmp_path, args)
    assert settings.cors_origins == ("http://flag",)
    assert settings.token_for_reads is True


def test_a_bad_origin_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        launcher.parse_args(["--cors-origin", "*"])
    assert exit_.value.code == 2
    assert "scheme://host" in capsys.readouterr().err
