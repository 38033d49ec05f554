"""Reachability checks between lab hosts, with TCP because TCP is what breaks.

The hosts have no ping (iputils is not installed) and ping would not catch
the classic userspace-datapath failure anyway: with veth TX checksum offload
on, ICMP passes and every TCP segment arrives with a bad checksum.  So the
probe is a TCP echo of a payload larger than one segment, run by this
interpreter inside the host namespaces.
"""

from __future__ import annotations

import subprocess
import sys
import time

from xmpp_ofc.lab import netns
from xmpp_ofc.lab.topology import Host

ECHO_SERVER = """
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(16)
while True:
    conn, _ = server.accept()
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
"""

ECHO_CLIENT = """
import socket, sys
size = int(sys.argv[3])
payload = bytes(range(256)) * (size // 256)
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[4])) as conn:
    conn.sendall(payload)
    conn.shutdown(socket.SHUT_WR)
    received = bytearray()
    while chunk := conn.recv(65536):
        received += chunk
sys.exit(0 if received == payload else 3)
"""


def serve_echo(host: Host, port: int, timeout: float = 5.0) -> subprocess.Popen:
    """Start a TCP echo server on ``host:port``; return once it listens."""
    process = host.spawn([sys.executable, "-c", ECHO_SERVER, host.ip, str(port)])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listening = netns.run_in(host.namespace, ["ss", "-Hltn", f"sport = :{port}"]).stdout
        if listening.strip():
            return process
        if process.poll() is not None:
            raise RuntimeError(f"echo server on {host.name} exited with {process.returncode}")
        time.sleep(0.05)
    raise TimeoutError(f"echo server on {host.name}:{port} not listening after {timeout} s")


def tcp_echo_works(
    client: Host, server_ip: str, port: int, *, size: int = 65536, timeout: float = 3.0
) -> bool:
    """Whether ``client`` gets ``size`` bytes echoed back intact by ``server_ip:port``."""
    result = client.run(
        [sys.executable, "-c", ECHO_CLIENT, server_ip, str(port), str(size), str(timeout)],
        timeout=timeout * 3 + 5,
        check=False,
    )
    return result.returncode == 0
