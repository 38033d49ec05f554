"""What a lab run owns, written down so it can be removed after a crash.

A lab run is identified by a short *tag*.  Everything it creates carries it:
namespaces are ``xofc-<tag>-<name>`` and files live in ``<state root>/<tag>/``
(run/db/log directories and ``state.json``).  ``state.json`` records every
process the lab started (PID plus its kernel start time, so a recycled PID is
never mistaken for ours) and every namespace.  :func:`cleanup` needs nothing
but the tag: it kills exactly the recorded processes, then deletes the tag's
namespaces once no process is left in them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xmpp_ofc.lab import netns

PREFIX = "xofc"
TAG_PATTERN = re.compile(r"^[a-z0-9]{1,12}$")
STATE_ROOT_ENV = "XMPP_OFC_LAB_DIR"
# Short on purpose: OVS puts unix sockets here and sun_path holds 108 bytes.
DEFAULT_STATE_ROOT = Path("/run/xmpp_ofc-lab")


def state_root() -> Path:
    if STATE_ROOT_ENV in os.environ:
        return Path(os.environ[STATE_ROOT_ENV])
    if DEFAULT_STATE_ROOT.parent.is_dir():
        return DEFAULT_STATE_ROOT
    return Path(tempfile.gettempdir()) / DEFAULT_STATE_ROOT.name


def new_tag() -> str:
    """A fresh random tag, so concurrent runs never share a name."""
    return "t" + secrets.token_hex(4)


def check_tag(tag: str) -> str:
    if not TAG_PATTERN.match(tag):
        raise ValueError(f"lab tag {tag!r} must be 1-12 characters of [a-z0-9]")
    return tag


def namespace_name(tag: str, name: str) -> str:
    return f"{PREFIX}-{check_tag(tag)}-{name}"


def namespaces_of(tag: str) -> list[str]:
    """Existing namespaces that belong to ``tag`` (by prefix, crash or not)."""
    prefix = f"{PREFIX}-{check_tag(tag)}-"
    return [name for name in netns.list_namespaces() if name.startswith(prefix)]


def tag_dir(tag: str) -> Path:
    return state_root() / check_tag(tag)


def known_tags() -> list[str]:
    """Tags that left a state directory or a namespace behind."""
    tags = set()
    if state_root().is_dir():
        tags.update(path.name for path in state_root().iterdir() if TAG_PATTERN.match(path.name))
    for name in netns.list_namespaces():
        parts = name.split("-", 2)
        if len(parts) == 3 and parts[0] == PREFIX and TAG_PATTERN.match(parts[1]):
            tags.add(parts[1])
    return sorted(tags)


# --- processes ---------------------------------------------------------------


def start_time(pid: int) -> int | None:
    """The process start time in clock ticks (field 22 of /proc/<pid>/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces; the fields after it don't.
    return int(stat.rsplit(")", 1)[1].split()[19])


@dataclass(frozen=True)
class RecordedProcess:
    """A process the lab started: enough to find it again and to be sure it's ours."""

    pid: int
    started: int
    what: str

    @classmethod
    def of(cls, pid: int, what: str) -> RecordedProcess:
        started = start_time(pid)
        if started is None:
            raise ProcessLookupError(f"{what} (pid {pid}) is not running")
        return cls(pid, started, what)

    def alive(self) -> bool:
        """Still running and still the same process (not a recycled PID)."""
        return start_time(self.pid) == self.started and not _is_zombie(self.pid)

    def terminate(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; wait until it is gone."""
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            if not self.alive():
                return
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not self.alive():
                    return
                time.sleep(0.02)
        raise TimeoutError(f"{self.what} (pid {self.pid}) survived SIGKILL")


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def read_pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


# --- the state file ------------------------------------------------------------


@dataclass
class LabState:
    """The contents of ``state.json`` for one tag, saved after every change."""

    tag: str
    namespaces: list[str] = field(default_factory=list)
    processes: list[RecordedProcess] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return tag_dir(self.tag) / "state.json"

    @classmethod
    def load(cls, tag: str) -> LabState:
        path = tag_dir(tag) / "state.json"
        try:
            raw = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return cls(tag)
        processes = [RecordedProcess(**entry) for entry in raw.get("processes", [])]
        return cls(tag, list(raw.get("namespaces", [])), processes)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        data = {
            "tag": self.tag,
            "namespaces": self.namespaces,
            "processes": [asdict(process) for process in self.processes],
        }
        temporary.write_text(json.dumps(data, indent=1))
        temporary.replace(self.path)

    def add_namespace(self, namespace: str) -> None:
        self.namespaces.append(namespace)
        self.save()

    def add_process(self, pid: int, what: str) -> RecordedProcess:
        process = RecordedProcess.of(pid, what)
        self.processes.append(process)
        self.save()
        return process

    def forget_process(self, process: RecordedProcess) -> None:
        if process in self.processes:
            self.processes.remove(process)
            self.save()


def cleanup(tag: str, timeout: float = 10.0) -> None:
    """Remove everything ``tag`` owns, also after a crash of whoever built it.

    Kills the recorded processes, plus the daemons named by pidfiles in the
    tag's directory whose command line points into that directory (they may
    have started just before a crash, before being recorded); then deletes the
    tag's namespaces; then the tag's directory.  Processes we did not record
    are never touched: a namespace that still holds one is left in place and
    reported.
    """
    state = LabState.load(tag)
    # Newest first: relays and clients before the daemons they talk to.
    for process in [*reversed(state.processes), *_pidfile_processes(tag)]:
        process.terminate()
    stuck: dict[str, list[int]] = {}
    for namespace in namespaces_of(tag):
        deadline = time.monotonic() + timeout
        while netns.pids(namespace) and time.monotonic() < deadline:
            time.sleep(0.05)
        if netns.pids(namespace):
            stuck[namespace] = netns.pids(namespace)
            continue
        netns.delete(namespace)
    if stuck:
        raise netns.CommandError(f"lab {tag}: processes not started by the lab remain: {stuck}")
    shutil.rmtree(tag_dir(tag), ignore_errors=True)


def _pidfile_processes(tag: str) -> list[RecordedProcess]:
    directory = tag_dir(tag)
    found = []
    for pidfile in directory.rglob("*.pid") if directory.is_dir() else []:
        pid = read_pidfile(pidfile)
        if pid is None or start_time(pid) is None:
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except FileNotFoundError:
            continue
        if str(directory) in cmdline:
            try:
                found.append(RecordedProcess.of(pid, f"pidfile {pidfile.name}"))
            except ProcessLookupError:
                continue
    return found
