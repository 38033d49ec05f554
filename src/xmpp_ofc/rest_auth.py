"""Only the operator gets in: a bearer token for REST writes, and no cross-origin access.

Kytos 2021.1 answers every REST call from anyone and enables CORS for every
origin, so any web page the operator opens could switch the protection off
through the operator's browser.  :func:`install` wraps Kytos' ``APIServer`` so
that, in every controller the process builds:

* one Flask ``before_request`` hook (:func:`guard`) asks for
  ``Authorization: Bearer <token>`` on every state-changing call: POST, PUT,
  PATCH and DELETE anywhere, and Kytos core's NApp
  enable/disable/install/uninstall and ``_shutdown``, which are GETs in 2021.1
  (a plain ``<img src>`` on any page could otherwise call them).  Without it
  the answer is 401 with a JSON message saying how to get the token, and the
  endpoint never runs.  Reads stay open unless ``token_for_reads`` is set;
  the dashboard's static files and ``/api/kytos/core/status`` stay open always
  (they hold no data, and a browser cannot add a header to a page load).
* Kytos' allow-all ``CORS(app)`` becomes an allow-list (default empty: no
  ``Access-Control-Allow-Origin`` at all, so only same-origin pages can read
  answers or send non-simple requests).
* listening beyond loopback logs a loud warning: the token then crosses the
  network in clear text unless a TLS proxy is put in front (docs/tls-proxy.md).

The token is a file ``<base dir>/etc/kytos/xmpp_ofc.token`` (mode 0600) made
at first start and kept across restarts; :func:`rotate_token` replaces it and
the running controller uses the new one at the next request (the file is
re-read when it changes), so the old token stops working at once.  Kytos' own
``kytos.core.auth`` is not used: it keeps its users in the ``kytos/storehouse``
NApp, which is on no registry and not part of this bundle.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xmpp_ofc.settings_env import env_setting

LOG = logging.getLogger("xmpp_ofc.rest_auth")

#: The token file, relative to Kytos' base directory.
TOKEN_RELATIVE_PATH = Path("etc") / "kytos" / "xmpp_ofc.token"
ENV_PREFIX = "XMPP_OFC_API_"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Kytos core GETs that change state.
CORE_WRITE_PATHS = re.compile(
    r"^/api/kytos/core/(?:napps/[^/]+/[^/]+/(?:enable|disable|install|uninstall)"
    r"|_shutdown|web/update(?:/[^/]*)?)/?$"
)
#: Reads that stay open even with ``token_for_reads``: no data, and page loads carry no header.
ALWAYS_OPEN_PATHS = re.compile(
    r"^/api/(?:xmpp_ofc/dispatcher/v1/dashboard/.*|kytos/core/status/?)$"
)
_APPLIED_FLAG = "_xmpp_ofc_rest_auth"
_TOKEN_BYTES = 32


def how_to_get_token(base_dir_hint: str = "<base dir>") -> str:
    """The sentence every 401 carries."""
    return (
        "this call needs the controller's API token: send the header "
        "'Authorization: Bearer <token>'. Print it on the controller host with "
        f"'xmpp-ofc-controller --print-token' (add '--base-dir DIR' if you started it with one), "
        f"or read {base_dir_hint}/{TOKEN_RELATIVE_PATH}."
    )


# --- the token file ----------------------------------------------------------------------------


def token_path(base_dir: Path | str) -> Path:
    """Where the token of the controller with Kytos base directory ``base_dir`` lives."""
    return Path(base_dir) / TOKEN_RELATIVE_PATH


def new_token() -> str:
    return secrets.token_urlsafe(_TOKEN_BYTES)


def _write_private(path: Path, token: str) -> None:
    """Write ``token`` to a fresh file beside ``path`` (mode 0600 from birth), then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(token + "\n")
        os.chmod(temporary, 0o600)  # whatever the umask did
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_token(path: Path) -> str | None:
    """The token in ``path``, or None when the file is missing or empty."""
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        return None
    return token or None


