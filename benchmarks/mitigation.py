"""Time from flood start to mitigation, and false positives, at the SHIPPED defaults.

Issue 14, item 8. Each round builds a fresh lab (real OVS, prosody, slixmpp, our
controller with no settings patched), runs one attack from ``--attackers`` spammer
hosts, watches REST (``blocked``) and ``ovs-ofctl dump-flows`` every 0.25 s, and
tears the lab down. A fresh lab per round so the escalation state of one round
(offence counts) does not shorten the next.

"Mitigated" = REST lists a block of the attacker's address AND the switch holds a
rate-limiter drop flow matching it (for ``reconnect`` and ``connflood``: the
whole-address block, no source port), or — for ``connflood`` — REST lists a prefix
block (``status.prefix_blocks``) covering the address AND the switch holds its drop
flow: with many attackers in one /24 the prefix rule usually fires first, and then
the addresses' own connections are no longer counted.

Attacks: ``message`` (one session, 20 msg/s), ``reconnect`` (new session every 5 s,
20 msg/s), ``connflood`` (200 new TCP connections/s per address), and ``legit`` (the
users' mix, no spammer: blocks of users and their delivery ratio).

Run it under the heavy lock, e.g.::

    flock /tmp/xofc-heavy.lock .venv/bin/python benchmarks/mitigation.py \
        --attack message --attackers 10 --rounds 2 --duration 20
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import subprocess
import sys
import threading
import time
from typing import Any

from xmpp_ofc.lab import netns, state, xmpp_lab
from xmpp_ofc.lab.load import LoadOptions, percentile, run_load
from xmpp_ofc.testing.controller import free_port

RATE_LIMITER = "xmpp_ofc/rate_limiter/v1"
OBSERVE_EVERY_S = 0.25
SPAM_RATE = 1200.0  # 20 msg/s
RECONNECT_S = 5.0

#: 200 new TCP connections a second to the XMPP port, each closed right away; bounded.
CONNFLOOD = r"""
import socket, sys, time
host, port, rate, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
start = time.monotonic()
n = 0
while (now := time.monotonic() - start) < duration:
    if n < now * rate:
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect_ex((host, port))
        finally:
            s.close()
        n += 1
    else:
        time.sleep(0.001)
print(n)
"""


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def drop_flow_ips(description: xmpp_lab.LabDescription, address_only: bool) -> set[str]:
    """Addresses that have a drop flow in the switch (address-only: no source port)."""
    ips = set()
    for flow in description.switch().dump_flows():
        if flow.actions != "drop" or "nw_src" not in flow.match:
            continue
        if address_only and "tp_src" in flow.match:
            continue
        ips.add(flow.match["nw_src"].split("/")[0])
    return ips


def prefix_drop_flows(description: xmpp_lab.LabDescription) -> list[ipaddress.IPv4Network]:
    """Networks (shorter than /32) that have a drop flow in the switch."""
    networks = []
    for flow in description.switch().dump_flows():
        source = flow.match.get("nw_src") or ""
        if flow.actions == "drop" and "/" in source:
            networks.append(ipaddress.ip_network(source, strict=False))
    return networks


def prefix_blocked(api) -> list[ipaddress.IPv4Network]:
    status, body = api.get(f"{RATE_LIMITER}/status")
    if status != 200:
        return []
    return [ipaddress.ip_network(b["prefix"], strict=False) for b in body.get("prefix_blocks", [])]


def covered(ip: str, networks: list[ipaddress.IPv4Network]) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in network for network in networks)


def blocked_entries(api) -> list[dict[str, Any]]:
    status, body = api.get(f"{RATE_LIMITER}/blocked?limit=1000")
    return body["blocked"] if status == 200 else []


def one_round(args: argparse.Namespace, number: int) -> dict[str, Any]:
    """Build a lab, run one attack, observe; the per-attacker times in seconds."""
    tag = state.new_tag()
    legit = args.attack == "legit"
    options = xmpp_lab.LabOptions(
        tag=tag, clients=args.clients, users_per_client=args.users,
        spammers=0 if legit else args.attackers, of_port=free_port(), api_port=free_port(),
    )  # fmt: skip
    built = time.monotonic()
    description = xmpp_lab.build(options, say=lambda _line: None)
    try:
        api = description.controller()
        status, _ = api.get(f"{RATE_LIMITER}/settings")
        if status != 200:
            raise RuntimeError(f"rate limiter REST not available: {status}")
        say(f"round {number}: lab up in {time.monotonic() - built:.0f} s ({tag})")
        return observe(args, description, api)
    finally:
        xmpp_lab.teardown(tag)


def start_floods(args, description, duration: float) -> list[subprocess.Popen]:
    """One bounded connection-flood generator in each spammer host."""
    server = description.server
    command = [sys.executable, "-c", CONNFLOOD, server.ip, str(description.xmpp_port)]
    return [
        subprocess.Popen(
            netns.exec_args(host.namespace, [*command, str(args.conn_rate), str(duration)]),
            stdout=subprocess.PIPE,
            text=True,
        )
        for host in description.clients("spammer")
    ]


def start_load(args, description, duration: float, summary: dict) -> threading.Thread:
    """The lab's XMPP load in a thread; returns once it starts sending."""
    go = threading.Event()
    load_options = LoadOptions(
        duration=duration, spam_rate=SPAM_RATE, connect_timeout=60,
        spam_reconnect_after=RECONNECT_S if args.attack == "reconnect" else None,
    )  # fmt: skip

    def tell(line: str) -> None:
        if "sending for" in line:
            go.set()

    load = threading.Thread(
        target=lambda: summary.update(run_load(description, load_options, tell)), daemon=True
    )
    load.start()
    if not go.wait(120):
        raise RuntimeError("the load never started sending")
    return load


