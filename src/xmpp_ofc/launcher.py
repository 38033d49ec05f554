"""``make run``: start kytosd in the foreground with the bundle's defaults.

What it does, in order:

1. picks Kytos' base directory (``--base-dir``, else the virtualenv) so Kytos
   never writes to ``/etc`` or ``/var``;
2. writes ``<base>/etc/kytos/xmpp_ofc.conf`` and ``xmpp_ofc.logging.ini``
   (OpenFlow and REST on 127.0.0.1, protocol name ``openflow``, entities
   enabled, NApps downloaded only from the local repository, logs on stderr,
   no daemon, no shell);
3. builds the five NApps' ``.napp`` packages into a local NApps repository
   (``<base>/var/lib/kytos/napps-repository``, :mod:`xmpp_ofc.napp_repository`)
   that kytos.conf's ``napps_repositories`` names, so ``kytos napps install``
   works through Kytos' own install path; then, unless
   ``--napps-from-repository``, links and enables the five NApps from the
   checkout in Kytos' ``.installed`` layout;
4. applies the Python 3.11 fixes (:mod:`xmpp_ofc.kytos_py311`);
5. makes REST writes need the API token and drops Kytos' allow-all CORS
   (:mod:`xmpp_ofc.rest_auth`; the token is made at first start);
6. runs kytosd's own ``async_main`` on a loop where SIGINT/SIGTERM always
   reach kytosd's stop, which is forced after a few seconds (fix 16).

``--print-token`` and ``--rotate-token`` print (or replace, then print) the
token of the controller with that ``--base-dir`` and exit.

``xmpp-ofc-kytosd`` is plain ``kytosd`` with only steps 4 and 5 (settings from
``XMPP_OFC_API_*``), for users who keep their own ``kytos.conf``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path

from xmpp_ofc import rest_auth

LOGGING_INI = """\
[formatters]
keys: console

[handlers]
keys: console

[loggers]
keys: root,kytos,api_server,werkzeug,engineio,socketio

[formatter_console]
format: %(asctime)s %(levelname)-7s [%(name)s] %(message)s

[handler_console]
class: StreamHandler
args: (sys.stderr,)
formatter: console

[logger_root]
level: {level}
handlers: console

[logger_kytos]
level: {level}
qualname: kytos
handlers: console
propagate: 0

# Kytos' --debug sets this section's level and fails without it (NoSectionError).
[logger_api_server]
level: {level}
qualname: kytos.core.api_server
handlers:

[logger_werkzeug]
level: WARNING
qualname: werkzeug
handlers:

[logger_engineio]
level: ERROR
qualname: engineio
handlers:

[logger_socketio]
level: ERROR
qualname: socketio
handlers:
"""

CONF = """\
# Written by xmpp-ofc-controller at every start; edit the flags, not this file.
[daemon]
workdir = {base}/var/lib/kytos
pidfile = {base}/var/run/kytos/kytosd.pid
daemon = False
debug = {debug}
logging = {base}/etc/kytos/xmpp_ofc.logging.ini
listen = {listen}
port = {of_port}
protocol_name = openflow
api_port = {api_port}
enable_entities_by_default = True
napps = {base}/var/lib/kytos/napps
napps_repositories = {repositories}
napps_pre_installed = []
vlan_pool = {{}}
jwt_secret = {jwt_secret}
token_expiration_minutes = 180
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="xmpp-ofc-controller",
        description="Run Kytos 2021.1 with the xmpp_ofc NApps in the foreground.",
    )
    parser.add_argument(
        "--listen", default="127.0.0.1", help="address for OpenFlow and REST (default 127.0.0.1)"
    )
    parser.add_argument("--of-port", type=int, default=6653, help="OpenFlow port (default 6653)")
    parser.add_argument("--api-port", type=int, default=8181, help="REST port (default 8181)")
    parser.add_argument(
        "--base-dir",
        type=Path,
        default=None,
        help="Kytos base directory for conf, NApps, pidfile and state "
        "(default: the virtualenv, $VIRTUAL_ENV)",
    )
    parser.add_argument("--debug", action="store_true", help="debug logging")
    parser.add_argument(
        "--napps-from-repository",
        action="store_true",
        help="do not link the bundle's NApps at start: leave the NApps directory to "
        "'kytos napps install|enable|disable|uninstall' (packages in "
        "<base>/var/lib/kytos/napps-repository)",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=None,
        metavar="ORIGIN",
        help="an origin (scheme://host[:port]) whose pages may call the REST API cross-origin; "
        "repeatable (default: none, same-origin only; env XMPP_OFC_API_CORS_ORIGINS=a,b)",
    )
    parser.add_argument(
        "--token-for-reads",
        action="store_true",
        default=None,
        help="require the API token for GETs too (default: only writes need it; "
        "env XMPP_OFC_API_TOKEN_FOR_READS=1)",
    )
    token = parser.add_mutually_exclusive_group()
    token.add_argument(
        "--print-token", action="store_true", help="print the REST API token and exit"
    )
    token.add_argument(
        "--rotate-token",
        action="store_true",
        help="replace the REST API token (a running controller refuses the old one at once), "
        "print the new one and exit",
    )
    args = parser.parse_args(argv)
    try:
        args.cors_origin = rest_auth.parse_origins(args.cors_origin or [])
    except ValueError as error:
        parser.error(str(error))
    for name in ("of_port", "api_port"):
        port = getattr(args, name)
        if not 1 <= port <= 65535:
            parser.error(f"--{name.replace('_', '-')} must be 1-65535, got {port}")
    if args.of_port == args.api_port:
        parser.error("--of-port and --api-port must differ")
    return args


