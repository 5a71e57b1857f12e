"""Load maintenance windows from YAML: a ``maintenances:`` list in its own file or in a rules file.

Every problem is collected, not just the first, and each names its file, the window (by id, or by
position when it has none) and the field, so that ``statusbridge check`` can list them all in one
run. Nothing is loaded when anything is wrong: a half-read schedule would publish half the truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bridge.domain import PageDirectory
from bridge.maintenance.models import OneOffWindow, RecurringWindow, parse_window
from bridge.maintenance.targets import target_problems

RULE_FILE_KEYS = frozenset({"status_page", "defaults", "rules"})
"""Top-level keys a rules file may hold besides ``maintenances``; the rules loader checks them."""

_WINDOW_KEYS = sorted((set(OneOffWindow.model_fields) | set(RecurringWindow.model_fields)) - {"source"})


@dataclass(frozen=True)
class MaintenanceProblem:
    """One problem of a maintenance file: the file, the window and field when known, and what is wrong."""

    file: str
    window: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        parts = [self.file]
        if self.window is not None:
            parts.append(f"maintenance {self.window!r}")
        if self.field:
            parts.append(self.field)
        return ": ".join(parts) + f": {self.message}"


class MaintenanceConfigError(Exception):
    """The windows cannot be loaded; ``problems`` lists every problem, the message one per line."""

    def __init__(self, problems: Sequence[MaintenanceProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def yaml_files(path: Path) -> list[Path]:
    """The ``*.yaml``/``*.yml`` files of a directory, sorted, hidden ones skipped; a file path as itself."""
    if path.is_dir():
        return sorted(
            p
            for p in path.iterdir()
            if p.suffix in (".yaml", ".yml") and p.is_file() and not p.name.startswith(".")
        )
    return [path]


def _field(loc: Sequence[Any]) -> str | None:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{part}]"]
        elif part not in ("one_off", "recurring"):  # the union's tags mean nothing to the editor
            parts.append(str(part))
    return ".".join(parts) or None


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key (a window has: " + ", ".join(_WINDOW_KEYS) + ")"
    if error["type"] == "missing":
        return "required"
    return str(error["msg"]).removeprefix("Value error, ")


def parse_maintenances(
    document: Any, file: str, *, directory: PageDirectory | None = None
) -> tuple[list[OneOffWindow | RecurringWindow], list[MaintenanceProblem]]:
    """Windows from one parsed YAML document (``None``, or a mapping with ``maintenances:``).

    A window without ``status_page`` takes the document's top-level ``status_page`` (as rules do).
    With a ``directory``, page and component references must resolve.
    """
    if document is None:
        return [], []
    if not isinstance(document, dict):
        return [], [MaintenanceProblem(file, None, None, "expected a mapping with 'maintenances:'")]
    problems = [
        MaintenanceProblem(file, None, str(key), "unknown top-level key (expected 'maintenances:')")
        for key in document
        if key != "maintenances" and key not in RULE_FILE_KEYS
    ]
    raw = document.get("maintenances")
    if raw is None:
        return [], problems
    if not isinstance(raw, list):
        return [], [*problems, MaintenanceProblem(file, None, "maintenances", "must be a list of windows")]
    page = document.get("status_page")
    windows: list[OneOffWindow | RecurringWindow] = []
    for index, item in enumerate(raw):
        label = f"#{index + 1}"
        if not isinstance(item, dict):
            problems.append(MaintenanceProblem(file, label, None, "a window is a mapping of keys"))
            continue
        if isinstance(item.get("id"), str) and item["id"]:
            label = item["id"]
        if "source" in item:
            problems.append(
                MaintenanceProblem(file, label, "source", "set by the bridge, not in config files")
            )
            continue
        data = dict(item)
        if "status_page" not in data and isinstance(page, str):
            data["status_page"] = page
        try:
            window = parse_window(data)
        except ValidationError as exc:
            problems += [MaintenanceProblem(file, label, _field(e["loc"]), _message(e)) for e in exc.errors()]
            continue
        if directory is not None:
            problems += [
                MaintenanceProblem(file, label, p.field, str(p)) for p in target_problems(window, directory)
            ]
        windows.append(window)
    return windows, problems


def load_maintenances(
    paths: Path | Iterable[Path], *, directory: PageDirectory | None = None
) -> list[OneOffWindow | RecurringWindow]:
    """Every window in ``paths`` (files, or directories of ``*.yaml``), in file order.

    Raises :class:`MaintenanceConfigError` listing every problem, including an id used twice
    anywhere among the files (ids key the page's maintenances, so they must be unique).
    """
    problems: list[MaintenanceProblem] = []
    windows: list[OneOffWindow | RecurringWindow] = []
    seen: dict[str, str] = {}
    for path in [paths] if isinstance(paths, Path) else list(paths):
        if not path.exists():
            problems.append(MaintenanceProblem(str(path), None, None, "no such file or directory"))
            continue
        for file in yaml_files(path):
            name = str(file)
            try:
                document = yaml.safe_load(file.read_text(encoding="utf-8"))
            except OSError as exc:
                problems.append(MaintenanceProblem(name, None, None, f"cannot read: {exc.strerror}"))
                continue
            except yaml.YAMLError as exc:
                problems.append(MaintenanceProblem(name, None, None, f"not valid YAML: {exc}"))
                continue
            found, found_problems = parse_maintenances(document, name, directory=directory)
            problems += found_problems
            for window in found:
                if window.id in seen:
                    problems.append(
                        MaintenanceProblem(
                            name, window.id, "id", f"duplicate window id (also in {seen[window.id]})"
                        )
                    )
                    continue
                seen[window.id] = name
                windows.append(window)
    if problems:
        raise MaintenanceConfigError(problems)
    return windows


def check_maintenances(
    paths: Path | Iterable[Path], *, directory: PageDirectory | None = None
) -> list[MaintenanceProblem]:
    """The problems :func:`load_maintenances` would raise, as a list (empty when all is well)."""
    try:
        load_maintenances(paths, directory=directory)
    except MaintenanceConfigError as exc:
        return exc.problems
    return []
