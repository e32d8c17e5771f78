"""The console in a real browser: Chromium headless (Debian's `chromium` and
`chromium-driver`) driven by Selenium, against gunicorn on PostgreSQL with the outbox
worker making campaigns. Controls are found by their visible labels, as a person (or a
screen reader) finds them. Screenshots of the overview at 1280 and 375 px wide are
written under the test's temporary folder (printed) for a reviewer to look at."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.support import client_token, start_gunicorn, stop
from tests.system.conftest import run_flask, start_worker, worker_env

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.common.exceptions import (  # noqa: E402
    NoAlertPresentException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
TOKEN = "browser-brand-token-0123456789"
XSS = "<img src=x onerror=alert(1)>"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no Chromium here: apt-get install chromium chromium-driver",
)


@pytest.fixture(scope="module")
def site(pg_database):
    """gunicorn (2 workers) and the outbox worker on a database with the brand `shop`."""
    creds = json.loads(
        run_flask(
            pg_database, "tenant", "create", "shop", "--currency", "USD", "--api-token", TOKEN
        )
    )
    env = worker_env(pg_database)
    started = []
    try:
        api, base = start_gunicorn(env, workers=2)
        started.append(api)
        start_worker(started, env)
        yield base, creds
    finally:
        for process in reversed(started):
            stop(process)


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,900")
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def by_label(driver, label: str):
    """The control a visible <label> names (exactly that text)."""
    found = driver.find_element(By.XPATH, f'//label[normalize-space(.)="{label}"]')
    return driver.find_element(By.ID, found.get_attribute("for"))


def fill(driver, **labelled: str) -> None:
    for label, value in labelled.items():
        control = by_label(driver, label.replace("_", " "))
        if control.tag_name == "select":
            Select(control).select_by_visible_text(value)
        else:
            control.clear()
            control.send_keys(value)


def _navigating(driver, act) -> None:
    """Run `act` (a click, a key press) and wait until the next page replaced this one.

    The old page is marked with a window property the new one does not have. Asking an
    element of the old page whether it is stale (`staleness_of`) races the navigation:
    Chromium may answer "Node with given id does not belong to the document" instead
    of a stale-element error, so any driver error while the page changes means "not
    yet"."""
    driver.execute_script("window.consoleTestLeaving = true;")
    act()

    def arrived(driver) -> bool:
        try:
            return driver.execute_script(
                "return !window.consoleTestLeaving && document.readyState === 'complete';"
            )
        except WebDriverException:
            return False

    WebDriverWait(driver, 30).until(arrived)


def press(driver, text: str) -> None:
    button = driver.find_element(By.XPATH, f'//button[normalize-space(.)="{text}"]')
    _navigating(driver, button.click)


def follow(driver, text: str) -> None:
    _navigating(driver, driver.find_element(By.LINK_TEXT, text).click)


def heading(driver) -> str:
    return driver.find_element(By.TAG_NAME, "h1").text


