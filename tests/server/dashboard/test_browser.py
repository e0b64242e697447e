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

from certvigil.store import AlertState, Store, open_store
from tests.server.dashboard.browser import (
    artefacts_dir,
    browser_available,
    new_driver,
    requested_urls,
    serve,
)
from tests.server.dashboard.support import PASSWORD, USER, Seeded, add_user, make_app, seed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not browser_available(),
        reason="needs Debian's chromium and chromium-driver (scripts/install-system-deps.sh)",
    ),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store, Seeded]]:
    """A seeded store served on loopback."""
    path = tmp_path_factory.mktemp("browser") / "dash.db"
    with open_store(str(path)) as store:
        seeded = seed(store, extra_endpoints=60)
        add_user(store)
        with serve(make_app(store)) as base:
            yield base, store, seeded


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    """One headless Chromium for the module."""
    browser = new_driver()
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="module")
def shots() -> Path:
    return artefacts_dir()


def _off_server(base: str, urls: list[str]) -> list[str]:
    return [u for u in urls if not u.startswith((base + "/", "data:"))]


def test_a_user_logs_in_filters_opens_a_certificate_and_acknowledges(site, driver, shots) -> None:
    """The whole round in a browser, with nothing requested off the server."""
    from selenium.webdriver.common.by import By

    base, store, seeded = site
    requested: list[str] = []

    # Given a visitor without a session, when they open the overview, then the log-in
    # form appears; logging in leads back to the overview.
    driver.get(base + "/dashboard/")
    assert "/dashboard/login" in driver.current_url
    driver.find_element(By.ID, "name").send_keys(USER)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.save_screenshot(str(shots / "01-login.png"))
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    assert driver.find_element(By.TAG_NAME, "h1").text == "Overview"
    assert driver.find_element(By.CSS_SELECTOR, "svg.chart rect.bar") is not None
    driver.save_screenshot(str(shots / "02-overview.png"))
    requested += requested_urls(driver)

    # Filtering the inventory by text leaves the matching endpoint only.
    driver.find_element(By.LINK_TEXT, "Inventory").click()
    search = driver.find_element(By.ID, "q")
    search.send_keys("internal")
    search.submit()
    rows = driver.find_elements(By.CSS_SELECTOR, "#inventory tbody tr")
    assert len(rows) == 1
    assert "internal-db.example.test" in rows[0].text
    driver.save_screenshot(str(shots / "03-inventory-filtered.png"))

    # Opening its certificate shows its facts and where it is deployed.
    rows[0].find_element(By.CSS_SELECTOR, "a[href*='/certificates/']").click()
    assert "internal-db.example.test" in driver.find_element(By.TAG_NAME, "h1").text
    assert "Where deployed" in driver.page_source
    driver.save_screenshot(str(shots / "04-certificate.png"))
    requested += requested_urls(driver)

    # Acknowledging an alert from the alerts page, through its form.
    driver.find_element(By.LINK_TEXT, "Alerts").click()
    button = driver.find_element(
        By.CSS_SELECTOR, f"button[aria-label='Acknowledge alert {seeded.alert_id}']"
    )
    button.click()
    assert (
        f"Alert {seeded.alert_id} acknowledged."
        in driver.find_element(By.CSS_SELECTOR, "[role=status]").text
    )
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

    base, _, seeded = site
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
