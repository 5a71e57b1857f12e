"""The README's first command: ``statusbridge demo`` runs, the printed curl makes an incident appear
on the sandbox page, and a real headless Chromium (Debian's, driven by Selenium) loads that page and
sees it."""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.e2e.harness import Process, free_port, wait_http

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
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
    port, sandbox_port = free_port(), free_port()
    demo = Process(
        [
            sys.executable,
            "-m",
            "bridge.cli",
            "demo",
            "--port",
            str(port),
            "--sandbox-port",
            str(sandbox_port),
        ],
        tmp_path / "demo.log",
    )
    demo.start()
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", proc=demo.proc)
        deadline = time.monotonic() + 10
        while "curl -sS -X POST" not in demo.log() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        printed = demo.log()
        page_url = re.search(r"status page:\s+(\S+)", printed).group(1)  # type: ignore[union-attr]
        fire = next(
            line.strip()
            for line in printed.splitlines()
            if line.strip().startswith("curl -sS -X POST") and '"firing"' in line
        )
        result = subprocess.run(shlex.split(fire), capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
        assert result.returncode == 0, result.stderr
        assert '"received": 1' in result.stdout or '"received":1' in result.stdout
        widget = page_url + "/api/v1/summary"
        async with aiohttp.ClientSession() as s:
            for _ in range(200):
                data = await (await s.get(widget)).json()
                if data["ongoing_incidents"]:
                    break
                await asyncio.sleep(0.05)
        assert data["ongoing_incidents"][0]["name"] == "API errors"
        driver = await asyncio.to_thread(browser)
        try:
            await asyncio.to_thread(driver.get, page_url)
            incidents = await asyncio.to_thread(driver.find_elements, By.CSS_SELECTOR, ".incident h3")
            texts = [await asyncio.to_thread(lambda e=e: e.text) for e in incidents]
            status_text = await asyncio.to_thread(
                lambda: driver.find_element(By.CSS_SELECTOR, ".comp .full_outage").text
            )
        finally:
            await asyncio.to_thread(driver.quit)
        assert any("API errors" in t for t in texts), texts
        assert status_text == "Full outage"
    finally:
        demo.stop()
    assert ROOT.exists()
