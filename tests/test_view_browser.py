"""``rnnlab view`` in a real browser: Debian's chromium, headless, driven through Selenium, checked as a person
would -- the text draws a column per character and a row per unit, a hypothesis ranks the planted unit first,
sampling shows a distribution that sums to 1, no console errors, the exported page renders with no server.

``make test`` installs chromium where it can (apt-get as root); under ``CI=true`` a missing browser fails these
tests, elsewhere they are skipped with one line saying how to enable them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

from rnnlab import view
from viewing import INSIDE, QUOTED, quote_model

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--window-size=1280,1800")


@pytest.fixture(scope="module")
def browser():
    missing = [path for path in (CHROMIUM, DRIVER) if not os.path.exists(path)]
    if missing:
        message = (f"no {' or '.join(missing)}: the browser tests need apt-get install chromium chromium-driver "
                   "(make test does it as root)")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix="rnnlab-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return quote_model(tmp_path_factory.mktemp("browser") / "quotes")


def wait(condition, seconds: float = 20.0):
    end = time.time() + seconds
    while time.time() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("the page did not get there in time")


def by_id(driver, name: str):
    from selenium.webdriver.common.by import By
    return driver.find_element(By.ID, name)


def text_of(driver, name: str) -> str | None:
    """The text of element ``name``, read in one script (an element the page is redrawing has no stale copy)."""
    return driver.execute_script("const e = document.getElementById(arguments[0]); return e ? e.textContent : null;",
                                 name)


def errors(driver) -> list:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def ready(driver) -> None:
    wait(lambda: by_id(driver, "app").get_attribute("data-ready"))
    assert by_id(driver, "app").get_attribute("data-ready") == "1", by_id(driver, "notice").text


def heat(driver) -> tuple[int, int] | None:
    """(columns, rows) of the units x characters heatmap, read in one script (the page redraws it as text comes)."""
    got = driver.execute_script("const c = document.querySelector('#heat canvas.heat');"
                                "return c ? [c.dataset.cols, c.dataset.rows] : null;")
    return (int(got[0]), int(got[1])) if got else None


def test_charlm_page(browser, run, tmp_path):
    from selenium.webdriver.common.by import By
    running = view.serve(run, port=0, block=False)
    try:
        browser.get(running.url)
        ready(browser)
        passage = by_id(browser, "text").get_attribute("value")
        assert heat(browser) == (len(passage), 16)  # a column per character, a row per unit
        assert len(browser.find_elements(By.CSS_SELECTOR, "#colored .ch")) == len(passage)
        typed = QUOTED[:57]
        box = by_id(browser, "text")
        box.clear()
        box.send_keys(typed)
        wait(lambda: heat(browser) == (len(typed), 16))
        box.send_keys(QUOTED[57:66])  # typing on: the page asks only for the new characters
        wait(lambda: heat(browser) == (66, 16))
        assert len(browser.find_elements(By.CSS_SELECTOR, "#next-bars .bar-row")) == 5
        by_id(browser, "regex").clear()
        by_id(browser, "regex").send_keys(INSIDE)
        by_id(browser, "rank").click()
        top = wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#top-unit td"))
        assert [cell.text for cell in top[:3]] == ["1", "0", "0"]  # rank 1: layer 0, unit 0, the planted one
        assert float(top[3].text) > 0.7
        by_id(browser, "sample").click()
        total = wait(lambda: browser.find_elements(By.ID, "distribution-sum"))[0]
        assert abs(float(total.get_attribute("data-sum")) - 1) < 1e-3
        assert len(browser.find_elements(By.CSS_SELECTOR, "#sampled .ch")) == 200
        assert errors(browser) == []
        browser.save_screenshot(str(tmp_path / "charlm.png"))
    finally:
        running.stop()
    page = view.export(run, tmp_path / "page.html", text=QUOTED[:90])  # the server is stopped
    browser.get(page.as_uri())
    ready(browser)
    assert heat(browser) == (90, 16)
    by_id(browser, "regex").clear()
    by_id(browser, "regex").send_keys(INSIDE)
    by_id(browser, "rank").click()
    top = wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#top-unit td"))
    assert [cell.text for cell in top[:3]] == ["1", "0", "0"]  # the ranking runs in the page, offline too
    assert by_id(browser, "sample").get_attribute("disabled") is not None
    assert errors(browser) == []


@pytest.fixture(scope="module")
def task_runs(tmp_path_factory):
    from rnnlab.tasks import classify, forecast, memory
    from test_forecast_panel import quarterly_panel
    base = tmp_path_factory.mktemp("browser_tasks")
    frame = quarterly_panel(series=6)
    forecast.train(data=frame, horizon=4, out=str(base / "panel"), hidden=8, steps=20, quiet=True,
                   combine="baselines")
    classify.train(out=str(base / "classify"), steps=10, hidden=16, quiet=True)
    memory.train(task="mqar", length=32, pairs=4, vocab=32, arch="gdn", layers=2, hidden=16, steps=5,
                 out=str(base / "mqar"), quiet=True)
    return base, frame


def test_forecast_page(browser, task_runs, tmp_path):
    """Choosing a series draws its history, its forecast's 80 / 95 % bands and the baselines."""
    from selenium.webdriver.common.by import By
    base, frame = task_runs
    running = view.serve(base / "panel", port=0, block=False, data=frame)
    try:
        browser.get(running.url)
        ready(browser)
        rows = browser.find_elements(By.CSS_SELECTOR, "#series-list tbody tr")
        assert len(rows) == 6
        by_id(browser, "search").send_keys("s03")
        wait(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#series-list tbody tr")) == 1)
        browser.find_element(By.CSS_SELECTOR, "#series-list tbody tr").click()
        wait(lambda: text_of(browser, "series-title") == "series s03")
        bands = browser.find_elements(By.CSS_SELECTOR, "#series-chart polygon.band")
        assert {b.get_attribute("class") for b in bands} == {"band b95", "band b80", "band f80"}
        drawn = browser.find_elements(By.CSS_SELECTOR, "#series-chart polyline")
        lines = {line.get_attribute("class") for line in drawn}
        assert {"line actual", "line forecast", "line naive", "line seasonal_naive", "line drift",
                "line future"} <= lines
        assert errors(browser) == []
    finally:
        running.stop()


def test_classify_and_memory_pages(browser, task_runs, tmp_path):
    from selenium.webdriver.common.by import By
    base, _ = task_runs
    running = view.serve(base / "classify", port=0, block=False)
    try:
        browser.get(running.url)
        ready(browser)
        wait(lambda: (text_of(browser, "one-title") or "").startswith("test sequence 0"))
        assert len(browser.find_elements(By.CSS_SELECTOR, "#probs polyline")) == 10  # a line per class
        cell = browser.find_elements(By.CSS_SELECTOR, "#confusion tbody tr")[3].find_elements(By.TAG_NAME, "td")[3]
        count = int(cell.text)
        cell.click()  # the diagonal cell of class 3 lists its sequences
        wait(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#examples tbody tr")) == count)
        assert errors(browser) == []
    finally:
        running.stop()
    page = view.export(base / "classify", tmp_path / "classify.html")
    browser.get(page.as_uri())
    ready(browser)
    wait(lambda: (text_of(browser, "one-title") or "").startswith("test sequence 0"))
    assert errors(browser) == []
    running = view.serve(base / "mqar", port=0, block=False)
    try:
        browser.get(running.url)
        ready(browser)
        wait(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#tokens span")) == 32)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#tokens span.right, #tokens span.wrong")) == 4
        assert browser.find_elements(By.CSS_SELECTOR, "#one canvas.heat")
        assert errors(browser) == []
    finally:
        running.stop()
