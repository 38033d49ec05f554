"""XMPP load for the lab, in the spirit of the seed's Amoc scenario: users and spammers.

Well-behaved users each send chat messages at a modest rate (per minute) to
random other users; spammers send far above the rate limiter's threshold.
Every message carries its send time, so the receiver measures its
time-to-deliver (TTD, the seed's Graphite histogram).

Shape (lab facts, section 5 (a)): one *worker* process per client host,
started inside the host's namespace with ``ip netns exec``, all its users in
one asyncio loop sharing one SSL context (a fresh one per client costs 45-60
ms of CPU loading the CA bundle).  Clients speak plaintext with SASL PLAIN to
the server (prosody or ejabberd) and send no presence, so what the switch counts is the messages.

Protocol between the coordinator (the ``load`` command) and its workers, one
JSON object per line:

* worker → ``{"kind": "connection", "ip": ..., "port": ..., ...}`` each time one
  of its clients logs in, with the connection's local address (so a test can
  tell a spammer's reconnect from its first connection by the source port);
* worker → ``{"kind": "ready", ...}`` once its users are logged in (or failed);
* coordinator → ``go`` on the worker's stdin when every worker is ready, so
  nobody sends to a user who is not logged in yet;
* worker → ``{"kind": "tick", "t": <CLOCK_MONOTONIC>, ...}`` every second
  with counters since the last tick and the TTD samples; ``"final": true`` on
  the last one.  CLOCK_MONOTONIC is one clock for the whole machine, so a TTD
  measured across two processes (and namespaces) is meaningful.

The coordinator prints one progress line per 10 s window (users connected,
messages sent and delivered, TTD p50/p90/p99, connection failures) and
returns a JSON-ready summary.  Every wait is bounded: a worker exits by itself
at a hard deadline even if the coordinator is gone, and the coordinator kills
workers (by recorded PID) that overrun.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import queue
import random
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROLES = ("user", "spam")
RESOURCE = "load"
BODY_TAG = "xofc"
TICK_SECONDS = 1.0
WINDOW_SECONDS = 10.0
MAX_BURST = 50  # messages one client sends back-to-back when it fell behind its pace
#: The legitimate extremes (``LoadOptions.extremes``): one large stanza, one burst.
LARGE_STANZA_BYTES = 100_000
BURST_MESSAGES = 30
BURST_SECONDS = 3.0
EXTREME_LARGE_AT_S = 5.0
EXTREME_BURST_AT_S = 15.0


# --- statistics -------------------------------------------------------------------


def percentile(sorted_samples: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted samples (None when there are none)."""
    if not sorted_samples:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_samples)))
    return sorted_samples[rank - 1]


def ttd_summary(samples: Sequence[float]) -> dict[str, float | int | None]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 0.50),
        "p90": percentile(ordered, 0.90),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1] if ordered else None,
    }


def _by_role() -> dict[str, int]:
    return dict.fromkeys(ROLES, 0)


