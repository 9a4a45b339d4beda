"""`lakeline ui` in a real browser: Debian's headless Chromium driven by Selenium clicks
search -> artifact -> lineage -> run -> input artifact, and artifact -> label -> the artifacts
carrying it -> a collection, and keeps a screenshot of each page.

Screenshots go to `$LAKELINE_SCREENSHOTS` (default `build/ui-screenshots/`), one folder per
database; their paths are printed. Without Chromium the test skips (fails when CI=true);
`scripts/test` installs it with apt when run as root.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lakeline.instance import Instance
from lakeline.testing import unavailable
from ui_catalog import Catalog, annotate, build, served

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("LAKELINE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LAKELINE_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium with a fresh profile, no background networking."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            unavailable(f"{path} is missing (apt-get install {package})")
    if importlib.util.find_spec("selenium") is None:
        unavailable("selenium is not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="lakeline-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshots(instance: Instance) -> Path:
    folder = Path(os.environ.get("LAKELINE_SCREENSHOTS", ROOT / "build" / "ui-screenshots"))
    folder = folder / instance.dialect
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_click_through_search_artifact_lineage_run_input(
    instance: Instance, tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    def wait_url(part: str) -> None:
        WebDriverWait(browser, 30).until(expected_conditions.url_contains(part))

    catalog: Catalog = build(tmp_path)
    annotated = annotate(catalog)
    shots = screenshots(instance)
    kept: list[Path] = []

    def shot(name: str) -> None:
        """The whole page (not only the window), through the DevTools protocol."""
        size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        picture = browser.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )
        path = shots / f"{len(kept) + 1:02d}-{name}.png"
        path.write_bytes(base64.b64decode(picture["data"]))
        kept.append(path)

    with served() as base:
        browser.get(f"{base}/")
        assert "Instance" in browser.find_element(By.TAG_NAME, "h1").text
        shot("overview")
        box = browser.find_element(By.ID, "search")
        box.send_keys("counts")
        browser.find_element(By.ID, "search-button").click()
        wait_url("/artifacts?q=counts")
        shot("search")
        browser.find_element(By.LINK_TEXT, "out/counts.csv").click()
        wait_url(f"/artifacts/{catalog.counts.uid}")
        assert browser.find_element(By.ID, "artifact-title").text == "out/counts.csv"
        assert browser.current_url.endswith(f"/artifacts/{catalog.counts.uid}")
        shot("artifact")
        # lineage: upstream, every depth, then click the run node in the SVG
        browser.find_element(By.CSS_SELECTOR, "#lineage-direction option[value=upstream]").click()
        browser.find_element(By.CSS_SELECTOR, "#lineage-depth option[value=all]").click()
        browser.find_element(By.ID, "lineage-button").click()
        wait_url("direction=upstream")
        node = browser.find_element(By.CSS_SELECTOR, f'svg a[href="/runs/{catalog.align.uid}"]')
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", node)
        shot("lineage")
        node.find_element(By.CSS_SELECTOR, "rect:last-of-type").click()
        wait_url(f"/runs/{catalog.align.uid}")
        title = browser.find_element(By.ID, "run-title").text
        assert "align" in title and "completed" in title
        params = browser.find_element(By.ID, "params").text
        assert "<script>alert(" in params  # shown as text, never run
        shot("run")
        browser.find_element(By.CSS_SELECTOR, "#inputs a.artifact-link").click()
        wait_url(f"/artifacts/{catalog.raw.uid}")
        assert browser.find_element(By.ID, "artifact-title").text == "data/reads.csv"
        assert "s2" in browser.find_element(By.ID, "preview").text
        shot("input-artifact")
        browser.get(f"{base}/runs/{catalog.failed.uid}")
        assert "Traceback" in browser.find_element(By.ID, "error").text
        shot("failed-run")
        browser.get(f"{base}/artifacts?view=folders")
        browser.find_element(By.LINK_TEXT, "out/").click()
        wait_url("prefix=out")
        assert "summary.txt" in browser.find_element(By.ID, "folder").text
        shot("folders")
        # artifact -> one of its labels -> every artifact carrying it (the API's lookup)
        browser.get(f"{base}/artifacts/{catalog.counts.uid}")
        features = browser.find_element(By.ID, "features").text
        assert "temperature" in features and "37.5" in features and "T cell" in features
        assert '<script>alert("x")</script>' in browser.find_element(By.ID, "labels").text
        browser.find_element(
            By.CSS_SELECTOR, f'#labels a[href="/labels/{annotated.b_cell.uid}"]'
        ).click()
        wait_url(f"/labels/{annotated.b_cell.uid}")
        assert browser.find_element(By.ID, "label-title").text == "CellType: B cell"
        shot("label")
        browser.find_element(By.ID, "label-artifacts").click()
        wait_url("ulabels__name=B+cell")
        table = browser.find_element(By.ID, "artifacts").text
        assert "out/counts.csv" in table and "data/reads.csv" not in table
        shot("label-artifacts")
        browser.find_element(By.LINK_TEXT, "out/counts.csv").click()
        wait_url(f"/artifacts/{catalog.counts.uid}")
        browser.find_element(By.CSS_SELECTOR, "#collections a.collection-link").click()
        wait_url(f"/collections/{annotated.collection.uid}")
        members = browser.find_element(By.ID, "members").text
        assert members.index("data/reads.csv") < members.index("out/counts.csv")
        shot("collection")
    for path in kept:
        assert path.stat().st_size > 10_000, path  # a real picture, not a blank page
        print(f"screenshot: {path}")
