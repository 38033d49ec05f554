"""The dashboard at 50k monitored clients: first render and bytes per refresh, in Chromium.

Builds the scene of ``tests/browser/test_dashboard_scale.py`` (a real controller,
a fake switch with N monitored clients; see ``tests/browser/scale_scene.py``), loads
the dashboard ``--loads`` times in a fresh headless Chromium tab and reports, per
load, when the first render happened (the page's ``xmpp_ofc:first-render`` mark,
from navigation start) and the bytes of each refresh (Resource Timing
``transferSize`` of the API fetches, headers included); then the time and size of
the REST calls the page makes, and of the whole list for comparison.

    flock /tmp/xofc-heavy.lock .venv/bin/python benchmarks/dashboard_scale.py \
        [--clients 50000] [--loads 5] [--refreshes 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("VIRTUAL_ENV", tempfile.mkdtemp(prefix="xmpp_ofc-bench-"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser.scale_scene import ScaleScene
from tests.browser.scene import RATE_LIMITER, headless_chromium, wait_until
from tests.browser.test_dashboard_scale import RESOURCES_JS

FIRST_RENDER_JS = (
    "const m = performance.getEntriesByName('xmpp_ofc:first-render');"
    "return m.length ? m[0].startTime : null;"
)
CALLS = (
    "monitored?sort=-packets_per_min&limit=50",
    "monitored?sort=-packets_per_min&limit=50&q=10.101.3.1:",
    "blocked?limit=100",
    "events?limit=15",
    "monitored?limit=1000",
)


def per_refresh(entries: list) -> list[int]:
    by_path: dict[str, list[int]] = {}
    for path, size, _start, _end in entries:
        by_path.setdefault(path, []).append(int(size))
    complete = min((len(sizes) for sizes in by_path.values()), default=0)
    return [sum(sizes[n] for sizes in by_path.values()) for n in range(complete)]


def timed_get(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        size = len(response.read())
    return time.perf_counter() - started, size


def main() -> None:
    # A timeout's SIGTERM must still stop the controller (the scene's __exit__).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50_000)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--refreshes", type=int, default=5)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="xmpp_ofc-dashboard-scale-") as base,
        ScaleScene(Path(base) / "controller", clients=args.clients) as scene,
    ):
        print(f"{args.clients} clients; set-up (s): {scene.setup_seconds}")
        driver = headless_chromium(Path(base) / "chromium")
        driver.set_page_load_timeout(60)
        try:
            for load in range(args.loads):
                driver.get("about:blank")
                driver.get(scene.url)
                driver.execute_script("performance.setResourceTimingBufferSize(20000)")
                first = wait_until(
                    lambda: driver.execute_script(FIRST_RENDER_JS), 60, "first render"
                )
                wait_until(
                    lambda: len(per_refresh(driver.execute_script(RESOURCES_JS))) >= args.refreshes,
                    60,
                    "refreshes",
                )
                sizes = per_refresh(driver.execute_script(RESOURCES_JS))
                print(f"load {load + 1}: first render {first:.0f} ms; bytes/refresh {sizes}")
        finally:
            driver.quit()
        for call in CALLS:
            url = scene.controller.api_url(f"{RATE_LIMITER}/{call}")
            runs = [timed_get(url) for _ in range(5)]
            times = sorted(t for t, _ in runs)
            print(
                f"GET {call}: {runs[-1][1]:,} B, median {times[2] * 1000:.0f} ms, "
                f"max {times[-1] * 1000:.0f} ms"
            )


if __name__ == "__main__":
    main()
