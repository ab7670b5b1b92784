"""The screenshots of ``docs/view/``: each task's ``rnnlab view`` page, served and photographed in Debian's
chromium (headless, through Selenium, as tests/test_view_browser.py drives it).

    python benchmarks/view_shots.py --charlm tutorials/runs/units --forecast RUN --csv PANEL.csv
                                    --classify RUN --memory RUN [--out docs/view]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from rnnlab import view

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def browser(profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*FLAGS, f"--user-data-dir={profile}", "--window-size=1280,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)


def photograph(driver, run: str, out: Path, act=None, **options) -> None:
    from selenium.webdriver.common.by import By
    running = view.serve(run, port=0, block=False, **options)
    try:
        driver.set_window_size(1280, 1000)
        driver.get(running.url)
        end = time.time() + 60
        while not driver.find_element(By.ID, "app").get_attribute("data-ready") and time.time() < end:
            time.sleep(0.1)
        if act:
            act(driver)
        time.sleep(0.5)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(height, 3000))
        driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.3)
        driver.save_screenshot(str(out))
        print(f"wrote {out}")
    finally:
        running.stop()


def find_speakers(driver) -> None:
    """The cell states ranked by the hypothesis "a speaker's name" (a line of a name and a colon), the winner
    picked to colour the text, and a sample."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    Select(driver.find_element(By.ID, "quantity")).select_by_value("c")
    time.sleep(1.0)
    field = driver.find_element(By.ID, "regex")
    field.clear()
    field.send_keys("^[A-Z][A-Za-z ]*:$")
    driver.find_element(By.ID, "rank").click()
    time.sleep(1.0)
    driver.find_element(By.ID, "top-unit").click()
    time.sleep(1.0)
    driver.find_element(By.ID, "sample").click()
    time.sleep(1.5)
    driver.execute_script("window.scrollTo(0, 0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--charlm")
    parser.add_argument("--forecast")
    parser.add_argument("--csv")
    parser.add_argument("--classify")
    parser.add_argument("--memory")
    parser.add_argument("--out", default="docs/view")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="rnnlab-shots-")
    driver = browser(profile)
    try:
        if args.charlm:
            photograph(driver, args.charlm, out / "charlm.png", act=find_speakers)
        if args.forecast:
            photograph(driver, args.forecast, out / "forecast.png", csv=args.csv)
        if args.classify:
            photograph(driver, args.classify, out / "classify.png")
        if args.memory:
            photograph(driver, args.memory, out / "memory.png")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
