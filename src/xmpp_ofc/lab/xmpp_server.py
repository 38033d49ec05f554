"""The lab's default XMPP server: Debian's prosody, run as a plain process in a host namespace.

Why prosody is the default (``--server ejabberd`` runs the closer relative of
the seed's MongooseIM instead, see :mod:`xmpp_ofc.lab.ejabberd`): from a
harness prosody is one process with one PID, accepts connections within
0.25 s of launch, needs 16 MB, keeps accounts as plain files and runs as root
with one option.  ejabberd needs a wrapper against three traps measured here
(``su`` resetting the open-files limit to 1024, epmd outliving the server, a
listener backlog of 5) and ~1 s to start.  Both delivered every message up to
thousands per second, which is all the lab asks of it.

The configuration turns off what would hide a flood from the switch or confuse
a network rate limiter: no ``mod_limits`` (Debian's stock config shapes every
client to ~10 kB/s), plaintext with SASL PLAIN allowed (the load needs no TLS),
no s2s and no offline storage, client connections only on the server host's
address, and a listen backlog of 4096 (the default 128 overflows when a few
hundred clients log in at once).  Nothing is read from or written to
/etc/prosody: config, data, pidfile and the (empty) certs directory live under
the lab's own directory.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from xmpp_ofc.lab import netns

XMPP_PORT = 5222
PROGRAM = "prosody"
DEBIAN_PACKAGE = "prosody"

CONFIG_TEMPLATE = """\
-- Written by the xmpp_ofc lab; rewritten at every `lab up`.
run_as_root = true                      -- mod_posix refuses root otherwise
pidfile = "{pidfile}"
data_path = "{data}"
plugin_paths = {{ }}
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping"; "posix"; }}
modules_disabled = {{ "s2s"; "offline"; }}  -- s2s is autoloaded and would listen on 5269
c2s_ports = {{ {port} }}
c2s_interfaces = {{ "{address}" }}
c2s_require_encryption = false          -- else no SASL mechanism is offered on plaintext
allow_unencrypted_plain_auth = true     -- else PLAIN is hidden on plaintext
authentication = "internal_plain"
network_settings = {{ tcp_backlog = 4096 }}
log = {{ {{ levels = {{ min = "{log_level}" }}, to = "console" }} }}
-- No "limits" module: it would shape every client to ~10 kB/s and hide floods.

VirtualHost "{domain}"
"""


def lua_string(text: str) -> str:
    """A Lua double-quoted string literal for ``text``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def store_name(name: str) -> str:
    """How prosody's file storage spells a host or user name as a path segment.

    Its datamanager replaces every byte that is not an ASCII letter or digit
    (Lua's ``%W``) with ``%xx`` in lower-case hex: ``lab.test`` is stored as
    ``lab%2etest``.
    """
    return "".join(
        char if char.isascii() and char.isalnum() else "".join(f"%{b:02x}" for b in char.encode())
        for char in name
    )


@dataclass(frozen=True)
class Account:
    """One XMPP account the lab created: ``user@domain`` with a password."""

    user: str
    domain: str
    password: str

    @property
    def jid(self) -> str:
        return f"{self.user}@{self.domain}"


@dataclass
class ProsodyServer:
    """A prosody instance whose files all live under ``directory``.

    ``address`` is the server host's address (the only one it listens on);
    ``namespace`` is where it runs.  Start it through a process spawner that
    records the PID (the lab's :class:`~xmpp_ofc.lab.topology.Host.spawn`),
    so it is stopped by PID, also after a crash.
    """

    directory: Path
    namespace: str
    address: str
    domain: str = "lab.test"
    port: int = XMPP_PORT
    log_level: str = "info"
    kind = "prosody"

    @property
    def config_path(self) -> Path:
        return self.directory / "prosody.cfg.lua"

    @property
    def pidfile(self) -> Path:
        return self.directory / "prosody.pid"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / "prosody.log"

    def command(self) -> list[str]:
        """Foreground (``-F``), so the spawned PID is prosody itself."""
        return [PROGRAM, "--config", str(self.config_path), "-F"]

    # --- files ---------------------------------------------------------------

    def write_config(self) -> None:
        """Write the config; an empty certs/ dir keeps prosody's certmanager quiet."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "certs").mkdir(exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        self.config_path.write_text(
            CONFIG_TEMPLATE.format(
                pidfile=self.pidfile,
                data=self.data_dir,
                port=self.port,
                address=self.address,
                domain=self.domain,
                log_level=self.log_level,
            )
        )

    def add_accounts(self, accounts: Iterable[Account]) -> int:
        """Create accounts by writing prosody's account files directly.

        With ``internal_plain`` an account is the file
        ``data/<host>/accounts/<user>.dat`` holding a Lua table with the
        password: exactly what ``prosodyctl register`` writes, but about
        1000 times faster (prosodyctl starts a Lua VM per account, ~40 ms).
        Works whether the server runs or not: prosody reads the file at login.
        """
        count = 0
        for account in accounts:
            folder = self.data_dir / store_name(account.domain) / "accounts"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{store_name(account.user)}.dat"
            path.write_text(f'return {{\n\t["password"] = {lua_string(account.password)};\n}};\n')
            count += 1
        return count

    def start(
        self,
        spawn: Callable[[Sequence[str], Path, str], subprocess.Popen],
        record: Callable[[int, str], object],
        accounts: Iterable[Account],
        timeout: float = 15.0,
    ) -> None:
        """Write config and accounts, start prosody through ``spawn``, wait for the port.

        ``spawn(args, log, what)`` starts and records the process; ``record`` is
        unused (prosody is the spawned PID itself) but keeps one signature with
        :meth:`xmpp_ofc.lab.ejabberd.EjabberdServer.start`.
        """
        del record
        self.write_config()
        self.add_accounts(accounts)
        process = spawn(self.command(), self.log_path, PROGRAM)
        self.wait_ready(alive=lambda: process.poll() is None, timeout=timeout)

    # --- readiness -------------------------------------------------------------

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

    def wait_ready(self, alive, timeout: float = 15.0) -> None:
        """Wait until the port accepts; ``alive()`` says whether the process still runs.

        Raises with the log's tail when prosody exits or stays silent, so a
        config error is visible at once.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.accepts():
                return
            if not alive():
                raise RuntimeError(f"prosody exited during start-up; log:\n{self.log_tail()}")
            time.sleep(0.05)
        raise TimeoutError(
            f"prosody did not accept on {self.address}:{self.port} within {timeout} s; "
            f"log:\n{self.log_tail()}"
        )

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except FileNotFoundError:
            return "(no log)"


def installed() -> bool:
    return shutil.which(PROGRAM) is not None