def observe(args, description, api) -> dict[str, Any]:
    spammers = {host.ip for host in description.clients("spammer")}
    users = {host.ip for host in description.clients("user")}
    address_only = args.attack in ("reconnect", "connflood")
    duration = args.minutes * 60 if args.attack == "legit" else args.duration
    summary: dict[str, Any] = {}
    floods: list[subprocess.Popen] = []
    load: threading.Thread | None = None
    if args.attack == "connflood":
        go_at = time.monotonic()  # before the generators: 50 of them take a while to spawn
        floods = start_floods(args, description, duration)
    else:
        load = start_load(args, description, duration, summary)
        go_at = time.monotonic()
    mitigated: dict[str, float] = {}
    user_blocks: set[tuple[str, Any]] = set()
    last_progress = go_at
    while time.monotonic() < go_at + duration + 60 and (
        (load is not None and load.is_alive()) or any(p.poll() is None for p in floods)
    ):
        now = time.monotonic() - go_at
        blocked = blocked_entries(api)
        user_blocks.update((b["ip"], b["port"]) for b in blocked if b["ip"] in users)
        rest = {b["ip"] for b in blocked if not address_only or b["port"] is None}
        if pending := [ip for ip in spammers if ip not in mitigated and ip in rest]:
            dropped = drop_flow_ips(description, address_only)
            mitigated |= {ip: now for ip in pending if ip in dropped}
        if args.attack == "connflood" and (prefixes := prefix_blocked(api)):
            installed = prefix_drop_flows(description)
            mitigated |= {
                ip: now
                for ip in spammers
                if ip not in mitigated and covered(ip, prefixes) and covered(ip, installed)
            }
        if time.monotonic() - last_progress >= 10:
            last_progress = time.monotonic()
            say(f"  t={now:.0f}s mitigated {len(mitigated)}/{len(spammers)},"
                f" user blocks {len(user_blocks)}")  # fmt: skip
        time.sleep(OBSERVE_EVERY_S)
    if load is not None:
        load.join(60)
    for process in floods:
        process.wait(30)
    status, body = api.get(f"{RATE_LIMITER}/events?limit=1000")
    events = body.get("events", []) if status == 200 else []
    result: dict[str, Any] = {
        "attackers": len(spammers),
        "times_s": sorted(mitigated.values()),
        "unmitigated": len(spammers) - len(mitigated),
        "user_blocks": len(user_blocks),
        "user_events": len([e for e in events if e.get("ip") in users]),
    }
    return result | delivery(summary, mitigated, len(spammers))


def delivery(summary: dict, mitigated: dict[str, float], attackers: int) -> dict[str, Any]:
    """Sent/delivered by role; spam delivered in the 10 s windows after the last block."""
    if not summary:
        return {}
    result = {"sent": summary["sent"], "delivered": summary["delivered"]}
    if mitigated and len(mitigated) == attackers:
        last = max(mitigated.values())
        later = [w for w in summary["windows"] if w["start_s"] >= last]
        result["spam_delivered_after_last_mitigation"] = sum(w["delivered"]["spam"] for w in later)
        result["after_s"] = later[0]["start_s"] if later else None
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attack", choices=("message", "reconnect", "connflood", "legit"))
    parser.add_argument("--attackers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per attack round")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the legit mix")
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--users", type=int, default=5, help="accounts per user host")
    parser.add_argument("--conn-rate", type=float, default=200.0)
    parser.add_argument("--max-total-s", type=float, default=900.0, help="no round starts after")
    parser.add_argument("--json", help="append the results (one JSON line) to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 20 or not 1 <= args.duration <= 300 or not 0 < args.minutes <= 30:
        parser.error("--rounds 1-20, --duration 1-300 s, --minutes up to 30")
    started = time.monotonic()
    rounds = []
    for number in range(1, args.rounds + 1):
        if time.monotonic() - started > args.max_total_s:
            say(f"--max-total-s reached: stopping after {number - 1} rounds")
            break
        result = one_round(args, number)
        say(f"round {number}: {json.dumps(result)}")
        rounds.append(result)
    times = sorted(t for r in rounds for t in r["times_s"])
    report = {
        "attack": args.attack,
        "attackers": args.attackers,
        "rounds": len(rounds),
        "samples": len(times),
        "p50_s": percentile(times, 0.5),
        "p99_s": percentile(times, 0.99),
        "max_s": times[-1] if times else None,
        "unmitigated": sum(r["unmitigated"] for r in rounds),
        "user_blocks": sum(r["user_blocks"] for r in rounds),
        "user_events": sum(r["user_events"] for r in rounds),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rounds_detail": rounds,
    }
    say("result: " + json.dumps({k: v for k, v in report.items() if k != "rounds_detail"}))
    if args.json:
        with open(args.json, "a", encoding="utf-8") as out:
            out.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
