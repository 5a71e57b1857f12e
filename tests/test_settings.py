"""Settings: durations, the YAML file, errors that name the variable, secrets that stay secret."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bridge.domain import format_duration, parse_duration
from bridge.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("2s", 2), ("1m30s", 90), ("5m", 300), ("1h", 3600), ("1.5", 1.5), ("0", 0), (3, 3)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "fast", "5 minutes", "-1s", "1x", "nan", "inf"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration() -> None:
    assert format_duration(timedelta(seconds=90.25)) == "1m30s250ms"
    assert format_duration(timedelta(0)) == "0s"


def test_env_beats_file_and_flags_beat_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("port: 9000\ncoalesce_window: 5s\nhost: 0.0.0.0\n")
    monkeypatch.setenv("STATUSBRIDGE_PORT", "9100")
    s = load_settings(cfg)
    assert s.port == 9100
    assert s.coalesce_window == timedelta(seconds=5)
    assert load_settings(cfg, port=9200).port == 9200


def test_errors_name_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATUSBRIDGE_RECONCILE_INTERVAL", "often")
    with pytest.raises(SettingsError, match="STATUSBRIDGE_RECONCILE_INTERVAL"):
        load_settings()
    monkeypatch.delenv("STATUSBRIDGE_RECONCILE_INTERVAL")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("prot: 1\n")
    with pytest.raises(SettingsError, match="STATUSBRIDGE_PROT"):
        load_settings(cfg)
    with pytest.raises(SettingsError, match="c.yaml"):
        load_settings(tmp_path / "missing" / "c.yaml")


def test_secrets_never_in_repr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STATUSBRIDGE_INCIDENTIO_API_KEY", "canary-key-123")
    monkeypatch.setenv("STATUSBRIDGE_ADMIN_TOKEN", "canary-admin-456")
    s = load_settings()
    assert "canary" not in repr(s)
    key_file = tmp_path / "key"
    key_file.write_text("canary-from-file\n")
    monkeypatch.delenv("STATUSBRIDGE_INCIDENTIO_API_KEY")
    monkeypatch.setenv("STATUSBRIDGE_INCIDENTIO_API_KEY_FILE", str(key_file))
    key = load_settings().api_key()
    assert key is not None
    assert key.get_secret_value() == "canary-from-file"
