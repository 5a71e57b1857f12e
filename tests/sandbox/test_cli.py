"""``statusbridge sandbox`` as a newcomer runs it, and schemathesis against it with the real spec."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import COMPONENTS, PAGE_ID, SEED_PATH
from tests.e2e.harness import Process, free_port, wait_http
from tests.openapi_contract import SPEC_PATH

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[tuple[str, Process]]:
    port = free_port()
    proc = Process(
        [sys.executable, "-m", "bridge.cli", "sandbox", "--port", str(port), "--seed", str(SEED_PATH)],
        tmp_path / "sandbox.log",
    )
    proc.start()
    yield f"http://127.0.0.1:{port}", proc
    proc.stop()


@pytest.mark.real_time("a real statusbridge sandbox process: waits, polling, for its start-up")
async def test_sandbox_command_serves_page_with_incident(sandbox_process: tuple[str, Process]) -> None:
    url, proc = sandbox_process
    await wait_http(url + "/", proc=proc.proc)
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer sandbox-writer"}) as session:
        body = {
            "status_page_id": PAGE_ID,
            "name": "API is slow",
            "incident_status": "investigating",
            "message": "We are looking into it.",
            "idempotency_key": "curl-1",
            "notify_subscribers": False,
            "component_statuses": [
                {"component_id": COMPONENTS["API"], "component_status": "degraded_performance"}
            ],
        }
        async with session.post(url + "/v2/status_page_incidents", json=body) as resp:
            assert resp.status == 201
        async with session.get(f"{url}/status/{PAGE_ID}") as resp:
            page = await resp.text()
    assert "API is slow" in page
    assert "Degraded performance" in page
    assert proc.proc is not None
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(timeout=10) == 0, proc.log()


def test_bad_seed_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "seed.yaml"
    bad.write_text("status_pages:\n  - structure: []\n")
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "bridge.cli", "sandbox", "--port", "0", "--seed", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "needs a name" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.real_time("a real statusbridge sandbox process: waits, polling, for its start-up")
async def test_schemathesis_finds_no_server_error_or_schema_violation(
    sandbox_process: tuple[str, Process], tmp_path: Path
) -> None:
    url, proc = sandbox_process
    await wait_http(url + "/", proc=proc.proc)
    result = subprocess.run(  # noqa: S603
        [
            str(SCHEMATHESIS),
            "run",
            str(SPEC_PATH),
            "--url",
            url,
            "--header",
            "Authorization: Bearer sandbox-writer",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            "15",
            "--phases",
            "examples,coverage,fuzzing",
            # Operations the sandbox does not implement (the bridge does not use them):
            "--exclude-path-regex",
            "status_page_components|retrospective|/v1/|availability",
            "--seed",
            "1",
            "--no-shrink",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
