"""Network namespaces and veth pairs, driven through iproute2.

Every host of the lab and every Open vSwitch instance lives in its own network
namespace, so the lab never touches the root namespace's interfaces, routes or
addresses: veth pairs are created straight into their two namespaces
(``ip -n A link add X type veth peer name Y netns B``) and nothing appears in
the root namespace.  Deleting either namespace destroys the pair.

Also here: ``setns`` through libc, because Python 3.11 has no ``os.setns`` and
the relay must create a listening socket inside a namespace while the rest of
its process stays in the root namespace (the network namespace is per thread).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
DEFAULT_TIMEOUT = 10.0


class CommandError(RuntimeError):
    """A lab command failed; the message carries its command line and stderr."""


def run(
    args: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, check: bool = True, **kwargs
) -> subprocess.CompletedProcess[str]:
    """Run a command with a bounded wait; raise :class:`CommandError` with its stderr."""
    try:
        result = subprocess.run(
            list(args), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
    except subprocess.TimeoutExpired as error:
        raise CommandError(f"timed out after {timeout} s: {' '.join(args)}") from error
    if check and result.returncode != 0:
        raise CommandError(f"exit {result.returncode}: {' '.join(args)}\n{result.stderr.strip()}")
    return result


# --- namespaces ------------------------------------------------------------


def list_namespaces() -> list[str]:
    """Names of all named network namespaces (``ip netns list``)."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(entry.name for entry in NETNS_DIR.iterdir())


def exists(namespace: str) -> bool:
    return (NETNS_DIR / namespace).exists()


def create(namespace: str) -> None:
    """Create a namespace with its loopback up (OVS talks to the relay over it)."""
    run(["ip", "netns", "add", namespace])
    run(["ip", "-n", namespace, "link", "set", "lo", "up"])


def pids(namespace: str) -> list[int]:
    """PIDs of the processes whose network namespace is ``namespace``."""
    result = run(["ip", "netns", "pids", namespace], check=False)
    if result.returncode != 0:
        return []
    return [int(word) for word in result.stdout.split()]


def delete(namespace: str) -> None:
    """Delete a namespace; refuse while processes still live in it.

    ``ip netns del`` only removes the name: a process inside would keep the
    namespace (and its veths and addresses) alive, invisible to the next run.
    """
    if not exists(namespace):
        return
    remaining = pids(namespace)
    if remaining:
        raise CommandError(f"namespace {namespace} still has processes {remaining}")
    run(["ip", "netns", "del", namespace])


def exec_args(namespace: str, args: Sequence[str]) -> list[str]:
    """The command line that runs ``args`` inside ``namespace``.

    ``ip netns exec`` replaces itself with the program, so a Popen's pid is
    the program's pid.
    """
    return ["ip", "netns", "exec", namespace, *args]


def run_in(
    namespace: str,
    args: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command inside a namespace and wait for it (bounded)."""
    return run(exec_args(namespace, args), timeout=timeout, check=check, env=env)


# --- links -----------------------------------------------------------------


def add_veth(namespace_a: str, name_a: str, namespace_b: str, name_b: str) -> None:
    """Create a veth pair with one end in each namespace, both ends up."""
    run(
        [
            "ip", "-n", namespace_a, "link", "add", name_a,
            "type", "veth", "peer", "name", name_b, "netns", namespace_b,
        ]
    )  # fmt: skip
    run(["ip", "-n", namespace_a, "link", "set", name_a, "up"])
    run(["ip", "-n", namespace_b, "link", "set", name_b, "up"])


def configure_interface(
    namespace: str, device: str, *, mac: str, address: str, ipv6: bool = False
) -> None:
    """Give ``device`` a fixed MAC and IPv4 address and make its TCP work through OVS.

    TX checksum offload is switched off: with it on, veths hand the OVS
    userspace datapath packets whose TCP checksum is never finished, so ping
    works but every TCP SYN arrives with a bad checksum.  IPv6 is off unless
    asked for, so router solicitations and DAD do not show up in flow counters.
    """
    if not ipv6:
        run_in(namespace, ["sysctl", "-q", "-w", f"net.ipv6.conf.{device}.disable_ipv6=1"])
    run(["ip", "-n", namespace, "link", "set", device, "address", mac])
    run(["ip", "-n", namespace, "addr", "add", address, "dev", device])
    run(["ip", "-n", namespace, "link", "set", device, "up"])
    disable_tx_offload(namespace, device)


def disable_tx_offload(namespace: str, device: str) -> None:
    run_in(namespace, ["ethtool", "-K", device, "tx", "off"])


def tx_offload_enabled(namespace: str, device: str) -> bool:
    """Whether ``tx-checksumming`` is on for ``device`` (``ethtool -k``)."""
    output = run_in(namespace, ["ethtool", "-k", device]).stdout
    for line in output.splitlines():
        if line.startswith("tx-checksumming:"):
            return line.split(":", 1)[1].split()[0] == "on"
    raise CommandError(f"ethtool -k {device} in {namespace} shows no tx-checksumming")


# --- setns -----------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


@contextmanager
def entered(namespace: str) -> Iterator[None]:
    """Move the CALLING THREAD into ``namespace`` for the ``with`` block.

    Sockets created inside the block stay in that namespace for their whole
    life; everything else the thread does afterwards is back in the
    namespace it came from.  Don't await or hand the thread over inside.
    """
    with (
        open("/proc/thread-self/ns/net", "rb") as home,
        open(NETNS_DIR / namespace, "rb") as target,
    ):
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(home.fileno())
