"""A live controller with something to show, and a headless Chromium to look at it.

Shared by the dashboard's browser test and ``scripts/dashboard_screenshot.py``:
the real controller process (short history interval and 1 s polls, so the page
fills in seconds) fed by a fake switch that connects, sends learning-switch
packet-ins, opens XMPP client connections whose monitor flows count up at
different speeds (one of them a flood, blocked automatically), plus one block
made by hand over REST.  The browser is Debian's chromium driven through its
chromedriver, both named explicitly: Selenium never downloads anything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyof.v0x04.asynchronous.packet_in import PacketIn
from pyof.v0x04.common.header import Type
from pyof.v0x04.controller2switch.common import MultipartType

from napps.xmpp_ofc.rate_limiter import flows
from napps.xmpp_ofc.rate_limiter.flows import Client
from xmpp_ofc import cookies
from xmpp_ofc.cookies import Kind, Owner
from xmpp_ofc.openflow.match import match_from_dict
from xmpp_ofc.testing import frames
from xmpp_ofc.testing.controller import ControllerProcess
from xmpp_ofc.testing.fake_switch import FakeSwitch, Received, flow_stats

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DASHBOARD_PATH = "xmpp_ofc/dispatcher/v1/dashboard/"
RATE_LIMITER = "xmpp_ofc/rate_limiter/v1"
XMPP_PORT = 5222
SERVER_IP = "10.0.0.1"
DPID = 0xD1
#: Well-behaved clients (packets per 1 s poll: 30-60/min, under the threshold) and a flood.
CLIENTS = {
    Client("10.0.0.11", 40011): 1,
    Client("10.0.0.12", 40012): 1,
    Client("10.0.0.13", 40013): 0,
    Client("10.0.0.99", 40099): 20,
}
#: Blocked by hand over REST: the row whose Unblock button the test clicks.
MANUAL_BLOCK = Client("10.0.0.66", 40066)
CONTROLLER_ENV = {
    "XMPP_OFC_DISPATCHER_HISTORY_INTERVAL": "1",
    "XMPP_OFC_RATE_LIMITER_POLL_INTERVAL": "1",
    "XMPP_OFC_RATE_LIMITER_TIMER_INTERVAL": "0.2",
    "XMPP_OFC_RATE_LIMITER_XMPP_PORTS": str(XMPP_PORT),
    "KYTOS_OF_CORE_STATS_INTERVAL": "3600",
}


def missing_browser() -> str | None:
    """Why the browser cannot run here (None: it can)."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        return f"missing {', '.join(missing)} (Debian: apt-get install chromium chromium-driver)"
    return None


