"""The web dashboard in headless Chromium against a running controller fed by a fake switch.

The page must show the switch with its modules and moving message counters, the
message chart, monitored clients with live rates, the blocked clients and the
block events; its Unblock button must lift the block through the REST API.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.scene import (
    MANUAL_BLOCK,
    DashboardScene,
    headless_chromium,
    missing_browser,
    wait_until,
)

pytestmark = pytest.mark.skipif(missing_browser() is not None, reason=str(missing_browser()))


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    with DashboardScene(tmp_path_factory.mktemp("dashboard_controller")) as running:
        yield running
        log = running.controller.log_text()
        if "Traceback" in log:
            print(log[-6000:])


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = headless_chromium(tmp_path_factory.mktemp("chromium_profile"))
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(10)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(scene, browser):
    browser.get(scene.url)
    return browser


def text_of(browser, selector: str) -> str:
    """Text of every match; retried when the page re-renders a row mid-read."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(20):
        try:
            return " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, selector))
        except StaleElementReferenceException:
            time.sleep(0.05)
    raise AssertionError(f"{selector} kept being replaced while read")


def number(text: str) -> float:
    return float(text.replace(",", ""))


def test_the_switch_shows_with_its_modules_and_moving_counters(scene, page):
    row = f'#switches tr[data-dpid="{scene.dpid}"]'
    wait_until(lambda: "connected" in text_of(page, row), what="switch row")
    assert "l2_switch" in text_of(page, row)
    assert "rate_limiter" in text_of(page, row)
    first = number(text_of(page, f"{row} .msgs-in"))
    assert first > 0
    assert number(text_of(page, f"{row} .msgs-out")) > 0
    # Polls and echoes keep flowing: the page follows without a reload.
    wait_until(lambda: number(text_of(page, f"{row} .msgs-in")) > first, what="counter moving")


def test_the_chart_has_data(page):
    wait_until(lambda: "last 10 s:" in text_of(page, "#chart-latest"), what="chart points")
    drawn = page.execute_script(
        """const c = document.getElementById('messages-chart');
           const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
           let coloured = 0;
           for (let i = 0; i < d.length; i += 4) {
             if (d[i + 3] && d[i] < 100 && d[i + 2] > 200) coloured++;
           }
           return coloured;"""
    )
    assert drawn > 20  # pixels of the blue "in" line


def test_monitored_clients_show_live_rates(page):
    def rated_rows():
        rows = text_of(page, "#monitored tr").splitlines()
        return [r for r in rows if re.search(r"10\.0\.0\.1[12]:\d+ [\d,.]+ ", r)]

    assert wait_until(rated_rows, what="monitored clients with a rate")


def test_the_flood_was_blocked_and_shows_in_blocked_and_events(page):
    wait_until(lambda: "10.0.0.99" in text_of(page, "#blocked"), what="auto block row")
    wait_until(lambda: "block" in text_of(page, "#events"), what="block event")


def test_unblock_without_the_token_is_refused_and_the_block_stays(scene, page):
    from selenium.webdriver.common.by import By

    row = f'#blocked tr[data-ip="{MANUAL_BLOCK.ip}"][data-port="{MANUAL_BLOCK.port}"]'
    wait_until(lambda: page.find_elements(By.CSS_SELECTOR, row), what="manual block row")
    assert "no token" in text_of(page, "#token-state")

    click_unblock(page, row)

    wait_until(lambda: "unblock refused" in text_of(page, "#status"), what="refusal shown")
    assert "--print-token" in text_of(page, "#status")
    assert any(b["ip"] == MANUAL_BLOCK.ip for b in scene.blocked())
    assert page.find_elements(By.CSS_SELECTOR, row)


def test_a_wrong_token_is_refused(scene, page):
    from selenium.webdriver.common.by import By

    paste_token(page, "not-the-token")
    row = f'#blocked tr[data-ip="{MANUAL_BLOCK.ip}"][data-port="{MANUAL_BLOCK.port}"]'
    wait_until(lambda: page.find_elements(By.CSS_SELECTOR, f"{row} button.unblock"), what="row")
    click_unblock(page, row)
    wait_until(lambda: "token refused" in text_of(page, "#token-state"), what="token refused")
    assert any(b["ip"] == MANUAL_BLOCK.ip for b in scene.blocked())


def test_unblock_button_lifts_the_block_over_rest_with_the_token(scene, page, tmp_path):
    from selenium.webdriver.common.by import By

    paste_token(page, scene.controller.token())
    wait_until(lambda: "token set" in text_of(page, "#token-state"), what="token set")
    # Kept for this tab only, never in a cookie (another site could make the browser send that).
    assert page.execute_script("return sessionStorage.getItem('xmpp_ofc.api_token')")
    assert not page.get_cookies()

    row = f'#blocked tr[data-ip="{MANUAL_BLOCK.ip}"][data-port="{MANUAL_BLOCK.port}"]'
    wait_until(lambda: page.find_elements(By.CSS_SELECTOR, row), what="manual block row")
    assert any(b["ip"] == MANUAL_BLOCK.ip for b in scene.blocked())
    page.save_screenshot(str(tmp_path / "dashboard.png"))

    click_unblock(page, row)

    wait_until(
        lambda: not any(b["ip"] == MANUAL_BLOCK.ip for b in scene.blocked()),
        what="block gone from REST",
    )
    wait_until(lambda: not page.find_elements(By.CSS_SELECTOR, row), what="row gone")
    wait_until(lambda: "unblocked 10.0.0.66:40066" in text_of(page, "#status"), what="status")
    events = text_of(page, "#events")
    assert re.search(r"unblock .*10\.0\.0\.66:40066 manual", events), events


def click_unblock(browser, row: str) -> None:
    """Click the row's Unblock button; retried when the 2 s refresh replaces the row mid-click."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(20):
        try:
            browser.find_element(By.CSS_SELECTOR, f"{row} button.unblock").click()
            return
        except StaleElementReferenceException:
            time.sleep(0.05)
    raise AssertionError(f"{row} kept being replaced before the click")


def paste_token(browser, token: str) -> None:
    """What the operator does once per tab: paste the printed token and press Use."""
    from selenium.webdriver.common.by import By

    field = browser.find_element(By.ID, "token-input")
    field.clear()
    field.send_keys(token)
    browser.find_element(By.ID, "token-save").click()


def test_kytos_serves_the_ui_component(scene):
    import json
    import urllib.request

    base = f"http://{scene.controller.listen}:{scene.controller.api_port}"
    with urllib.request.urlopen(f"{base}/ui/k-toolbar", timeout=10) as response:
        listed = json.loads(response.read())
    entry = next(c for c in listed if c["name"] == "xmpp_ofc-dispatcher-k-toolbar-main")
    with urllib.request.urlopen(f"{base}/{entry['url']}", timeout=10) as response:
        component = response.read().decode()
    assert "<k-toolbar-item" in component
    assert "this.$kytos_server_api" in component
    assert "xmpp_ofc/rate_limiter/v1/blocked/" in component