@dataclass
class Window:
    """Everything the workers reported for one 10 s window of the run."""

    index: int
    connected: dict[str, int] = field(default_factory=dict)  # host -> latest gauge
    sent: dict[str, int] = field(default_factory=_by_role)
    delivered: dict[str, int] = field(default_factory=_by_role)
    bounced: int = 0
    failures: int = 0
    ttd: dict[str, list[float]] = field(default_factory=lambda: {role: [] for role in ROLES})

    def add(self, host: str, tick: dict[str, Any]) -> None:
        self.connected[host] = tick["connected"]
        for role in ROLES:
            self.sent[role] += tick["sent"][role]
            self.delivered[role] += tick["delivered"][role]
            self.ttd[role].extend(tick["ttd"][role])
        self.bounced += tick["bounced"]
        self.failures += tick["failures"]

    def summary(self) -> dict[str, Any]:
        return {
            "window": self.index,
            "start_s": self.index * WINDOW_SECONDS,
            "connected": sum(self.connected.values()),
            "sent": dict(self.sent),
            "delivered": dict(self.delivered),
            "bounced": self.bounced,
            "failures": self.failures,
            "ttd_ms": {role: ttd_summary(self.ttd[role]) for role in ROLES},
        }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_window(summary: dict[str, Any]) -> str:
    """One progress line, e.g. ``[ 10- 20 s] users 15 | sent 30+400 | ...``."""
    start = summary["start_s"]
    ttd = summary["ttd_ms"]["user"]
    spam_ttd = summary["ttd_ms"]["spam"]
    return (
        f"[{start:4.0f}-{start + WINDOW_SECONDS:4.0f} s] connected {summary['connected']:4d}"
        f" | sent user {summary['sent']['user']:6d} spam {summary['sent']['spam']:7d}"
        f" | delivered user {summary['delivered']['user']:6d}"
        f" spam {summary['delivered']['spam']:7d}"
        f" | TTD ms user p50/p90/p99 {_ms(ttd['p50'])}/{_ms(ttd['p90'])}/{_ms(ttd['p99'])}"
        f" spam p50 {_ms(spam_ttd['p50'])}"
        f" | failures {summary['failures']}"
        + (f" bounced {summary['bounced']}" if summary["bounced"] else "")
    )


# --- worker: runs inside one client host's namespace ---------------------------------


@dataclass
class WorkerSpec:
    """What one worker does; written as JSON by the coordinator."""

    host: str
    role: str  # "user" or "spam"
    server: str
    port: int
    domain: str
    accounts: list[list[str]]  # [user, password]
    recipients: list[str]  # full JIDs of well-behaved users
    rate_per_minute: float
    duration: float
    connect_timeout: float = 20.0
    go_timeout: float = 60.0
    drain: float = 3.0
    reconnect_after: float | None = None  # seconds per session; None = one session
    #: The host's first account also sends the legitimate extremes (``send_extremes``).
    extremes: bool = False

    @property
    def hard_deadline(self) -> float:
        """Seconds after start when the worker exits whatever happens."""
        return self.connect_timeout + self.go_timeout + self.duration + self.drain + 15.0


class Counters:
    """What happened since the last tick."""

    def __init__(self) -> None:
        self.reset()
        self.connected = 0

    def reset(self) -> None:
        self.sent = _by_role()
        self.delivered = _by_role()
        self.ttd: dict[str, list[float]] = {role: [] for role in ROLES}
        self.bounced = 0
        self.failures = 0
        self.delivered_from: dict[str, int] = {}


def message_body(role: str, host: str, sent_at: float) -> str:
    return f"{BODY_TAG} {role} {host} {sent_at:.6f}"


def parse_body(body: str) -> tuple[str, str, float] | None:
    """(role, sender host, send time) of a load message, None for anything else.

    Anything after the fourth word is padding (the large stanza of ``send_extremes``).
    """
    parts = body.split(None, 4)[:4]
    if len(parts) != 4 or parts[0] != BODY_TAG or parts[1] not in ROLES:
        return None
    try:
        return parts[1], parts[2], float(parts[3])
    except ValueError:
        return None


