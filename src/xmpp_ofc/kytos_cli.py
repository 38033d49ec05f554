"""``xmpp-ofc-kytos``: kytos-utils' own ``kytos`` command, with the controller's API token.

kytos-utils 2021.1 calls Kytos core's NApp endpoints
(``/api/kytos/core/napps/<user>/<napp>/install|enable|disable|uninstall``)
with a bare ``urllib.request.urlopen(url)`` and has no setting for a header,
while here those calls need ``Authorization: Bearer <token>``
(:mod:`xmpp_ofc.rest_auth`).  So the one thing this adds is a urllib opener
that sends the token, to the Kytos API that kytos-utils is configured for
(``KYTOS_API`` or ``[kytos] api`` in ``~/.kytosrc``) and to no other host
(not to the NApps server).  Then it runs the installed ``kytos`` script
itself, unchanged: same arguments, same output, same exit status.

Why a wrapper and not something else: kytos-utils reads no token, so the
alternatives were weakening the guard for its requests (any web page could
then install NApps through the operator's browser), putting the token in the
URL (kytos-utils' only knob; it would end up in shell history and logs), or
editing site-packages.  Plain ``kytos napps list`` needs no token (reads are
open unless ``--token-for-reads``) and works as it is.

The token: ``XMPP_OFC_API_TOKEN``, else the file ``XMPP_OFC_API_TOKEN_FILE``,
else ``<Kytos base dir>/etc/kytos/xmpp_ofc.token`` (base dir ``$VIRTUAL_ENV``,
else this interpreter's prefix: the one ``make run`` uses).
"""

from __future__ import annotations

import os
import runpy
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from xmpp_ofc import rest_auth
from xmpp_ofc.napp_layout import kytos_base_dir

TOKEN_ENV = "XMPP_OFC_API_TOKEN"
TOKEN_FILE_ENV = "XMPP_OFC_API_TOKEN_FILE"


def find_token(environ: dict[str, str] | None = None) -> tuple[str | None, Path | None]:
    """The token and the file it came from (None when it came from the environment)."""
    environ = os.environ if environ is None else environ
    if environ.get(TOKEN_ENV):
        return environ[TOKEN_ENV].strip(), None
    path = Path(environ.get(TOKEN_FILE_ENV) or rest_auth.token_path(kytos_base_dir()))
    return rest_auth.read_token(path), path


def origin(url: str) -> tuple[str, str]:
    """``(scheme, host:port)`` with the default port spelled out, to compare URLs."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
    return parts.scheme, f"{(parts.hostname or '').lower()}:{port}"


class BearerToKytosAPI(urllib.request.BaseHandler):
    """Add ``Authorization: Bearer`` to requests for one origin only."""

    def __init__(self, api_url: str, token: str) -> None:
        self.api_origin = origin(api_url)
        self.token = token

    def _add(self, request: urllib.request.Request) -> urllib.request.Request:
        if origin(request.full_url) == self.api_origin:
            request.add_unredirected_header("Authorization", f"Bearer {self.token}")
        return request

    http_request = _add
    https_request = _add


def kytos_api_url() -> str:
    """The Kytos API kytos-utils will call (its own config: env ``KYTOS_API``, ~/.kytosrc)."""
    from kytos.utils.config import KytosConfig

    return KytosConfig().config.get("kytos", "api")


def kytos_script() -> Path:
    """kytos-utils' ``kytos`` script beside this interpreter."""
    script = Path(sys.executable).with_name("kytos")
    if not script.is_file():
        raise SystemExit(
            f"xmpp-ofc-kytos: {script} not found; install kytos-utils (make venv does: "
            "requirements/kytos-utils.txt)"
        )
    return script


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # kytos-utils copies its NApp skeleton to $VIRTUAL_ENV/etc/kytos, else to /etc/kytos.
    os.environ.setdefault("VIRTUAL_ENV", str(kytos_base_dir()))
    from xmpp_ofc import kytos_py311

    kytos_py311.apply_kytos_utils()
    token, path = find_token()
    if token:
        handler = BearerToKytosAPI(kytos_api_url(), token)
        urllib.request.install_opener(urllib.request.build_opener(handler))
    else:
        print(
            f"xmpp-ofc-kytos: no API token ({TOKEN_ENV} unset, {path} missing): "
            "NApp install/enable/disable/uninstall will be refused (401)",
            file=sys.stderr,
        )
    sys.argv = ["kytos", *argv]
    try:
        runpy.run_path(str(kytos_script()), run_name="__main__")
    except SystemExit as stop:
        code = stop.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
