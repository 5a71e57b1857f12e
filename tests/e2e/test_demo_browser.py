"""The README's first command: ``statusbridge demo`` runs, the printed curl makes an incident appear
on the sandbox page, and a real headless Chromium (Debian's, driven by Selenium) loads that page and
sees it."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.e2e.harness import start_demo

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


async def test_demo_incident_seen_in_a_browser(tmp_path: Path) -> None:
    demo = await start_demo([sys.executable, "-m", "bridge.cli"], tmp_path / "demo.log")
    page_url = demo.page_url
    try:
        await demo.fire()
        incidents = await demo.incidents_on_page()
        assert incidents[0]["name"] == "API errors"
        driver = await asyncio.to_thread(browser)
        try:
            await asyncio.to_thread(driver.get, page_url)
            texts = await asyncio.to_thread(
                lambda: [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".incident h3")]
            )
            status_text = await asyncio.to_thread(
                lambda: driver.find_element(By.CSS_SELECTOR, ".comp .full_outage").text
            )
        finally:
            await asyncio.to_thread(driver.quit)
        assert any("API errors" in t for t in texts), texts
        assert status_text == "Full outage"
    finally:
        demo.process.stop()