class Worker:
    """All clients of one host, in one asyncio loop."""

    def __init__(self, spec: WorkerSpec, emit: Callable[[dict[str, Any]], None]) -> None:
        self.spec = spec
        self.emit = emit
        self.counters = Counters()
        self.clients: list[Any] = []
        self.stopping = False
        self.leaving: set[int] = set()  # id() of clients we close on purpose (reconnects)
        # One context for every client: each ClientXMPP would otherwise load the CA bundle.
        self.ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

    # --- clients -----------------------------------------------------------

    def _make_client(self, user: str, password: str, session: int = 1):
        """A client for one session; later sessions get their own resource.

        A fresh resource per session keeps the server from treating the new
        login as a conflict with the old session, which may still be hanging
        there (its packets dropped by a block) when the spammer comes back.
        """
        from slixmpp import ClientXMPP

        resource = RESOURCE if session == 1 else f"{RESOURCE}-{session}"
        client = ClientXMPP(
            f"{user}@{self.spec.domain}/{resource}",
            password,
            sasl_mech="PLAIN",
            ssl_context=self.ssl_context,
        )
        client.enable_direct_tls = False
        client.enable_starttls = False
        client.enable_plaintext = True
        client["feature_mechanisms"].unencrypted_plain = True
        client.add_event_handler("message", self._on_message)
        return client

    async def _log_in(self, client, timeout: float | None = None) -> bool:
        """Connect and wait for the session (bounded); True when logged in.

        Reports the connection's local address (a ``connection`` record).
        """
        session = asyncio.get_running_loop().create_future()

        def settle(result: bool) -> Callable[[Any], None]:
            def handler(_event: Any) -> None:
                if not session.done():
                    session.set_result(result)

            return handler

        client.add_event_handler("session_start", settle(True))
        client.add_event_handler("failed_all_auth", settle(False))
        client.connect(self.spec.server, self.spec.port)
        try:
            ok = await asyncio.wait_for(session, timeout or self.spec.connect_timeout)
        except TimeoutError:
            ok = False
        if not ok:
            client.cancel_connection_attempt()
            client.abort()
            return False
        client.add_event_handler("disconnected", lambda _event: self._on_disconnected(client))
        ip, port = client.transport.get_extra_info("sockname")[:2]
        self.emit(
            {
                "kind": "connection",
                "host": self.spec.host,
                "account": client.boundjid.user,
                "ip": ip,
                "port": port,
                "t": time.monotonic(),
            }
        )
        return True

    def _on_disconnected(self, client: Any) -> None:
        """A session that ends before we stop (and not by our reconnect) is a failure."""
        if not self.stopping and id(client) not in self.leaving:
            self.counters.failures += 1
            self.counters.connected -= 1

    async def _close(self, client: Any) -> None:
        """End a session on purpose, bounded: a polite stream end, then the socket.

        A blocked connection never sees the server's answer, so the wait is short
        and the transport is aborted after it.
        """
        self.leaving.add(id(client))
        self.counters.connected -= 1
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(client.disconnect(wait=1.0, ignore_send_queue=True), 2.0)
        client.abort()

    async def _log_in_again(self, user: str, password: str, session: int, stop_at: float):
        """A new client logged in on a new connection before ``stop_at``; None if none."""
        loop = asyncio.get_running_loop()
        while (remaining := stop_at - loop.time()) > 0:
            client = self._make_client(user, password, session)
            if await self._log_in(client, min(self.spec.connect_timeout, remaining)):
                self.counters.connected += 1
                return client
            self.counters.failures += 1
            await asyncio.sleep(min(1.0, max(0.0, stop_at - loop.time())))
        return None

    async def _send_in_sessions(self, client, password: str, stop_at: float):
        """Send until ``stop_at``; with ``reconnect_after``, in sessions of that length.

        Each session after the first is a new login on a new TCP connection (a
        new source port), as a spammer does when its connection stops getting
        through.  Returns the client of the last session (None if the last
        login failed), for the final disconnect.
        """
        loop = asyncio.get_running_loop()
        user = client.boundjid.user
        session = 1
        while True:
            session_end = stop_at
            if self.spec.reconnect_after is not None:
                session_end = min(stop_at, loop.time() + self.spec.reconnect_after)
            await self._send_paced(client, str(client.boundjid), session_end)
            if session_end >= stop_at:
                return client
            await self._close(client)
            session += 1
            client = await self._log_in_again(user, password, session, stop_at)
            if client is None:
                return None

    def _on_message(self, message: Any) -> None:
        if message["type"] == "error":
            self.counters.bounced += 1
            return
        parsed = parse_body(message["body"])
        if parsed is None:
            return
        role, sender, sent_at = parsed
        self.counters.delivered[role] += 1
        self.counters.delivered_from[sender] = self.counters.delivered_from.get(sender, 0) + 1
        self.counters.ttd[role].append(round((time.monotonic() - sent_at) * 1000.0, 3))

    async def _send_extremes(self, client) -> None:
        """What real users do now and then, on top of their pace (issue 14).

        At 5 s one stanza with ~100 kB of body (an avatar, a paste); at 15 s a
        burst of 30 messages within 3 s. Each counts as one sent user message.
        """
        own_jid = str(client.boundjid)
        recipients = [jid for jid in self.spec.recipients if jid != own_jid] or [own_jid]
        await asyncio.sleep(EXTREME_LARGE_AT_S)
        padding = "x" * LARGE_STANZA_BYTES
        self._send_one(client, random.choice(recipients), padding)
        await asyncio.sleep(EXTREME_BURST_AT_S - EXTREME_LARGE_AT_S)
        for _ in range(BURST_MESSAGES):
            self._send_one(client, random.choice(recipients))
            await asyncio.sleep(BURST_SECONDS / BURST_MESSAGES)

    def _send_one(self, client, recipient: str, padding: str = "") -> None:
        body = message_body(self.spec.role, self.spec.host, time.monotonic())
        client.send_message(
            mto=recipient, mbody=f"{body} {padding}" if padding else body, mtype="chat"
        )
        self.counters.sent[self.spec.role] += 1

    async def _send_paced(self, client, own_jid: str, stop_at: float) -> None:
        """Send at ``rate_per_minute``, starting at a random phase; catch up in bursts."""
        interval = 60.0 / self.spec.rate_per_minute
        recipients = [jid for jid in self.spec.recipients if jid != own_jid] or [own_jid]
        loop = asyncio.get_running_loop()
        next_at = loop.time() + random.uniform(0, interval)
        while (now := loop.time()) < stop_at:
            if next_at > now:
                await asyncio.sleep(min(next_at - now, stop_at - now))
                continue
            due = min(int((now - next_at) / interval) + 1, MAX_BURST)
            for _ in range(due):
                client.send_message(
                    mto=random.choice(recipients),
                    mbody=message_body(self.spec.role, self.spec.host, time.monotonic()),
                    mtype="chat",
                )
                self.counters.sent[self.spec.role] += 1
            next_at += due * interval
            next_at = max(next_at, now - 1.0)  # never owe more than a second of messages
            await asyncio.sleep(0)

    # --- reporting -------------------------------------------------------------

    def tick(self, final: bool = False) -> None:
        counters = self.counters
        self.emit(
            {
                "kind": "tick",
                "host": self.spec.host,
                "t": time.monotonic(),
                "connected": counters.connected,
                "sent": counters.sent,
                "delivered": counters.delivered,
                "delivered_from": counters.delivered_from,
                "ttd": counters.ttd,
                "bounced": counters.bounced,
                "failures": counters.failures,
                "final": final,
            }
        )
        counters.reset()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self.tick()

    # --- the run ----------------------------------------------------------------------

    async def run(self, go: asyncio.Event) -> None:
        spec = self.spec
        self.clients = [self._make_client(user, password) for user, password in spec.accounts]
        results = await asyncio.gather(*(self._log_in(client) for client in self.clients))
        logged_in = [c for c, ok in zip(self.clients, results, strict=True) if ok]
        self.counters.connected = len(logged_in)
        failed = len(self.clients) - len(logged_in)
        self.emit(
            {"kind": "ready", "host": spec.host, "connected": len(logged_in), "failures": failed}
        )
        try:
            await asyncio.wait_for(go.wait(), spec.go_timeout)
        except TimeoutError:
            self.emit({"kind": "error", "host": spec.host, "error": "no go from the coordinator"})
            return
        self.counters.failures += failed  # reported in the first window
        ticker = asyncio.ensure_future(self._ticker())
        stop_at = asyncio.get_running_loop().time() + spec.duration
        passwords = dict(spec.accounts)
        extremes = (
            [asyncio.ensure_future(self._send_extremes(logged_in[0]))]
            if spec.extremes and logged_in
            else []
        )
        last_clients = await asyncio.gather(
            *(
                self._send_in_sessions(client, passwords[client.boundjid.user], stop_at)
                for client in logged_in
            )
        )
        for task in extremes:
            task.cancel()
        await asyncio.sleep(spec.drain)  # let the last messages arrive
        ticker.cancel()
        self.stopping = True
        self.tick(final=True)
        for client in last_clients:
            if client is not None:
                client.disconnect(wait=1.0)
        await asyncio.sleep(0.5)