def ensure_token(path: Path) -> str:
    """Return the token in ``path``, making one first if there is none; keep the file 0600."""
    token = read_token(path)
    if token is None:
        token = new_token()
        _write_private(path, token)
        LOG.info("API token created in %s (mode 0600)", path)
        return token
    mode = path.stat().st_mode & 0o777
    if mode != 0o600:
        os.chmod(path, 0o600)
        LOG.warning("API token file %s had mode %o; set it to 0600", path, mode)
    return token


def rotate_token(path: Path) -> str:
    """Replace the token; a running controller refuses the old one from its next request on."""
    token = new_token()
    _write_private(path, token)
    LOG.info("API token in %s rotated", path)
    return token


class TokenFile:
    """The current token, re-read only when the file changes (rotation needs no restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._token: str | None = None

    def current(self) -> str | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None  # fail closed: no file, no writes
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._token, self._stamp = read_token(self.path), stamp
            return self._token


# --- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthSettings:
    """What :func:`install` enforces; from the launcher's flags or ``XMPP_OFC_API_*``."""

    base_dir: Path
    #: Also require the token for GET/HEAD under /api/ (the dashboard page itself stays open).
    token_for_reads: bool = False
    #: Origins (``scheme://host[:port]``) whose pages may call the API cross-origin.
    cors_origins: tuple[str, ...] = field(default_factory=tuple)

    @property
    def token_path(self) -> Path:
        return token_path(self.base_dir)

    @classmethod
    def from_env(cls, base_dir: Path, environ: Mapping[str, str] | None = None) -> AuthSettings:
        """``XMPP_OFC_API_TOKEN_FOR_READS`` (bool) and ``XMPP_OFC_API_CORS_ORIGINS`` (a,b)."""
        reads = env_setting(ENV_PREFIX, "TOKEN_FOR_READS", False, environ)
        origins = env_setting(ENV_PREFIX, "CORS_ORIGINS", "", environ)
        return cls(
            base_dir=Path(base_dir),
            token_for_reads=reads,
            cors_origins=parse_origins(origins.split(",")),
        )

    def to_env(self) -> dict[str, str]:
        return {
            f"{ENV_PREFIX}TOKEN_FOR_READS": "1" if self.token_for_reads else "0",
            f"{ENV_PREFIX}CORS_ORIGINS": ",".join(self.cors_origins),
        }


_ORIGIN = re.compile(r"^https?://[^/\s]+$")


def parse_origins(values: list[str]) -> tuple[str, ...]:
    """Validate allow-list entries: ``http(s)://host[:port]``, no path, no wildcard."""
    origins = []
    for value in values:
        origin = value.strip().rstrip("/")
        if not origin:
            continue
        if not _ORIGIN.match(origin) or "*" in origin:
            raise ValueError(
                f"CORS origin {value!r}: expected scheme://host[:port], e.g. http://127.0.0.1:8080"
            )
        origins.append(origin)
    return tuple(dict.fromkeys(origins))


# --- the request hook ----------------------------------------------------------------------------


def needs_token(method: str, path: str, *, token_for_reads: bool) -> bool:
    """Whether a request must carry the token.  Preflights (OPTIONS) never carry one."""
    method = method.upper()
    if method == "OPTIONS":
        return False
    if method in WRITE_METHODS or CORE_WRITE_PATHS.match(path):
        return True
    return token_for_reads and path.startswith("/api/") and not ALWAYS_OPEN_PATHS.match(path)


def bearer_matches(header: str | None, expected: str | None) -> bool:
    """Constant-time check of ``Authorization: Bearer <token>``; no token file means no."""
    if not header or not expected:
        return False
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