def write_config(base: Path, args: argparse.Namespace) -> Path:
    """Write the conf and logging files under ``base``; return the conf path."""
    from xmpp_ofc import napp_repository

    repository = napp_repository.default_repository_dir(base)
    etc = base / "etc" / "kytos"
    etc.mkdir(parents=True, exist_ok=True)
    (base / "var" / "run" / "kytos").mkdir(parents=True, exist_ok=True)
    (base / "var" / "lib" / "kytos" / "napps").mkdir(parents=True, exist_ok=True)
    level = "DEBUG" if args.debug else "INFO"
    (etc / "xmpp_ofc.logging.ini").write_text(LOGGING_INI.format(level=level))
    conf = etc / "xmpp_ofc.conf"
    conf.write_text(
        CONF.format(
            base=base,
            debug=args.debug,
            listen=args.listen,
            of_port=args.of_port,
            api_port=args.api_port,
            repositories=json.dumps([napp_repository.repository_url(repository)]),
            jwt_secret=secrets.token_hex(16),
        )
    )
    return conf


def auth_settings(base: Path, args: argparse.Namespace) -> rest_auth.AuthSettings:
    """Flags over ``XMPP_OFC_API_*`` over the defaults (writes only, no CORS)."""
    from_env = rest_auth.AuthSettings.from_env(base)
    return rest_auth.AuthSettings(
        base_dir=base,
        token_for_reads=from_env.token_for_reads if args.token_for_reads is None else True,
        cors_origins=args.cors_origin or from_env.cors_origins,
    )


def token_command(base: Path, args: argparse.Namespace) -> int:
    """``--print-token`` / ``--rotate-token``: only the token on stdout, for $(...)."""
    path = rest_auth.token_path(base)
    if args.rotate_token:
        print(rest_auth.rotate_token(path))
        print(f"xmpp_ofc: new API token written to {path}", file=sys.stderr)
    else:
        print(rest_auth.ensure_token(path))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = (args.base_dir or Path(os.environ.get("VIRTUAL_ENV") or sys.prefix)).resolve()
    if args.print_token or args.rotate_token:
        return token_command(base, args)
    os.environ["VIRTUAL_ENV"] = str(base)  # read by Kytos at import time

    from xmpp_ofc import kytos_py311, napp_layout, napp_repository

    conf = write_config(base, args)
    napps_dir = base / "var" / "lib" / "kytos" / "napps"
    bundled = napp_layout.bundled_napps()
    napp_repository.build_repository(napp_repository.default_repository_dir(base), bundled)
    if args.napps_from_repository:
        ids = [f"{user}/{name}" for user, name in napp_layout.enabled_ids(napps_dir)]
    else:
        ids = napp_layout.install(napps_dir, bundled)
    kytos_py311.apply()
    settings = auth_settings(base, args)
    rest_auth.install(settings)

    print(
        f"xmpp_ofc: OpenFlow on {args.listen}:{args.of_port}, "
        f"REST on http://{args.listen}:{args.api_port}/api/, "
        f"NApps {', '.join(ids) or 'none'}; base dir {base}. "
        f"REST writes need the API token in {settings.token_path} "
        f"(print it: xmpp-ofc-controller --print-token --base-dir {base}). Stop with Ctrl-C.",
        file=sys.stderr,
        flush=True,
    )
    from kytos.core import kytosd

    kytos_py311.new_event_loop_for_kytosd()
    with kytos_py311.pinned_argv(["kytosd", "-c", str(conf)]):
        kytosd.main()
    return 0


def kytosd_main() -> int:
    """``xmpp-ofc-kytosd``: plain kytosd (same flags and conf) with the 3.11 fixes."""
    from xmpp_ofc import kytos_py311

    base = kytos_py311.ensure_virtual_env()
    kytos_py311.apply()
    rest_auth.install(rest_auth.AuthSettings.from_env(base))
    from kytos.core import kytosd

    kytos_py311.new_event_loop_for_kytosd()
    kytosd.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
