"""The dashboard in a real headless Chromium: log in, filter, open, acknowledge, phone width.

One browser serves the whole module; screenshots of each step are written to the
artefacts directory (see ``browser.artefacts_dir``). Every request the browser makes is
read from its DevTools log and must go to the server under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from certvigil.config.loading import load_config
from certvigil.server.app import create_app
from certvigil.server.dashboard.wiring import attach_dashboard
from certvigil.server.ingest import store_reports
from certvigil.store import AlertState, Store, open_store
from certvigil.targets.target import Target
from tests.server.dashboard.browser import (
    artefacts_dir,
    browser_available,
    new_driver,
    requested_urls,
    serve,
)
from tests.server.dashboard.support import PASSWORD, USER, Seeded, add_user, seed
from tests.store.factories import NOW, facts, ok_report

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not browser_available(),
        reason="needs Debian's chromium and chromium-driver (scripts/install-system-deps.sh)",
    ),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store, Seeded, FastAPI]]:
    """``certvigil serve``'s app (API, stream, dashboard) on loopback over a seeded store."""
    folder = tmp_path_factory.mktemp("browser")
    config = folder / "certvigil.yaml"
    config.write_text(f"database_url: {folder / 'dash.db'}\n")
    loaded = load_config(config)
    with open_store(loaded.database_url) as store:
        seeded = seed(store, extra_endpoints=60)
        add_user(store)
        app = create_app(loaded, store, clock=lambda: NOW, poll_s=0.05)
        attach_dashboard(app, store)
        with serve(app, lifespan=True) as base:
            yield base, store, seeded, app


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the module."""
    browser = new_driver(tmp_path_factory.mktemp("chromium"))
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="module")
def shots() -> Path:
    return artefacts_dir()


def _wait(driver: Any, css: str, *, text: str | None = None) -> Any:
    """The element matching ``css`` (containing ``text``) once the page shows it.

    A click that navigates returns before the next page is there; this waits on the
    condition itself (at most 15 s), not on time.
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    if text is not None:
        wait.until(expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
    return wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def _off_server(base: str, urls: list[str]) -> list[str]:
    return [u for u in urls if not u.startswith((base + "/", "data:"))]


def test_a_user_logs_in_filters_opens_a_certificate_and_acknowledges(site, driver, shots) -> None:
    """The whole round in a browser, with nothing requested off the server."""
    from selenium.webdriver.common.by import By

    base, store, seeded, _ = site
    requested: list[str] = []

    # Given a visitor without a session, when they open the overview, then the log-in
    # form appears; logging in leads back to the overview.
    driver.get(base + "/dashboard/")
    assert "/dashboard/login" in driver.current_url
    driver.find_element(By.ID, "name").send_keys(USER)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.save_screenshot(str(shots / "01-login.png"))
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    _wait(driver, "h1", text="Overview")
    assert _wait(driver, "svg.chart rect.bar") is not None
    driver.save_screenshot(str(shots / "02-overview.png"))
    requested += requested_urls(driver)

    # Filtering the inventory by text leaves the matching endpoint only.
    driver.find_element(By.LINK_TEXT, "Inventory").click()
    search = _wait(driver, "#q")
    search.send_keys("internal")
    search.submit()
    _wait(driver, "#inventory-count", text="1 deployments")
    rows = driver.find_elements(By.CSS_SELECTOR, "#inventory tbody tr")
    assert len(rows) == 1
    assert "internal-db.example.test" in rows[0].text
    driver.save_screenshot(str(shots / "03-inventory-filtered.png"))

    # Opening its certificate shows its facts and where it is deployed.
    rows[0].find_element(By.CSS_SELECTOR, "a[href*='/certificates/']").click()
    _wait(driver, "h1", text="internal-db.example.test")
    assert "Where deployed" in driver.page_source
    driver.save_screenshot(str(shots / "04-certificate.png"))
    requested += requested_urls(driver)

    # Acknowledging an alert from the alerts page, through its form.
    driver.find_element(By.LINK_TEXT, "Alerts").click()
    _wait(driver, f"button[aria-label='Acknowledge alert {seeded.alert_id}']").click()
    _wait(driver, "[role=status]", text=f"Alert {seeded.alert_id} acknowledged.")
    driver.save_screenshot(str(shots / "05-alert-acknowledged.png"))
    requested += requested_urls(driver)
    alert = store.get_alert(seeded.alert_id)
    assert alert is not None and alert.state is AlertState.ACKNOWLEDGED
    assert alert.acknowledged_by == USER

    # The stylesheet was fetched from the server, and nothing from anywhere else.
    assert base + "/dashboard/static/dashboard.css" in requested
    assert _off_server(base, requested) == []


def test_pages_fit_a_phone_and_the_keyboard_reaches_the_content(site, driver, shots) -> None:
    """At 375 px no page scrolls sideways, and the skip link is the first tab stop."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, _, seeded, _ = site
    driver.set_window_size(375, 812)
    try:
        for name, path in [
            ("overview", "/dashboard/"),
            ("inventory", "/dashboard/inventory"),
            ("alerts", "/dashboard/alerts"),
            ("certificate", f"/dashboard/certificates/{seeded.hostile_sha256}"),
        ]:
            driver.get(base + path)
            if "/login" in driver.current_url:  # a fresh module run: log in first
                driver.find_element(By.ID, "name").send_keys(USER)
                driver.find_element(By.ID, "password").send_keys(PASSWORD + Keys.ENTER)
                _wait(driver, "h1", text="Overview")
                driver.get(base + path)
            overflow = driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            driver.save_screenshot(str(shots / f"06-phone-{name}.png"))
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px"
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        focused = driver.switch_to.active_element
        assert focused.text == "Skip to content"
        assert _off_server(base, requested_urls(driver)) == []
    finally:
        driver.set_window_size(1280, 900)


def test_an_alert_arrives_live_on_the_overview(site, driver, shots) -> None:
    """With the overview open, an alert the server opens appears on the page by itself,
    through the SSE stream the page follows with its session cookie."""
    from datetime import timedelta

    from selenium.webdriver.common.by import By

    base, store, _, app = site
    driver.get(base + "/dashboard/")
    if "/login" in driver.current_url:
        driver.find_element(By.ID, "name").send_keys(USER)
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    _wait(driver, "#live-status", text="Live:")

    # When the server records a report whose certificate has expired...
    late = Target(host="late.example.test", port=443)
    leaf = facts("late.example.test", not_after_utc=NOW - timedelta(days=1))
    _, events = store_reports(store, app.state.server.engine(), [ok_report(late, (leaf,))], now=NOW)
    assert events, "the report opened no alert"
    # ...then its alert shows up on the open page, without a reload.
    line = _wait(driver, "#live-alerts p.live", text="opened")
    assert "late.example.test" in line.text or "expired" in line.text.lower()
    driver.execute_script("arguments[0].scrollIntoView()", line)
    driver.save_screenshot(str(shots / "07-live-alert.png"))
    assert _off_server(base, requested_urls(driver)) == []