def headless_chromium(user_data_dir: Path, width: int = 1280, height: int = 1100) -> Any:
    """A Selenium driver for a fresh, offline-minded headless Chromium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={user_data_dir}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    service = Service(executable_path=str(CHROMEDRIVER))
    return webdriver.Chrome(service=service, options=options)


def wait_until(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll ``condition`` until it is truthy; AssertionError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.1)


class ClientsSwitch(FakeSwitch):
    """A fake switch whose client monitor flows count up at each rate-limiter poll."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, on_message=self._on_message, **kwargs)
        self.per_poll: dict[Client, int] = {}
        self._counts: dict[Client, int] = {}
        self._started = time.monotonic()
        self._lock = threading.Lock()

    def open_connection(self, client: Client, packets_per_poll: int) -> None:
        """The client's SYN reaches the capture flow: a capture packet-in."""
        with self._lock:
            self.per_poll[client] = packets_per_poll
        frame = frames.tcp4_frame(
            eth_src="02:00:00:00:00:02",
            eth_dst="02:00:00:00:00:01",
            ip_src=client.ip,
            ip_dst=SERVER_IP,
            tp_src=client.port,
            tp_dst=XMPP_PORT,
            flags=0x02,
        )
        self.send(
            PacketIn(
                buffer_id=0xFFFFFFFF,
                total_len=len(frame),
                reason=1,
                table_id=0,
                cookie=cookies.encode(Owner.RATE_LIMITER, Kind.CAPTURE, flows.CAPTURE_ID_IPV4),
                match=match_from_dict({"in_port": 2}),
                data=frame,
            )
        )

    def learning_traffic(self, hosts: int = 3) -> None:
        """ARP broadcasts from a few hosts: table-1 misses for l2_switch."""
        for number in range(hosts):
            mac = f"02:00:00:00:01:{number:02x}"
            body = frames.arp(1, mac, f"10.0.1.{number + 1}", "00:00:00:00:00:00", SERVER_IP)
            frame = frames.ethernet("ff:ff:ff:ff:ff:ff", mac, 0x0806, body)
            self.send(
                PacketIn(
                    buffer_id=0xFFFFFFFF,
                    total_len=len(frame),
                    reason=0,
                    table_id=1,
                    cookie=cookies.encode(Owner.L2_SWITCH, Kind.TABLE_MISS),
                    match=match_from_dict({"in_port": 1 + number % 3}),
                    data=frame,
                )
            )

    def _on_message(self, item: Received) -> None:
        """Before the automatic reply to a cookie-filtered flow poll: count up."""
        if item.message_type != Type.OFPT_MULTIPART_REQUEST or item.message is None:
            return
        if int(item.message.multipart_type) != MultipartType.OFPMP_FLOW:
            return
        if not int(item.message.body.cookie_mask):
            return
        age = time.monotonic() - self._started
        with self._lock:
            entries = []
            for client, per_poll in self.per_poll.items():
                count = self._counts.get(client, 0) + per_poll
                self._counts[client] = count
                entries.append(
                    flow_stats(
                        flows.monitor_flow(client, XMPP_PORT, idle_timeout=120),
                        packet_count=count,
                        byte_count=count * 400,
                        duration_sec=int(age),
                    )
                )
            self.flows = entries


class DashboardScene:
    """Controller + fed switch + a manual block; ``url`` is the dashboard."""

    def __init__(self, base_dir: Path) -> None:
        env = {
            **CONTROLLER_ENV,
            "XMPP_OFC_RATE_LIMITER_DB_PATH": str(base_dir / "rate_limiter.sqlite"),
        }
        self.controller = ControllerProcess(base_dir, env=env)
        self.switch: ClientsSwitch | None = None

    @property
    def url(self) -> str:
        return self.controller.api_url(DASHBOARD_PATH)

    @property
    def dpid(self) -> str:
        assert self.switch is not None
        return self.switch.dpid_str

    def start(self) -> DashboardScene:
        self.controller.start()
        try:
            self.switch = ClientsSwitch(
                "127.0.0.1", self.controller.of_port, dpid=DPID, ports=(1, 2, 3)
            )
            self.switch.connect()
            self.switch.handshake()
            wait_until(self._rate_limiter_active, what="rate limiter active on the switch")
            self.switch.learning_traffic()
            for client, per_poll in CLIENTS.items():
                self.switch.open_connection(client, per_poll)
            wait_until(self._clients_monitored, what="clients monitored")
            status, body = self.controller.post(
                f"{RATE_LIMITER}/blocked",
                {
                    "dpid": self.dpid,
                    "ip": MANUAL_BLOCK.ip,
                    "port": MANUAL_BLOCK.port,
                    "duration": 900,
                    "reason": "abuse report",
                },
            )
            assert status == 201, body
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.switch is not None:
            self.switch.close()
        self.controller.stop()

    def __enter__(self) -> DashboardScene:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def blocked(self) -> list[dict[str, Any]]:
        status, body = self.controller.get(f"{RATE_LIMITER}/blocked")
        assert status == 200, body
        return body["blocked"]

    def _rate_limiter_active(self) -> bool:
        status, body = self.controller.get(f"{RATE_LIMITER}/status")
        return status == 200 and body["switches"].get(self.dpid, {}).get("connected", False)

    def _clients_monitored(self) -> bool:
        status, body = self.controller.get(f"{RATE_LIMITER}/monitored")
        return status == 200 and len(body["monitored"]) >= len(CLIENTS) - 1
