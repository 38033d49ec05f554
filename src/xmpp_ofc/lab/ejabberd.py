"""The lab's other XMPP server: Debian's ejabberd, as a process the lab starts itself.

ejabberd is the closer relative of the seed's MongooseIM (a fork of it).  It
runs in the server host's namespace with everything of its own under the
lab's directory: config, ctl config, mnesia spool, logs, pidfile, Erlang
cookie (``$HOME/.erlang.cookie``, HOME being that directory) and node name
``xofc_<tag>@localhost``.  /etc/ejabberd, /var/lib/ejabberd and the system
service are never used.

Every ejabberdctl call (start, account import, checks) goes through one
wrapper, :meth:`EjabberdServer.ctl`, because of traps measured here:

* ``su`` (which ejabberdctl uses when run as root) resets the open-files limit
  to 1024 through pam_limits: at ~1000 clients "too many open files".  The
  wrapper raises the limit with ``prlimit`` and becomes the ``ejabberd`` user
  with ``setpriv`` (no PAM), so ejabberdctl runs the VM directly.
* Erlang distribution normally needs an epmd daemon that outlives the server.
  ``ERL_DIST_PORT`` makes the node listen on a fixed port and ctl calls dial
  it straight away: no epmd at all, and distribution only on 127.0.0.1 of the
  server's namespace (``inet_dist_use_interface``), so labs never collide.
* ejabberdctl sources /etc/default/ejabberd (a pid path under the missing
  /run/ejabberd) unless given its own ``--ctl-config``.
* ctl calls from another namespace fail with "nodedown": the wrapper always
  enters the server's namespace.

ejabberdctl stays the parent of the VM (``beam.smp``), so killing the spawned
PID would not stop the server.  The VM's PID, from the pidfile, is recorded
as its own process: SIGTERM to it shuts ejabberd down cleanly in ~1 s.

The config turns off what would throttle a flood before the switch sees it
(the stock shaper of 3000 B/s, mod_fail2ban, session and offline limits) and
raises the listener backlog from 5 to 4096.  Accounts are imported in one ctl
call from a XEP-0227 (PIEFXIS) file: ~0.5 s for a thousand, where
``ejabberdctl register`` costs ~0.3 s each.
"""

from __future__ import annotations

import os
import pwd
import resource
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from xmpp_ofc.lab import netns, state
from xmpp_ofc.lab.xmpp_server import XMPP_PORT, Account

PROGRAM = "ejabberdctl"
CTL_PATH = "/usr/sbin/ejabberdctl"
DEBIAN_PACKAGE = "ejabberd"
USER = "ejabberd"
#: Erlang distribution port, on 127.0.0.1 of the server's own namespace.
DIST_PORT = 5210
MAX_OPEN_FILES = 65536
CTL_TIMEOUT = 30.0
IMPORT_RETRY_S = 10.0

CONFIG_TEMPLATE = """\
# Written by the xmpp_ofc lab; rewritten at every `lab up`.
hosts: [{domain}]
loglevel: {log_level}   # info sends the logger into drop mode under many clients
certfiles: []
auth_method: internal
auth_password_format: plain
auth_cache_size: 100000
listen:
  - port: {port}
    ip: "{address}"
    module: ejabberd_c2s
    backlog: 4096      # the default 5 stalls mass logins
    shaper: none
    access: c2s
    starttls: false
    max_stanza_size: 262144
access_rules:
  c2s:
    allow: all
shaper_rules:
  c2s_shaper: none     # the stock "normal" shaper is 3000 B/s: it would hide a flood
  max_user_sessions: 100
  max_user_offline_messages: 100
api_permissions:
  "lab console":
    from: [ejabberd_ctl]
    who: all
    what: "*"
# No mod_fail2ban (bans an address after 20 failed logins), no s2s listener.
modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
"""

CTL_CONFIG_TEMPLATE = """\
# Written by the xmpp_ofc lab: replaces /etc/default/ejabberd for this node.
EJABBERD_PID_PATH={pidfile}
EJABBERD_BYPASS_WARNINGS=true
ERL_DIST_PORT={dist_port}
ERL_OPTIONS="-kernel inet_dist_use_interface {{127,0,0,1}}"
"""


