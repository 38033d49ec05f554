"""``python -m xmpp_ofc.lab`` (``make lab ARGS=...``): the XMPP lab from the shell.

    up [--server prosody|ejabberd] [--clients N] [--spammers M] [--users K]
       [--of-port P] [--api-port P]
                         build OVS, the XMPP server, N user hosts, M spammer hosts, the controller
    status               what runs, flows per table, monitored and blocked clients
    load [--duration S] [--rate R] [--spam-rate R] [--spam-reconnect-after S] [--json FILE]
                         XMPP load: users at R msgs/min each, spammers at R msgs/min each
    restart-controller   stop the controller (by PID) and start it on the same state
    restart-switch       restart ovs-vswitchd (flows lost, as after a switch reboot)
    down                 remove everything (also after a crash or Ctrl-C)
    list                 tags with namespaces or state left behind
    cleanup TAG... | --all   remove what those tags own

Every command takes ``--tag`` (default ``lab``), so several labs can coexist.
Needs root (namespaces) and the Debian packages openvswitch-switch, ethtool, prosody
(or ejabberd with ``--server ejabberd``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xmpp_ofc import rest_auth
from xmpp_ofc.lab import ejabberd, netns, state, xmpp_lab, xmpp_server
from xmpp_ofc.lab.load import LoadOptions, run_load

RATE_LIMITER_API = "xmpp_ofc/rate_limiter/v1"
RATE_LIMITER_VIEWS = (("monitored clients", "monitored"), ("blocked clients", "blocked"))
REQUIRED_PROGRAMS = {
    "ovs-vswitchd": "openvswitch-switch",
    "ethtool": "ethtool",
    "ip": "iproute2",
}
SERVER_PROGRAMS = {
    "prosody": (xmpp_server.PROGRAM, xmpp_server.DEBIAN_PACKAGE),
    "ejabberd": (ejabberd.PROGRAM, ejabberd.DEBIAN_PACKAGE),
}
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xmpp_ofc.lab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        if name not in ("list", "cleanup"):
            sub.add_argument("--tag", default=xmpp_lab.DEFAULT_TAG, help="lab name (default lab)")
        return sub

    up = command("up", "build the lab")
    up.add_argument(
        "--server",
        choices=xmpp_lab.SERVERS,
        default=xmpp_lab.DEFAULT_SERVER,
        help=f"the XMPP server (default {xmpp_lab.DEFAULT_SERVER})",
    )
    up.add_argument("--clients", type=int, default=3, help="well-behaved user hosts (default 3)")
    up.add_argument("--spammers", type=int, default=1, help="spammer hosts (default 1)")
    up.add_argument("--users", type=int, default=5, help="XMPP accounts per user host (5)")
    up.add_argument("--spammers-per-host", type=int, default=1, help="accounts per spammer host")
    up.add_argument("--of-port", type=int, default=6653, help="controller OpenFlow port (6653)")
    up.add_argument("--api-port", type=int, default=8181, help="controller REST port (8181)")
    up.add_argument(
        "--forwarding",
        choices=xmpp_lab.FORWARDING_MODES,
        default=xmpp_lab.DEFAULT_FORWARDING,
        help="who forwards: our l2_switch NApp (controller) or OVS NORMAL flows the lab adds "
        f"(normal); default {xmpp_lab.DEFAULT_FORWARDING}",
    )
    up.add_argument(
        "--no-controller", action="store_true", help="no controller (implies --forwarding normal)"
    )

    command("status", "show the lab, its flows and the rate limiter's clients")

    load = command("load", "run the XMPP load against the lab")
    load.add_argument("--duration", type=float, default=60.0, help="seconds of sending (60)")
    load.add_argument("--rate", type=float, default=12.0, help="msgs/min per user (12)")
    load.add_argument("--spam-rate", type=float, default=1200.0, help="msgs/min per spammer")
    load.add_argument("--users", type=int, default=None, help="accounts used per user host")
    load.add_argument("--connect-timeout", type=float, default=20.0, help="login timeout (20 s)")
    load.add_argument(
        "--spam-reconnect-after",
        type=float,
        default=None,
        metavar="S",
        help="spammers log in again on a new connection every S seconds (default: never)",
    )
    load.add_argument("--json", type=Path, default=None, help="write the summary here (- = stdout)")

    command("restart-controller", "stop the controller and start it on the same base dir")
    command("restart-switch", "restart ovs-vswitchd on the same database (empty flow tables)")
    command("down", "remove everything the lab built")

    commands.add_parser("list", help="tags with namespaces or state left behind")
    remove = commands.add_parser("cleanup", help="remove everything a tag owns")
    remove.add_argument("tags", nargs="*")
    remove.add_argument("--all", action="store_true", help="every tag that left something")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl-C does
    handler = {
        "up": cmd_up,
        "status": cmd_status,
        "load": cmd_load,
        "restart-controller": cmd_restart_controller,
        "restart-switch": cmd_restart_switch,
        "down": cmd_down,
        "list": cmd_list,
        "cleanup": cmd_cleanup,
    }[args.command]
    try:
        return handler(args, parser)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, TimeoutError, RuntimeError, netns.CommandError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def say(text: str) -> None:
    print(text, flush=True)


# --- up ------------------------------------------------------------------------------


def missing_packages(server: str = xmpp_lab.DEFAULT_SERVER) -> list[str]:
    """Debian packages ``up --server <server>`` needs that are not installed."""
    programs = {**REQUIRED_PROGRAMS, SERVER_PROGRAMS[server][0]: SERVER_PROGRAMS[server][1]}
    return sorted({package for program, package in programs.items() if not _found(program)})


def _found(program: str) -> bool:
    return shutil.which(program, path=SEARCH_PATH) is not None


def cmd_up(args: argparse.Namespace, _parser: argparse.ArgumentParser) -> int:
    missing = missing_packages(args.server)
    if missing:
        print(f"error: missing Debian packages: {' '.join(missing)}", file=sys.stderr)
        print(f"       apt-get update && apt-get install -y {' '.join(missing)}", file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        print("error: the lab needs root (network namespaces, veths)", file=sys.stderr)
        return 1
    options = xmpp_lab.LabOptions(
        tag=state.check_tag(args.tag),
        clients=args.clients,
        spammers=args.spammers,
        users_per_client=args.users,
        spammers_per_host=args.spammers_per_host,
        of_port=args.of_port,
        api_port=args.api_port,
        controller=not args.no_controller,
        forwarding="normal" if args.no_controller else args.forwarding,
        server=args.server,
    )
    try:
        description = xmpp_lab.build(options, say)
    except xmpp_lab.LabExists as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print_description(description)
    return 0


def print_description(description: xmpp_lab.LabDescription) -> None:
    say(f"lab {description.tag!r}:")
    say(
        f"  switch  br0 (OVS userspace datapath, fail_mode secure, dpid {description.dpid})"
        f" in netns {description.switch_namespace}; forwarding: {description.forwarding}"
    )
    if description.api_url:
        say(
            f"  controller  OpenFlow 127.0.0.1:{description.of_port}, REST {description.api_url}"
            f"  log {description.controller_log}"
        )
        if description.controller_log:
            token = rest_auth.token_path(Path(description.controller_log).parent)
            say(f'  REST writes need the token: -H "Authorization: Bearer $(cat {token})"')
    else:
        say("  controller  none")
    server = description.server
    say(
        f"  xmpp    {description.server_kind} on {server.ip}:{description.xmpp_port}"
        f" domain {description.domain}"
        f"  (netns {server.namespace}, port {server.port}, log {description.server_log})"
    )
    for host in description.clients():
        users = [user for user, _ in host.accounts]
        shown = ", ".join(users[:3]) + (f", ... ({len(users)})" if len(users) > 3 else "")
        say(
            f"  {host.name:6s}  {host.role:7s} {host.ip:13s} port {host.port:3d}"
            f"  netns {host.namespace}  accounts {shown} (password: <user>-pw)"
        )
    say(f"  state   {state.tag_dir(description.tag)}")


# --- status --------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace, _parser: argparse.ArgumentParser) -> int:
    description = xmpp_lab.LabDescription.load(args.tag)
    if description is None:
        if xmpp_lab.leftovers(args.tag):
            say(f"lab {args.tag!r}: leftovers without a description; run `down`")
            return 1
        say(f"lab {args.tag!r} is not up")
        return 1
    print_description(description)
    if not description.complete:
        say("  (incomplete: `up` did not finish; run `down`, then `up`)")
    say("processes:")
    for process, alive in xmpp_lab.processes(args.tag):
        say(f"  {process.pid:7d}  {'running' if alive else 'GONE   '}  {process.what}")
    ovs = description.switch()
    if description.of_port is not None:
        connected = ovs.is_connected()
        say(f"controller connection: {'connected' if connected else 'NOT connected'}")
    say("flows:")
    try:
        tables = xmpp_lab.flows_by_table(description)
    except netns.CommandError as error:
        say(f"  cannot read flows: {error}")
        tables = {}
    for table, flows in tables.items():
        say(f"  table {table}: {len(flows)} flows")
        for flow in sorted(flows, key=lambda f: -f.priority):
            say(f"    {flow.raw}")
    if description.api_url:
        for title, view in RATE_LIMITER_VIEWS:
            say(f"{title}:")
            for line in rate_limiter_lines(description.api_url, view):
                say(f"  {line}")
    return 0


def rate_limiter_lines(api_url: str, view: str) -> list[str]:
    """The rate limiter's view as text lines; a clear line when it isn't there."""
    url = f"{api_url}{RATE_LIMITER_API}/{view}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            payload: Any = json.loads(response.read().decode() or "null")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return ["rate limiter not available (404 on " + url + ")"]
        return [f"rate limiter error: HTTP {error.code}"]
    except (OSError, ValueError) as error:
        return [f"controller not reachable: {error}"]
    return format_entries(payload)


def format_entries(payload: Any) -> list[str]:
    """A list of JSON objects (or a dict holding one) as one line per entry."""
    if isinstance(payload, dict):
        lists = [value for value in payload.values() if isinstance(value, list)]
        entries = lists[0] if len(lists) == 1 else [payload]
    elif isinstance(payload, list):
        entries = payload
    else:
        entries = [payload]
    if not entries:
        return ["(none)"]
    lines = []
    for entry in entries:
        if isinstance(entry, dict):
            lines.append("  ".join(f"{key}={value}" for key, value in entry.items()))
        else:
            lines.append(str(entry))
    return lines


# --- load ----------------------------------------------------------------------------


def cmd_load(args: argparse.Namespace, _parser: argparse.ArgumentParser) -> int:
    description = xmpp_lab.LabDescription.load(args.tag)
    if description is None or not description.complete:
        print(f"error: lab {args.tag!r} is not up (run `up` first)", file=sys.stderr)
        return 1
    options = LoadOptions(
        duration=args.duration,
        rate=args.rate,
        spam_rate=args.spam_rate,
        users=args.users,
        connect_timeout=args.connect_timeout,
        spam_reconnect_after=args.spam_reconnect_after,
    )
    summary = run_load(description, options, say)
    if args.json is not None:
        text = json.dumps(summary, indent=1)
        if str(args.json) == "-":
            print(text)
        else:
            args.json.write_text(text + "\n")
    return 130 if summary["interrupted"] else 0


# --- restarts ---------------------------------------------------------------------------


def _running_lab(tag: str) -> xmpp_lab.LabDescription | None:
    description = xmpp_lab.LabDescription.load(tag)
    if description is None or not description.complete:
        print(f"error: lab {tag!r} is not up (run `up` first)", file=sys.stderr)
        return None
    return description


def cmd_restart_controller(args: argparse.Namespace, _parser: argparse.ArgumentParser) -> int:
    description = _running_lab(args.tag)
    if description is None:
        return 1
    if description.of_port is None:
        print(f"error: lab {args.tag!r} has no controller (--no-controller)", file=sys.stderr)
        return 1
    xmpp_lab.restart_controller(description, say)
    say(f"controller restarted; OVS connected again (REST {description.api_url})")
    return 0


def cmd_restart_switch(args: argparse.Namespace, _parser: argparse.ArgumentParser) -> int:
    description = _running_lab(args.tag)
    if description is None:
        return 1
    xmpp_lab.restart_switch(description)
    connected = "; connected to the controller again" if description.of_port else ""
    say(f"ovs-vswitchd restarted{connected}")
    return 0


# --- down, list, cleanup ---------------------------------------------------------------


def cmd_down(args: argparse.Namespace, _parser: argparse.ArgumentParser) -> int:
    tag = state.check_tag(args.tag)
    recorded = state.LabState.load(tag).processes
    namespaces = state.namespaces_of(tag)
    if not xmpp_lab.teardown(tag):
        say(f"lab {tag!r}: nothing to remove")
        return 0
    say(
        f"lab {tag!r} removed: {len(recorded)} processes stopped, "
        f"{len(namespaces)} namespaces deleted, {state.tag_dir(tag)} removed"
    )
    return 0


def cmd_list(_args: argparse.Namespace, _parser: argparse.ArgumentParser) -> int:
    for tag in state.known_tags():
        recorded = state.LabState.load(tag).processes
        running = sum(process.alive() for process in recorded)
        namespaces = " ".join(state.namespaces_of(tag)) or "-"
        print(f"{tag}\tprocesses running: {running}/{len(recorded)}\tnamespaces: {namespaces}")
    return 0


def cmd_cleanup(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    tags = state.known_tags() if args.all else args.tags
    if not tags:
        parser.error("cleanup needs TAG... or --all")
    failed = 0
    for tag in tags:
        try:
            state.cleanup(tag)
            print(f"{tag}: removed")
        except (OSError, TimeoutError, netns.CommandError) as error:  # report, go on
            print(f"{tag}: {error}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0