def worker_main(argv: Sequence[str]) -> int:
    """``python -m xmpp_ofc.lab.load <spec.json>``, started by the coordinator in a netns."""
    spec = WorkerSpec(**json.loads(Path(argv[0]).read_text()))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    threading.Timer(spec.hard_deadline, _hard_exit).start()

    def emit(record: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        go = asyncio.Event()

        def read_stdin() -> None:
            line = sys.stdin.readline()  # "go", or EOF when the coordinator is gone
            if line.strip() == "go":
                loop.call_soon_threadsafe(go.set)

        threading.Thread(target=read_stdin, daemon=True).start()
        await Worker(spec, emit).run(go)

    try:
        asyncio.run(main())
    except BrokenPipeError:
        return 1
    _hard_exit(0)
    return 0


def _hard_exit(code: int = 2) -> None:
    """Leave now: daemon threads and slixmpp's leftovers must not keep the worker alive."""
    sys.stdout.flush()
    os._exit(code)


# --- coordinator: the ``load`` command ----------------------------------------------------


@dataclass(frozen=True)
class LoadOptions:
    duration: float = 60.0
    rate: float = 12.0  # messages per minute per well-behaved user
    spam_rate: float = 1200.0  # messages per minute per spammer
    users: int | None = None  # per user host; None = every account
    connect_timeout: float = 20.0
    drain: float = 3.0
    #: Spammers log in again (new connection) after this many seconds of spamming.
    spam_reconnect_after: float | None = None
    #: One user per host also sends a 100 kB stanza (at 5 s) and 30 messages in 3 s (at 15 s).
    extremes: bool = False

    def check(self) -> None:
        if not 1 <= self.duration <= 24 * 3600:
            raise ValueError(f"--duration must be 1-86400 s, got {self.duration}")
        if not 0 < self.rate <= 600_000 or not 0 < self.spam_rate <= 600_000:
            raise ValueError("--rate and --spam-rate must be > 0 and <= 600000 per minute")
        if self.users is not None and self.users < 1:
            raise ValueError(f"--users must be >= 1, got {self.users}")
        reconnect = self.spam_reconnect_after
        if reconnect is not None and not 1 <= reconnect < self.duration:
            raise ValueError(
                f"--spam-reconnect-after must be at least 1 s and below --duration, got {reconnect}"
            )


@dataclass
class _WorkerProcess:
    host: str
    role: str
    process: subprocess.Popen
    recorded: Any
    ready: dict[str, Any] | None = None
    done: bool = False


def worker_specs(description, options: LoadOptions) -> list[WorkerSpec]:
    """One spec per client host that has accounts."""
    recipients = []
    used: dict[str, list[list[str]]] = {}
    for host in description.clients():
        accounts = host.accounts
        if host.role == "user" and options.users is not None:
            accounts = accounts[: options.users]
        used[host.name] = accounts
        if host.role == "user":
            recipients += [f"{user}@{description.domain}/{RESOURCE}" for user, _ in accounts]
    specs = []
    for host in description.clients():
        role = "user" if host.role == "user" else "spam"
        if not used[host.name]:
            continue
        specs.append(
            WorkerSpec(
                host=host.name,
                role=role,
                server=description.server.ip,
                port=description.xmpp_port,
                domain=description.domain,
                accounts=used[host.name],
                recipients=recipients,
                rate_per_minute=options.rate if role == "user" else options.spam_rate,
                duration=options.duration,
                connect_timeout=options.connect_timeout,
                drain=options.drain,
                reconnect_after=options.spam_reconnect_after if role == "spam" else None,
                extremes=options.extremes and role == "user",
            )
        )
    return specs


def run_load(description, options: LoadOptions, say: Callable[[str], None] = print) -> dict:
    """Run the load against a lab that is up; return the summary (also on Ctrl-C)."""
    options.check()
    return LoadRun(description, options, say).run()


class LoadRun:
    """One run of the load: workers started, ticks gathered into windows, summary made."""

    def __init__(self, description, options: LoadOptions, say: Callable[[str], None]) -> None:
        from xmpp_ofc.lab import state

        self.description = description
        self.options = options
        self.say = say
        self.specs = worker_specs(description, options)
        self.directory = state.tag_dir(description.tag) / "load"
        self.lab_state = state.LabState.load(description.tag)
        self.lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
        self.workers: dict[str, _WorkerProcess] = {}
        self.windows: dict[int, Window] = {}
        self.totals = _Totals(self.specs)
        self.go_at: float | None = None
        self.printed = -1  # the last window printed

    def run(self) -> dict[str, Any]:
        interrupted = False
        try:
            self._start_workers()
            self._wait_ready()
            self._go()
            self._gather()
        except KeyboardInterrupt:
            interrupted = True
            self.say("load: interrupted; stopping the workers")
        finally:
            self._stop_workers()
        summary = self.totals.summary(self.windows, self.options, self.go_at, interrupted)
        summary["tag"] = self.description.tag
        self.say(format_totals(summary))
        return summary

    def _start_workers(self) -> None:
        """One worker per host, in its namespace, recorded for ``down`` at once."""
        from xmpp_ofc.lab import netns

        self.directory.mkdir(parents=True, exist_ok=True)
        namespaces = {host.name: host.namespace for host in self.description.hosts}
        for spec in self.specs:
            spec_path = self.directory / f"{spec.host}.json"
            spec_path.write_text(json.dumps(asdict(spec)))
            command = [sys.executable, "-m", "xmpp_ofc.lab.load", str(spec_path)]
            with open(self.directory / f"{spec.host}.log", "ab") as log:
                process = subprocess.Popen(
                    netns.exec_args(namespaces[spec.host], command),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                    start_new_session=True,  # Ctrl-C reaches the coordinator only
                )
            recorded = self.lab_state.add_process(process.pid, f"load worker {spec.host}")
            self.workers[spec.host] = _WorkerProcess(spec.host, spec.role, process, recorded)
            threading.Thread(
                target=_pump, args=(spec.host, process.stdout, self.lines), daemon=True
            ).start()
        accounts = sum(len(spec.accounts) for spec in self.specs)
        self.say(f"load: {len(self.specs)} worker processes, {accounts} accounts logging in ...")

    def _wait_ready(self) -> None:
        """Every worker logs its users in (bounded) before anyone sends."""
        started = time.monotonic()
        deadline = started + self.options.connect_timeout + 15
        while any(w.ready is None and not w.done for w in self.workers.values()):
            if time.monotonic() > deadline:
                raise TimeoutError("workers did not report ready in time; see load/*.log")
            self._take_lines(timeout=0.2)
        connected = sum((w.ready or {}).get("connected", 0) for w in self.workers.values())
        accounts = sum(len(spec.accounts) for spec in self.specs)
        self.say(
            f"load: {connected}/{accounts} users logged in in {time.monotonic() - started:.1f} s;"
            f" sending for {self.options.duration:g} s (users {self.options.rate:g}/min,"
            f" spammers {self.options.spam_rate:g}/min)"
            + (
                f"; spammers log in again every {reconnect:g} s"
                if (reconnect := self.options.spam_reconnect_after)
                else ""
            )
        )

    def _go(self) -> None:
        self.go_at = time.monotonic()
        for worker in self.workers.values():
            _tell(worker.process, "go\n")

    def _gather(self) -> None:
        """Ticks until every worker sent its last one (bounded); print finished windows."""
        options = self.options
        deadline = self.go_at + options.duration + options.drain + 20
        while not all(w.done for w in self.workers.values()):
            if time.monotonic() > deadline:
                self.say("load: workers overran their time; stopping them")
                break
            self._take_lines(timeout=0.2)
            # A window is complete 1.5 s after its end (ticks come every second).
            complete = int((time.monotonic() - self.go_at - 1.5) // WINDOW_SECONDS)
            self._print_windows(up_to=complete - 1)
        self._print_windows(up_to=max(self.windows, default=-1))

    def _print_windows(self, up_to: int) -> None:
        while self.printed < up_to and self.printed + 1 in self.windows:
            self.printed += 1
            self.say(format_window(self.windows[self.printed].summary()))

    def _take_lines(self, timeout: float) -> None:
        """Take worker lines off the queue for up to ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while (remaining := end - time.monotonic()) > 0:
            try:
                host, line = self.lines.get(timeout=remaining)
            except queue.Empty:
                return
            self._take(self.workers[host], line)

    def _take(self, worker: _WorkerProcess, line: str | None) -> None:
        if line is None:  # the worker's stdout closed
            worker.done = True
            return
        try:
            record = json.loads(line)
        except ValueError:
            return
        kind = record.get("kind")
        if kind == "connection":
            self.totals.add_connection(worker.host, record)
            if self.go_at is not None:
                self.say(
                    f"load: {worker.host} {record['account']} logged in again"
                    f" from {record['ip']}:{record['port']}"
                )
        elif kind == "ready":
            worker.ready = record
            self.totals.hosts[worker.host]["connected_at_start"] = record["connected"]
        elif kind == "tick" and self.go_at is not None:
            index = max(0, int((record["t"] - self.go_at - 1e-6) // WINDOW_SECONDS))
            self.windows.setdefault(index, Window(index)).add(worker.host, record)
            self.totals.add_tick(worker.host, record)
            worker.done = bool(record.get("final"))
        elif kind == "error":
            worker.done = True

    def _stop_workers(self) -> None:
        """Let finished workers exit, kill the rest by PID, forget them all."""
        for worker in self.workers.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(5 if worker.done else 0.1)
            worker.recorded.terminate()
            self.lab_state.forget_process(worker.recorded)
            if worker.process.stdin:
                with contextlib.suppress(OSError):
                    worker.process.stdin.close()
            worker.process.wait(5)


def _tell(process: subprocess.Popen, text: str) -> None:
    try:
        process.stdin.write(text)
        process.stdin.flush()
    except (BrokenPipeError, OSError):
        pass


def _pump(host: str, stream, lines: queue.Queue) -> None:
    """Move a worker's stdout lines into the coordinator's queue; None at EOF."""
    for line in stream:
        lines.put((host, line))
    lines.put((host, None))


class _Totals:
    """Run-wide counters, per host and per sender role."""

    def __init__(self, specs: Sequence[WorkerSpec]) -> None:
        self.hosts: dict[str, dict[str, Any]] = {
            spec.host: {
                "role": spec.role,
                "accounts": len(spec.accounts),
                "connected_at_start": 0,
                "sent": 0,
                "delivered_from": 0,
                "failures": 0,
                "connections": [],  # {"account", "ip", "port", "t"} per login
            }
            for spec in specs
        }
        self.ttd: dict[str, list[float]] = {role: [] for role in ROLES}

    def add_connection(self, host: str, record: dict[str, Any]) -> None:
        self.hosts[host]["connections"].append(
            {key: record[key] for key in ("account", "ip", "port", "t")}
        )

    def hosts_summary(self, go_at: float | None) -> dict[str, dict[str, Any]]:
        """Per host; each login's time as seconds after the go (negative: before it)."""

        def at_s(t: float) -> float | None:
            return None if go_at is None else round(t - go_at, 3)

        hosts = {}
        for name, numbers in self.hosts.items():
            connections = [
                {"account": c["account"], "ip": c["ip"], "port": c["port"], "at_s": at_s(c["t"])}
                for c in numbers["connections"]
            ]
            reconnects = sum(go_at is not None and c["t"] >= go_at for c in numbers["connections"])
            hosts[name] = numbers | {"connections": connections, "reconnects": reconnects}
        return hosts

    def add_tick(self, host: str, tick: dict[str, Any]) -> None:
        self.hosts[host]["sent"] += sum(tick["sent"].values())
        self.hosts[host]["failures"] += tick["failures"]
        for sender, count in tick["delivered_from"].items():
            if sender in self.hosts:
                self.hosts[sender]["delivered_from"] += count
        for role in ROLES:
            self.ttd[role].extend(tick["ttd"][role])

    def summary(self, windows, options, go_at, interrupted) -> dict[str, Any]:
        window_summaries = [windows[index].summary() for index in sorted(windows)]
        sent = _by_role()
        delivered = _by_role()
        for window in window_summaries:
            for role in ROLES:
                sent[role] += window["sent"][role]
                delivered[role] += window["delivered"][role]
        return {
            "interrupted": interrupted,
            "duration_s": options.duration,
            "ran_s": None if go_at is None else round(time.monotonic() - go_at, 3),
            "rate_per_minute": options.rate,
            "spam_rate_per_minute": options.spam_rate,
            "spam_reconnect_after_s": options.spam_reconnect_after,
            "accounts": sum(host["accounts"] for host in self.hosts.values()),
            "connected_at_start": sum(h["connected_at_start"] for h in self.hosts.values()),
            "sent": sent,
            "delivered": delivered,
            "bounced": sum(window["bounced"] for window in window_summaries),
            "failures": sum(host["failures"] for host in self.hosts.values()),
            "ttd_ms": {role: ttd_summary(self.ttd[role]) for role in ROLES},
            "hosts": self.hosts_summary(go_at),
            "windows": window_summaries,
        }


def format_totals(summary: dict[str, Any]) -> str:
    ttd = summary["ttd_ms"]["user"]
    lines = [
        "load summary"
        + (" (interrupted)" if summary["interrupted"] else "")
        + f": users logged in {summary['connected_at_start']}/{summary['accounts']},"
        f" connection failures {summary['failures']}",
        f"  sent      user {summary['sent']['user']:8d}   spam {summary['sent']['spam']:8d}",
        f"  delivered user {summary['delivered']['user']:8d}"
        f"   spam {summary['delivered']['spam']:8d}   bounced {summary['bounced']}",
        f"  TTD ms (user messages) p50 {_ms(ttd['p50'])}  p90 {_ms(ttd['p90'])}"
        f"  p99 {_ms(ttd['p99'])}  max {_ms(ttd['max'])}  n {ttd['n']}",
    ]
    for host, numbers in summary["hosts"].items():  # in lab order: c1, c2, ..., c10, x1
        lines.append(
            f"  {host:6s} {numbers['role']:4s} sent {numbers['sent']:8d}"
            f"  delivered {numbers['delivered_from']:8d}  failures {numbers['failures']}"
            + (f"  reconnects {numbers['reconnects']}" if numbers["reconnects"] else "")
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="lab load worker (started by the load command)")
    parser.add_argument("spec")
    sys.exit(worker_main([parser.parse_args().spec]))
