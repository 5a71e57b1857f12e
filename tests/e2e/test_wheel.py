"""The wheel stands alone: built from this checkout, installed into an empty virtualenv, and run from
an empty directory outside the checkout, ``statusbridge demo`` and ``statusbridge sandbox`` show the
built-in pages, and an incident posted through the demo's printed curl appears on the page.

The wheel is installed by its file name (``pip install dist/statusbridge-*.whl``), never as a
package of that name from an index; its dependencies come from the index as a user's would.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import venv
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.conftest import SEED_PATH
from tests.e2e.harness import Process, free_port, start_demo, wait_http

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


OUTSIDE = {"PYTHONPATH": ""}
"""The environment the wheel's commands run in: a PYTHONPATH naming this checkout (as a worktree's
test run sets) would shadow the installed package, and pip would take the checkout's egg-info for
the package already installed. An empty PYTHONPATH is no PYTHONPATH to Python."""


def _run(argv: list[str], cwd: Path) -> str:
    result = subprocess.run(  # noqa: S603
        argv, cwd=cwd, capture_output=True, text=True, timeout=600, check=False, env={**os.environ, **OUTSIDE}
    )
    assert result.returncode == 0, f"{argv}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` directory of an empty virtualenv with the wheel of this checkout installed."""
    dist = tmp_path_factory.mktemp("dist")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(ROOT)],
        ROOT,
    )
    (wheel,) = dist.glob("statusbridge-*.whl")
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=True, clear=True)
    bin_dir = env_dir / "bin"
    _run([str(bin_dir / "pip"), "install", "--quiet", str(wheel)], dist)
    return bin_dir


@pytest.fixture
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new empty directory outside the checkout, to run the installed commands from."""
    path = tmp_path_factory.mktemp("elsewhere")
    assert not path.resolve().is_relative_to(ROOT)
    assert not any(path.iterdir())
    return path


async def _page_names(base_url: str) -> list[str]:
    async with (
        aiohttp.ClientSession(headers={"Authorization": "Bearer sandbox-reader"}) as session,
        session.get(f"{base_url}/v2/status_pages") as resp,
    ):
        assert resp.status == 200
        return [page["name"] for page in (await resp.json())["status_pages"]]


def test_the_installed_package_is_the_wheel(installed: Path, elsewhere: Path) -> None:
    where = _run([str(installed / "python"), "-c", "import bridge; print(bridge.__file__)"], elsewhere)
    assert Path(where.strip()).is_relative_to(installed.parent), where
    assert not Path(where.strip()).resolve().is_relative_to(ROOT), where


async def test_demo_from_the_wheel_in_an_empty_directory(
    installed: Path, elsewhere: Path, tmp_path: Path
) -> None:
    demo = await start_demo(
        [str(installed / "statusbridge")], tmp_path / "demo.log", cwd=elsewhere, env=OUTSIDE
    )
    try:
        sandbox_url = demo.page_url.split("/status/")[0]
        expected = [page["name"] for page in yaml.safe_load(SEED_PATH.read_text())["status_pages"]]
        assert await _page_names(sandbox_url) == expected
        async with aiohttp.ClientSession() as session, session.get(demo.page_url) as resp:
            assert resp.status == 200
            assert "Acme Status" in await resp.text()
        await demo.fire()
        incidents = await demo.incidents_on_page()
        assert [i["name"] for i in incidents] == ["API errors"], demo.process.log()
    finally:
        assert demo.process.stop() == 0, demo.process.log()
    assert list(elsewhere.iterdir()) == [], "the demo writes nothing where it is started"


async def test_sandbox_from_the_wheel_serves_the_built_in_seed(
    installed: Path, elsewhere: Path, tmp_path: Path
) -> None:
    port = free_port()
    sandbox = Process(
        [str(installed / "statusbridge"), "sandbox", "--port", str(port)],
        tmp_path / "sandbox.log",
        env=OUTSIDE,
        cwd=elsewhere,
    )
    sandbox.start()
    try:
        await wait_http(f"http://127.0.0.1:{port}/status/01HSANDBOXPAGE000000000000", proc=sandbox.proc)
        expected = [page["name"] for page in yaml.safe_load(SEED_PATH.read_text())["status_pages"]]
        assert await _page_names(f"http://127.0.0.1:{port}") == expected
    finally:
        sandbox.stop()
    await asyncio.sleep(0)
