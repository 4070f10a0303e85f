"""Flower as a person sees it: headless Chromium (Debian's chromium and
chromium-driver packages) through Selenium. Screenshots of each page are
kept in test-artifacts/, which CI uploads."""

import base64
import json
import os
import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from support import PACKAGE, ROOT, wait_for

ARTIFACTS = ROOT / "test-artifacts"
SWEEP_TASK = f"{PACKAGE}.tasks.process_outbox_events"
# Debian's packages, or what GitHub's Ubuntu runners come with.
BROWSER = shutil.which("chromium") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver") or shutil.which("chromedriver", path=os.environ.get("CHROMEWEBDRIVER"))


@pytest.fixture(scope="module")
def browser():
    if not (BROWSER and DRIVER):
        pytest.fail("no chromium and chromedriver: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


def flower_url(stack, path: str) -> str:
    return f"http://127.0.0.1:{stack.services.port_for('flower', 5555)}{path}"


def sign_in(browser, stack) -> None:
    """Every request of the browser carries Flower's basic auth from here on."""
    token = base64.b64encode(f"{stack.env['FLOWER_USER']}:{stack.env['FLOWER_PASSWORD']}".encode()).decode()
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})


def table_rows(driver) -> list[list[str]]:
    """The cells of the page's table rows, as shown; a narrow cell's
    wrapped text is joined again."""
    return [
        [cell.text.replace("\n", "") for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in driver.find_elements(By.CSS_SELECTOR, "table tbody tr")
    ]


def wait_for_rows(browser, wanted, message: str, timeout: float = 60) -> list[list[str]]:
    """Reload until the table's rows satisfy `wanted`."""

    def shown(driver):
        rows = table_rows(driver)
        return rows if wanted(rows) else driver.refresh()

    return WebDriverWait(browser, timeout, poll_frequency=2).until(shown, message)


def test_flower_refuses_a_browser_without_credentials(browser, stack):
    browser.get(flower_url(stack, "/workers"))
    browser.save_screenshot(ARTIFACTS / "flower-refused.png")
    assert "Workers" not in browser.title
    assert "celery@" not in browser.page_source


def test_the_workers_page_shows_every_worker_online(browser, stack):
    sign_in(browser, stack)
    browser.get(flower_url(stack, "/workers"))
    containers = len(stack.compose("ps", "-q", "worker").stdout.split())

    def online_workers():
        status, listed = stack.flower("/api/workers?status=true")
        online = sorted(name for name, up in json.loads(listed).items() if up) if status == 200 else []
        return len(online) == containers and online

    # Every worker container's node name, once Flower's API has them all.
    workers = wait_for(online_workers, timeout=60, message="Flower's API to list every worker online")
    wait_for_rows(
        browser,
        lambda rows: sorted(row[0] for row in rows if row[1:2] == ["Online"]) == workers,
        f"the workers page to show {workers} online",
    )
    browser.save_screenshot(ARTIFACTS / "flower-workers.png")


def test_the_tasks_page_shows_the_sweep_succeeding(browser, stack):
    sign_in(browser, stack)
    browser.get(flower_url(stack, "/tasks"))
    wait_for_rows(
        browser,
        lambda rows: any(row[:1] == [SWEEP_TASK] and row[2:3] == ["SUCCESS"] for row in rows),
        "the tasks page to show a sweep that succeeded",
    )
    browser.save_screenshot(ARTIFACTS / "flower-tasks.png")