def node_name(tag: str) -> str:
    """The lab's Erlang node: short name, never the system's ``ejabberd@localhost``."""
    return f"xofc_{tag}@localhost"


def piefxis(accounts: Iterable[Account]) -> str:
    """Accounts as a XEP-0227 document, the format ``ejabberdctl import_piefxis`` reads."""
    by_domain: dict[str, list[Account]] = {}
    for account in accounts:
        by_domain.setdefault(account.domain, []).append(account)
    lines = ["<?xml version='1.0' encoding='UTF-8'?>", "<server-data xmlns='urn:xmpp:pie:0'>"]
    for domain, members in by_domain.items():
        lines.append(f"<host jid={quoteattr(domain)}>")
        lines += [
            f"<user name={quoteattr(a.user)} password={quoteattr(a.password)}/>" for a in members
        ]
        lines.append("</host>")
    lines.append("</server-data>")
    return "\n".join(lines) + "\n"


def open_files_limit() -> int:
    """The open-files limit the VM gets: the hard limit (root may not raise it), capped."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, MAX_OPEN_FILES)


@dataclass
class EjabberdServer:
    """An ejabberd node whose files all live under ``directory``.

    Same surface as :class:`~xmpp_ofc.lab.xmpp_server.ProsodyServer`:
    :meth:`start` writes the files, starts it in ``namespace`` through a spawner
    that records PIDs, waits for the listener and creates the accounts.
    """

    directory: Path
    namespace: str
    address: str
    tag: str
    domain: str = "lab.test"
    port: int = XMPP_PORT
    log_level: str = "warning"
    kind = "ejabberd"

    @property
    def config_path(self) -> Path:
        return self.directory / "ejabberd.yml"

    @property
    def ctl_config_path(self) -> Path:
        return self.directory / "ejabberdctl.cfg"

    @property
    def pidfile(self) -> Path:
        return self.directory / "ejabberd.pid"

    @property
    def spool_dir(self) -> Path:
        return self.directory / "db"

    @property
    def logs_dir(self) -> Path:
        return self.directory / "log"

    @property
    def log_path(self) -> Path:
        """ejabberd's own log (its console output goes to ``console.log`` beside it)."""
        return self.logs_dir / "ejabberd.log"

    @property
    def console_log_path(self) -> Path:
        return self.logs_dir / "console.log"

    @property
    def node(self) -> str:
        return node_name(self.tag)

    def ctl_command(self, *args: str) -> list[str]:
        """``ejabberdctl <args>`` for this node, as the ejabberd user with a high nofile limit.

        Runs where it is started: :meth:`ctl` and the spawner put it in the namespace.
        """
        limit = open_files_limit()
        return [
            "prlimit", f"--nofile={limit}:{limit}",
            "setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups",
            "env", f"HOME={self.directory}",
            CTL_PATH,
            "--config-dir", str(self.directory),
            "--config", str(self.config_path),
            "--ctl-config", str(self.ctl_config_path),
            "--spool", str(self.spool_dir),
            "--logs", str(self.logs_dir),
            "--node", self.node,
            *args,
        ]  # fmt: skip

    def command(self) -> list[str]:
        """The server in the foreground: the spawned PID is ejabberdctl, the VM its child."""
        return self.ctl_command("foreground")

    def ctl(self, *args: str, timeout: float = CTL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run an ejabberdctl command against the running node (bounded, not checked)."""
        return netns.run_in(self.namespace, self.ctl_command(*args), timeout=timeout, check=False)

    # --- files ---------------------------------------------------------------

    def write_config(self) -> None:
        """Write config, ctl config, cookie and an empty inetrc, all owned by ejabberd."""
        self._check_reachable()
        for folder in (self.directory, self.spool_dir, self.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            CONFIG_TEMPLATE.format(
                domain=self.domain, port=self.port, address=self.address, log_level=self.log_level
            )
        )
        self.ctl_config_path.write_text(
            CTL_CONFIG_TEMPLATE.format(pidfile=self.pidfile, dist_port=DIST_PORT)
        )
        # ejabberdctl points ERL_INETRC here; without the file every VM logs an error.
        (self.directory / "inetrc").write_text("%% The system resolver.\n")
        cookie = self.directory / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        self._own(self.directory)

    def _own(self, top: Path) -> None:
        entry = pwd.getpwnam(USER)
        for path in [top, *top.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _check_reachable(self) -> None:
        """The ejabberd user must be able to reach the directory (a 0700 parent stops it)."""
        for parent in self.directory.parents:
            if parent.exists() and not parent.stat().st_mode & 0o001:
                raise PermissionError(
                    f"ejabberd runs as user {USER!r} and cannot enter {parent} (mode "
                    f"{parent.stat().st_mode & 0o777:o}); use a lab directory others may "
                    f"traverse (${state.STATE_ROOT_ENV})"
                )

    # --- start ---------------------------------------------------------------

    def start(
        self,
        spawn: Callable[[Sequence[str], Path, str], subprocess.Popen],
        record: Callable[[int, str], object],
        accounts: Iterable[Account],
        timeout: float = 30.0,
    ) -> None:
        """Start the node, record its VM, wait for the listener, import ``accounts``.

        ``spawn(args, log, what)`` starts a process in the namespace and records
        it; ``record(pid, what)`` records one that something else started.
        """
        accounts = list(accounts)
        self.write_config()
        self.pidfile.unlink(missing_ok=True)
        wrapper = spawn(self.command(), self.console_log_path, "ejabberdctl foreground")
        self.wait_ready(alive=lambda: wrapper.poll() is None, record=record, timeout=timeout)
        if accounts:
            self.add_accounts(accounts)

    def wait_ready(
        self, alive: Callable[[], bool], record: Callable[[int, str], object], timeout: float
    ) -> None:
        """Record the VM once its pidfile appears, then wait until the port accepts."""
        deadline = time.monotonic() + timeout
        recorded = False
        while time.monotonic() < deadline:
            if not recorded:
                pid = state.read_pidfile(self.pidfile)
                if pid is not None and state.start_time(pid) is not None:
                    record(pid, "ejabberd (beam.smp)")
                    recorded = True
            if recorded and self.accepts():
                return
            if not alive():
                raise RuntimeError(f"ejabberd exited during start-up; log:\n{self.log_tail()}")
            time.sleep(0.05)
        raise TimeoutError(
            f"ejabberd did not accept on {self.address}:{self.port} within {timeout} s; "
            f"log:\n{self.log_tail()}"
        )

    def accepts(self, timeout: float = 0.5) -> bool:
        """Whether the c2s port accepts a TCP connection, tried from inside its namespace."""
        with netns.entered(self.namespace):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with probe:
            probe.settimeout(timeout)
            try:
                probe.connect((self.address, self.port))
            except OSError:
                return False
            return True

    # --- accounts --------------------------------------------------------------

    def add_accounts(self, accounts: Iterable[Account]) -> int:
        """Create the accounts on the running node with one ``import_piefxis`` call.

        Then checks with ``registered_users`` that every one exists, so a silent
        import failure stops ``up`` instead of failing logins later.
        """
        accounts = list(accounts)
        path = self.directory / "accounts.xml"
        path.write_text(piefxis(accounts))
        self._own(path)
        # Retried (bounded): a node whose listener is up may still be finishing start-up.
        deadline = time.monotonic() + IMPORT_RETRY_S
        while True:
            result = self.ctl("import_piefxis", str(path))
            if result.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"ejabberdctl import_piefxis failed: {result.stdout}{result.stderr}"
                )
            time.sleep(0.5)
        for domain in sorted({account.domain for account in accounts}):
            wanted = {account.user for account in accounts if account.domain == domain}
            listed = self.ctl("registered_users", domain)
            missing = wanted - set(listed.stdout.split())
            if listed.returncode != 0 or missing:
                raise RuntimeError(
                    f"ejabberd: {len(missing)} accounts of {domain} missing after the import "
                    f"(e.g. {sorted(missing)[:3]}): {listed.stdout[-500:]}{listed.stderr[-500:]}"
                )
        return len(accounts)

    def log_tail(self, size: int = 3000) -> str:
        parts = []
        for path in (self.console_log_path, self.log_path):
            try:
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-size:]}")
            except FileNotFoundError:
                parts.append(f"--- {path.name}: (none)")
        return "\n".join(parts)


def installed() -> bool:
    return shutil.which(PROGRAM, path=f"{os.environ.get('PATH', '')}:/usr/sbin") is not None
