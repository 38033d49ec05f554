"""Write docs/dashboard.png: the web dashboard of a live controller fed by a fake switch.

Run from the repository root: ``.venv/bin/python scripts/dashboard_screenshot.py``.
Needs Debian's chromium and chromium-driver (``make system-deps`` installs them).
The scene is the browser test's (tests/browser/scene.py); the shot is taken once
the chart, the live rates and the blocks are on the page.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.scene import DashboardScene, headless_chromium, missing_browser, wait_until  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds of chart history")
    args = parser.parse_args()
    reason = missing_browser()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="xmpp_ofc_dashboard_") as scratch:
        scratch_dir = Path(scratch)
        with DashboardScene(scratch_dir / "controller") as scene:
            driver = headless_chromium(scratch_dir / "profile", width=1280, height=1400)
            try:
                driver.get(scene.url)
                time.sleep(args.settle)  # a few chart points and two rate polls
                wait_until(
                    lambda: (
                        driver.execute_script(
                            "return document.querySelectorAll('#blocked button.unblock').length"
                        )
                        >= 2
                    ),
                    what="both blocks on the page",
                )
                args.output.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(args.output))
            finally:
                driver.quit()
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
