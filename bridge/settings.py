"""Every knob of the daemon, in one pydantic-settings class.

Values come from the environment (prefix ``STATUSBRIDGE_``) and optionally a YAML file with the same
keys in lower case (``--config FILE`` or ``STATUSBRIDGE_CONFIG``); the environment wins. Secrets are
``SecretStr`` so that they never reach a repr or a log line. A bad value stops start-up with a
:class:`SettingsError` that names the variable, never a traceback.

Each field says *why* it has its default: operators read these docstrings in ``--help`` output and
in the README.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bridge.domain import parse_duration

ENV_PREFIX = "STATUSBRIDGE_"

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


_file_values: ContextVar[dict[str, Any]] = ContextVar("statusbridge_config_file")


class _YamlSource(PydanticBaseSettingsSource):
    """The values of the YAML config file being loaded (see :func:`load_settings`)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # noqa: ARG002
        return _file_values.get({}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_file_values.get({}))


class SettingsError(Exception):
    """A configuration problem, phrased for the operator (names the variable or file)."""


class Settings(BaseSettings):
    """Every setting, from ``STATUSBRIDGE_*`` variables, the YAML config file (unknown keys refused) and
    command-line overrides, validated; secrets are SecretStr, so no repr or error message shows them.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        hide_input_in_errors=True,
    )

    # --- HTTP server -------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Listen address; loopback unless told otherwise.")
    port: int = Field(8080, ge=0, le=65535, description="Listen port.")
    shutdown_timeout: Duration = Field(
        timedelta(seconds=10), description="How long SIGTERM waits for in-flight work to drain."
    )

    # --- rules and store -----------------------------------------------------------------------
    rules_path: Path | None = Field(None, description="A rules YAML file or a directory of them.")
    store_url: str = Field(
        "sqlite:///statusbridge.db",
        description="sqlite:///relative.db, sqlite:////absolute/path.db or postgresql://…",
    )

    # --- incident.io -----------------------------------------------------------------------
    incidentio_api_key: SecretStr | None = Field(None, description="Status page API key.")
    incidentio_api_key_file: Path | None = Field(
        None, description="File holding the API key (a mounted Kubernetes secret)."
    )
    incidentio_base_url: str = Field("https://api.incident.io", description="API base URL.")
    incidentio_timeout: Duration = Field(
        timedelta(seconds=10), description="Per-request timeout of the API client."
    )
    incidentio_rate_capacity: int = Field(
        1200, ge=1, description="Client token bucket size: incident.io allows 1200 per key."
    )
    incidentio_rate_refill: float = Field(
        20.0, gt=0, description="Client token bucket refill per second (incident.io: 20/s)."
    )

    # --- webhook auth ----------------------------------------------------------------------
    webhook_auth: Literal["none"] | None = Field(
        None,
        description="Set to 'none' to run with webhooks open to anyone (refused otherwise).",
    )
    webhook_bearer_token: SecretStr | None = None
    webhook_basic_username: str | None = None
    webhook_basic_password: SecretStr | None = None
    grafana_hmac_secret: SecretStr | None = None
    grafana_hmac_header: str = "X-Grafana-Alerting-Signature"
    grafana_hmac_timestamp_header: str | None = Field(
        None, description="Grafana has no default; when set, the signed message is 'ts:body'."
    )
    grafana_hmac_max_skew: Duration = Field(
        timedelta(minutes=5), description="Signed timestamps older (or newer) than this are refused."
    )
    webhook_max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Larger webhook bodies get 413."
    )

    # --- engine ----------------------------------------------------------------------------
    admin_token: SecretStr | None = Field(
        None, description="Bearer token for /api/v1/ (admin API refuses every call while unset)."
    )
    coalesce_window: Duration = Field(
        timedelta(seconds=2), description="At most one update per incident group per window."
    )
    reconcile_interval: Duration = Field(
        timedelta(seconds=60), description="Re-plan and read the page back at least this often."
    )
    alert_ttl: Duration = Field(
        timedelta(hours=8),
        description="A firing alert not received again for this long is stale (treated as resolved).",
    )
    mode: Literal["live", "shadow"] = Field(
        "live", description="'shadow' plans and explains but never writes to the page."
    )
    max_new_incidents: int = Field(
        5, ge=1, description="Blast-radius guard: more new incidents than this within the window are held."
    )
    max_new_incidents_window: Duration = Field(
        timedelta(minutes=5), description="The guard's sliding window."
    )
    guard_release_after: Duration = Field(
        timedelta(minutes=15),
        description="A guard condition that persists this long is let through (a real mass event).",
    )
    widget_upstream_url: str | None = Field(
        None, description="The page's Widget API URL to proxy at /widget (else built from published state)."
    )
    widget_ttl: Duration = Field(timedelta(seconds=30), description="How long /widget serves a cached copy.")
    widget_page_url: str | None = Field(None, description="page_url in /widget JSON built from state.")
    preflight: bool = Field(
        default=True,
        description="Check at start-up that the API key works and may write (warnings in shadow mode).",
    )
    alertmanager_url: str | None = Field(
        None, description="Pull active alerts from this Alertmanager's API v2 to recover lost resolves."
    )
    silenced_counts_as_resolved: bool = Field(
        default=True, description="With alertmanager_url: a silenced alert no longer impacts the page."
    )

    # --- observability ---------------------------------------------------------------------
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="'auto': console on a TTY, JSON otherwise."
    )

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        if (self.webhook_basic_username is None) != (self.webhook_basic_password is None):
            raise ValueError(
                "STATUSBRIDGE_WEBHOOK_BASIC_USERNAME and STATUSBRIDGE_WEBHOOK_BASIC_PASSWORD go together"
            )
        if self.incidentio_api_key is not None and self.incidentio_api_key_file is not None:
            raise ValueError(
                "set STATUSBRIDGE_INCIDENTIO_API_KEY or STATUSBRIDGE_INCIDENTIO_API_KEY_FILE, not both"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Command-line overrides, then the environment, then the YAML config file, in that precedence."""
        # Command-line overrides (init kwargs) beat the environment, which beats the YAML file.
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @property
    def webhook_auth_configured(self) -> bool:
        """Whether any webhook credential is set (bearer token, Basic user or Grafana HMAC secret)."""
        return any((self.webhook_bearer_token, self.webhook_basic_username, self.grafana_hmac_secret))

    def api_key(self) -> SecretStr | None:
        """The API key, read from ``incidentio_api_key_file`` when that is set."""
        if self.incidentio_api_key_file is not None:
            try:
                text = self.incidentio_api_key_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SettingsError(
                    f"STATUSBRIDGE_INCIDENTIO_API_KEY_FILE: cannot read {self.incidentio_api_key_file}: "
                    f"{exc.strerror}"
                ) from exc
            if not text:
                raise SettingsError("STATUSBRIDGE_INCIDENTIO_API_KEY_FILE: the file is empty")
            return SecretStr(text)
        return self.incidentio_api_key


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        name = f"{ENV_PREFIX}{loc[0].upper()}" if loc else "settings"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{name}: {msg}" if loc else msg)
    return "; ".join(lines)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from the YAML file (if any), the environment and ``overrides``.

    ``overrides`` (from command-line flags) win over everything.
    """
    file_values: dict[str, Any] = {}
    path = config_file or (Path(p) if (p := os.environ.get(f"{ENV_PREFIX}CONFIG")) else None)
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"config file {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            # from None: PyYAML's error quotes the offending line, which may hold a secret (_yaml_problem).
            raise SettingsError(f"config file {path}: not valid YAML: {_yaml_problem(exc)}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise SettingsError(f"config file {path}: expected a mapping of settings")
        file_values = {str(k).lower(): v for k, v in loaded.items()}
    token = _file_values.set(file_values)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        # from None: the error's errors() hold each bad input, a secret's value included (its str hides them).
        raise SettingsError(_describe(exc)) from None
    finally:
        _file_values.reset(token)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where, without PyYAML's quote of the offending line: in a config file
    that line may hold a secret, and this message reaches the terminal and the logs."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        text = f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
        if exc.context and exc.context_mark is not None:
            start = exc.context_mark
            text += f", {exc.context} from line {start.line + 1}, column {start.column + 1}"
        return text
    return type(exc).__name__
