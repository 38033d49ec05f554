"""Reachability checks between lab hosts, with TCP because TCP is what breaks.

The hosts have no ping (iputils is not installed) and ping would not catch
the classic userspace-datapath failure anyway: with veth TX checksum offload
on, ICMP passes and every TCP segment arrives with a bad checksum.  So the
probe is a TCP echo of a payload larger than one segment, run by this
interpreter inside the host namespaces.
"""

from __future__ import annotations

import json
import os
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


# --- rate tests: a paced TCP sender and a sink that counts what arrives ------------------

#: Accepts connections on ip:port and reads everything; a sniffer thread (AF_PACKET on
#: eth0) counts the payload-bearing TCP segments and bytes that ARRIVE per source
#: "ip:port", and the counts are rewritten to a JSON file (atomically) every 0.2 s.
SINK = """
import json, os, socket, struct, sys, threading, time
ip, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
counts, lock = {}, threading.Lock()

def sniff():
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    raw.bind(("eth0", 0))
    while True:
        frame, address = raw.recvfrom(65535)
        if address[2] == socket.PACKET_OUTGOING or frame[12:14] != b"\\x08\\x00":
            continue
        ihl = (frame[14] & 0x0F) * 4
        if frame[23] != 6:
            continue
        total = struct.unpack("!H", frame[16:18])[0]
        tcp = 14 + ihl
        sport, dport = struct.unpack("!HH", frame[tcp:tcp + 4])
        payload = total - ihl - (frame[tcp + 12] >> 4) * 4
        if dport != port or payload <= 0:
            continue
        key = f"{socket.inet_ntoa(frame[26:30])}:{sport}"
        with lock:
            entry = counts.setdefault(key, [0, 0])
            entry[0] += 1
            entry[1] += payload

def drain(conn):
    with conn:
        while conn.recv(65536):
            pass

def dump():
    while True:
        with lock:
            text = json.dumps({k: {"packets": v[0], "bytes": v[1]} for k, v in counts.items()})
        with open(path + ".tmp", "w") as out:
            out.write(text)
        os.replace(path + ".tmp", path)
        time.sleep(0.2)

threading.Thread(target=sniff, daemon=True).start()
threading.Thread(target=dump, daemon=True).start()
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((ip, port))
server.listen(64)
while True:
    conn, _ = server.accept()
    threading.Thread(target=drain, args=(conn,), daemon=True).start()
"""

#: Connects from ip:src_port and sends ``size``-byte messages at ``rate`` per second
#: (TCP_NODELAY: one segment each while the path is clear), until killed.
PACED_SENDER = """
import socket, sys, time
server, port, src_ip, src_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rate, size = float(sys.argv[5]), int(sys.argv[6])
conn = socket.socket()
conn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
conn.bind((src_ip, src_port))
conn.settimeout(10)
conn.connect((server, port))
conn.settimeout(None)
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
message = b"<message><body>" + b"x" * max(0, size - 32) + b"</body></message>"
interval, deadline = 1.0 / rate, time.monotonic()
while True:
    conn.sendall(message)
    deadline += interval
    time.sleep(max(0.0, deadline - time.monotonic()))
"""


def serve_sink(host: Host, port: int, stats_path: str, timeout: float = 5.0) -> subprocess.Popen:
    """Start :data:`SINK` on ``host:port``; return once it listens and writes its counts."""
    process = host.spawn([sys.executable, "-c", SINK, host.ip, str(port), stats_path])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listening = netns.run_in(host.namespace, ["ss", "-Hltn", f"sport = :{port}"]).stdout
        if listening.strip() and os.path.exists(stats_path):
            return process
        if process.poll() is not None:
            raise RuntimeError(f"sink on {host.name} exited with {process.returncode}")
        time.sleep(0.05)
    raise TimeoutError(f"sink on {host.name}:{port} not ready after {timeout} s")


def sink_counts(stats_path: str) -> dict[str, dict[str, int]]:
    """``{"ip:port": {"packets": n, "bytes": n}}`` of payload-bearing segments so far."""
    try:
        with open(stats_path) as stats:
            return json.load(stats)
    except (OSError, ValueError):
        return {}


def start_paced_sender(
    client: Host, server_ip: str, port: int, *, src_port: int, rate: float, size: int = 200
) -> subprocess.Popen:
    """Start :data:`PACED_SENDER` on ``client`` (from ``client.ip:src_port``)."""
    return client.spawn(
        [
            sys.executable,
            "-c",
            PACED_SENDER,
            server_ip,
            str(port),
            client.ip,
            str(src_port),
            str(rate),
            str(size),
        ]
    )