def wait_until(condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = condition()
        except StaleElementReferenceException:  # the page reloaded itself meanwhile
            result = None
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError("the page never got there")


def today_count(driver) -> int:
    day = datetime.now(UTC).date().isoformat()
    cell = driver.find_element(By.CSS_SELECTOR, f'tr[data-day="{day}"] td.count')
    return int(cell.get_attribute("textContent"))


def no_alert(driver) -> bool:
    try:
        alert = driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return alert is None


def test_a_brand_admin_works_in_the_console(site, browser, downloads, tmp_path_factory):
    base, creds = site
    driver = browser

    # Closed until signed in; signing in by keyboard alone.
    driver.get(base + "/admin/coupons")
    assert heading(driver) == "Sign in"
    by_label(driver, "API token").click()
    active = driver.switch_to.active_element
    active.send_keys(TOKEN)
    # The next control is the form's button.
    _navigating(driver, lambda: active.send_keys(Keys.TAB, Keys.ENTER))
    assert heading(driver) == "Overview"

    # A discount created in the console is listed; a fan registered through the API appears.
    follow(driver, "Discounts")
    fill(driver, Name="Fans 10%", Discount_type="PERCENT")
    fill(driver, **{"Amount (percent, or money for a fixed cart discount)": "10"})
    press(driver, "Create the discount")
    assert driver.find_element(By.LINK_TEXT, "Fans 10%")
    fan = {"name": "Ada", "email": "ada@example.com"}
    registered = requests.post(
        f"{base}/brands/shop/fans", json=fan, headers={"X-API-Token": TOKEN}, timeout=10
    )
    assert registered.status_code == 200, registered.text
    follow(driver, "Fans")
    row = driver.find_element(By.XPATH, '//table[@id="fans"]//tr[td="ada@example.com"]')
    assert "issued" in row.text

    # A campaign of 20,000 codes: the bar reaches 100% while the page reloads itself.
    follow(driver, "Campaigns")
    fill(driver, Campaign_name="Spring", **{"How many codes": "20000", "Code prefix": "SPR-"})
    fill(driver, **{"Percentage (PERCENT)": "5", "Uses per code": "1"})
    press(driver, "Create the campaign")
    assert heading(driver) == "Campaign: Spring"
    wait_until(lambda: driver.find_element(By.ID, "percent").text == "100%", timeout=120)
    bar = driver.find_element(By.ID, "generation")
    assert bar.get_attribute("value") == bar.get_attribute("max") == "20000"
    driver.find_element(By.LINK_TEXT, "Download the codes (CSV)").click()  # a download: no new page
    csv_file = wait_until(lambda: next(iter(downloads.glob("campaign-*.csv")), None))
    wait_until(lambda: not list(downloads.glob("*.crdownload")))
    lines = csv_file.read_text().splitlines()
    assert len(lines) == 20_001 and lines[0] == "code,status,redemptionCount"

    # A code redeemed through the API is counted by the overview's chart; rolled back here.
    code = lines[1].split(",")[0]
    redeemed = requests.post(
        f"{base}/coupon/v1/shop/coupons/{code}/redemptions",
        json={
            "orderTotal": {"amount": 50, "currency": "USD"},
            "discount": {"amount": 2.5, "currency": "USD"},
            "customerNumber": "C1",
        },
        headers=client_token(base, creds, "hybris.coupon_redeem_on_behalf"),
        timeout=10,
    )
    assert redeemed.status_code == 201, redeemed.text
    follow(driver, "Overview")
    assert today_count(driver) == 1
    bars = driver.find_elements(By.CSS_SELECTOR, "svg.chart rect")
    assert len(bars) == 30 and float(bars[-1].get_attribute("height")) == 100

    # The overview at 1280 px and at 375 px (no horizontal scrolling), for a reviewer.
    shots = tmp_path_factory.mktemp("console-screenshots")
    driver.save_screenshot(str(shots / "overview-1280.png"))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        driver.refresh()
        driver.save_screenshot(str(shots / "overview-375.png"))
        for path in ("/admin/", "/admin/coupons", "/admin/campaigns/1", "/admin/webhooks"):
            driver.get(base + path)
            width = driver.execute_script("return document.documentElement.scrollWidth")
            assert width <= 375, (path, width)  # readable without scrolling sideways
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    print(f"console screenshots: {shots}")

    driver.get(f"{base}/admin/coupons/{code}/redemptions")
    fill(driver, Reason="returned")
    press(driver, "Roll back")
    status = driver.find_element(By.CSS_SELECTOR, "#redemptions td.status")
    assert status.text == "ROLLED_BACK"
    follow(driver, "Overview")
    assert today_count(driver) == 0

    # A script in a name is text: no element made of it, no alert.
    follow(driver, "Coupons")
    follow(driver, "New coupon")
    fill(driver, **{"Code (empty: one is made)": "XSS", "Name": XSS})
    fill(driver, **{"Percentage (PERCENT)": "5"})
    press(driver, "Create the coupon")
    follow(driver, "Coupons")
    assert XSS in driver.find_element(By.ID, "coupons").text
    assert driver.find_elements(By.CSS_SELECTOR, "img") == [] and no_alert(driver)

    # A form posted without its CSRF token is refused, and changes nothing.
    follow(driver, "Discounts")
    fill(driver, Name="Forged")
    driver.execute_script(
        "document.querySelectorAll('main form input[name=csrf_token]')"
        ".forEach(function (input) { input.remove(); });"
    )
    press(driver, "Create the discount")
    assert "not sent from a console page" in driver.page_source
    follow(driver, "Back to the console")
    follow(driver, "Discounts")
    assert driver.find_elements(By.LINK_TEXT, "Forged") == []

    # Signed out, the pages are closed again.
    press(driver, "Sign out")
    driver.get(base + "/admin/coupons")
    assert heading(driver) == "Sign in"
