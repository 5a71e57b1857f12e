"""``statusbridge check`` and ``test-rules`` as a user runs them, offline and against the sandbox."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bridge.cli import main
from tests.conftest import SandboxServer

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = ROOT / "tests" / "fixtures" / "payloads" / "alertmanager" / "lifecycle" / "002.json"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("STATUSBRIDGE_"):
            monkeypatch.delenv(key)


def test_check_offline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--rules", str(ROOT / "rules")]) == 0
    assert "rules OK" in capsys.readouterr().out


def test_check_reports_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "status_page: X\nrules:\n  - {name: a, components: [API], open_after: never}\n  - {name: b, components: []}\n"
    )
    assert main(["check", "--rules", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}: rule 'a': open_after" in out
    assert f"{bad}: rule 'b': components" in out


async def test_check_against_the_sandbox(
    sandbox: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    monkeypatch.setenv("STATUSBRIDGE_INCIDENTIO_API_KEY", sandbox.reader_token)
    monkeypatch.setenv("STATUSBRIDGE_INCIDENTIO_BASE_URL", sandbox.url)
    code = await asyncio.to_thread(main, ["check", "--rules", str(ROOT / "rules")])
    assert code == 0, capsys.readouterr()
    assert "against the live status pages" in capsys.readouterr().out
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("status_page: Acme Status\nrules:\n  - {name: a, components: [Nonexistent]}\n")
    assert await asyncio.to_thread(main, ["check", "--rules", str(wrong)]) == 1
    assert "no component 'Nonexistent'" in capsys.readouterr().out


def test_test_rules_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = tmp_path / "p.json"
    payload.write_text(json.loads(PAYLOAD.read_text())["body_raw"])
    assert main(["test-rules", "--rules", str(ROOT / "rules"), str(payload)]) == 0
    out = capsys.readouterr().out
    assert "matches rule 'database'" in out
    assert "Database -> full_outage" in out
    assert main(["test-rules", "--rules", str(ROOT / "rules"), str(payload), "--output", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {i["status"] for r in report for i in r["impacts"]} == {"degraded_performance", "full_outage"}


def test_test_rules_bad_payload(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = tmp_path / "p.json"
    payload.write_text('{"version": "4", "alerts": [{"status": "nope"}]}')
    assert main(["test-rules", "--rules", str(ROOT / "rules"), str(payload)]) == 1
    assert "alerts[0].status" in capsys.readouterr().err


def test_check_reports_maintenance_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text(
        "status_page: Acme Status\nmaintenances:\n  - id: w1\n    name: x\n    components: [API]\n"
        '    start_at: "2026-12-01T02:00:00"\n    end_at: "2026-12-01T03:00:00+00:00"\n'
    )
    assert main(["check", "--rules", str(bad)]) == 1
    assert "maintenance 'w1': start_at" in capsys.readouterr().out