def guard(settings: AuthSettings, tokens: TokenFile | None = None) -> Callable[[], Any]:
    """The ``before_request`` hook: None lets the request through, else a 401 answer."""
    tokens = tokens or TokenFile(settings.token_path)
    message = how_to_get_token()

    def require_token():
        from flask import jsonify, request

        # The matched rule too: whatever spelling of the path routed here, the endpoint decides.
        rule = request.url_rule.rule if request.url_rule is not None else request.path
        if not any(
            needs_token(request.method, path, token_for_reads=settings.token_for_reads)
            for path in (request.path, rule)
        ):
            return None
        if bearer_matches(request.headers.get("Authorization"), tokens.current()):
            return None
        LOG.warning(
            "refused %s %s from %s: no valid API token", request.method, request.path,
            request.remote_addr,
        )  # fmt: skip
        response = jsonify({"code": 401, "name": "Unauthorized", "description": message})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="xmpp_ofc"'
        return response

    return require_token


def apply_cors(app: Any, origins: tuple[str, ...]) -> None:
    """CORS for the allow-listed origins only; none at all when the list is empty."""
    if not origins:
        return
    from flask_cors import CORS

    CORS(app, origins=list(origins), supports_credentials=False)


def is_loopback(listen: str) -> bool:
    if listen in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(listen.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_exposed(listen: str, port: int) -> bool:
    """Log loudly when REST listens beyond loopback (no TLS in Kytos 2021.1); True if it does."""
    if is_loopback(listen):
        return False
    LOG.warning(
        "!!! REST API on %s:%s listens beyond loopback WITHOUT TLS: the API token and every "
        "answer cross the network in clear text, and anyone who sees the token can switch "
        "the protection off. Listen on 127.0.0.1 and put a TLS reverse proxy in front "
        "(docs/tls-proxy.md). OpenFlow on the same address is unencrypted too. !!!",
        listen,
        port,
    )
    return True


# --- wiring into Kytos ---------------------------------------------------------------------------


def install(settings: AuthSettings) -> None:
    """Make every ``APIServer`` built from now on enforce ``settings``; idempotent.

    The token file is made here (before Kytos starts) so the operator can
    print it as soon as the launcher has said where REST listens.
    """
    from kytos.core import api_server

    ensure_token(settings.token_path)
    server_class = api_server.APIServer
    original_init = getattr(server_class, "_xmpp_ofc_original_init", server_class.__init__)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        saved_cors = api_server.CORS
        api_server.CORS = lambda app: apply_cors(app, settings.cors_origins)
        try:
            original_init(self, *args, **kwargs)
        finally:
            api_server.CORS = saved_cors
        self.app.before_request(guard(settings))
        # Socket.IO checks origins itself (same-origin by default): add the allow-list.
        if settings.cors_origins:
            self.server.server.eio.cors_allowed_origins = list(settings.cors_origins)
        warn_if_exposed(self.listen, self.port)

    def stop_api_server(self) -> None:
        """Kytos' own shutdown call, with the token (``_shutdown`` is guarded)."""
        import urllib.error
        import urllib.request

        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/kytos/core/_shutdown")
        token = read_token(settings.token_path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with contextlib.suppress(urllib.error.URLError, OSError):
            urllib.request.urlopen(request, timeout=5).close()

    if not hasattr(server_class, "_xmpp_ofc_original_init"):
        server_class._xmpp_ofc_original_init = original_init
        server_class._xmpp_ofc_original_stop = server_class.stop_api_server
    server_class.__init__ = __init__
    server_class.stop_api_server = stop_api_server
    setattr(server_class, _APPLIED_FLAG, settings)


def uninstall() -> None:
    """Undo :func:`install` (tests that build controllers in-process)."""
    from kytos.core.api_server import APIServer

    if not hasattr(APIServer, "_xmpp_ofc_original_init"):
        return
    APIServer.__init__ = APIServer._xmpp_ofc_original_init
    APIServer.stop_api_server = APIServer._xmpp_ofc_original_stop
    for name in ("_xmpp_ofc_original_init", "_xmpp_ofc_original_stop", _APPLIED_FLAG):
        delattr(APIServer, name)
