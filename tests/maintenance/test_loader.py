"""Window models and the YAML loader: what is accepted, and that every refusal names file, window and field."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from bridge.domain import PageComponent, PageDirectory, PageInfo
from bridge.maintenance import (
    MaintenanceConfigError,
    OneOffWindow,
    RecurringWindow,
    check_maintenances,
    load_maintenances,
    new_window_id,
    parse_window,
    resolve_targets,
    window_from_json,
    window_to_json,
)

ROOT = Path(__file__).resolve().parents[2]

DIRECTORY = PageDirectory(
    pages=(
        PageInfo(
            id="01HSANDBOXPAGE000000000000",
            name="Acme Status",
            components=(
                PageComponent("01HCOMPAPI0000000000000000", "API"),
                PageComponent("01HCOMPDASH000000000000000", "Dashboard", group="Web"),
                PageComponent("01HCOMPSITE000000000000000", "Website", group="Web"),
                PageComponent("01HCOMPDB00000000000000000", "Database"),
                PageComponent("01HCOMPPAYEU00000000000000", "Payments API", group="Payments", sub_page="EU"),
                PageComponent("01HCOMPSTATUSA000000000000", "Status", group="A"),
                PageComponent("01HCOMPSTATUSB000000000000", "Status", group="B"),
            ),
        ),
    )
)

ONE_OFF = """
- id: db-upgrade
  name: Database upgrade
  status_page: Acme Status
  components: [Database]
  start_at: 2026-05-03T02:00:00+02:00
  end_at: 2026-05-03T04:00:00+02:00
"""


def write(tmp_path: Path, text: str, name: str = "maintenances.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, windows_yaml: str) -> list[tuple[str | None, str | None, str]]:
    path = write(tmp_path, "maintenances:\n" + textwrap.indent(textwrap.dedent(windows_yaml), "  "))
    found = check_maintenances(path)
    assert all(p.file == str(path) for p in found)
    return [(p.window, p.field, p.message) for p in found]


def test_one_off_window_loads_in_utc(tmp_path: Path) -> None:
    [window] = load_maintenances(write(tmp_path, "maintenances:" + textwrap.indent(ONE_OFF, "  ")))
    assert isinstance(window, OneOffWindow)
    assert window.start_at == datetime(2026, 5, 3, 0, 0, tzinfo=UTC)
    assert window.end_at == datetime(2026, 5, 3, 2, 0, tzinfo=UTC)
    assert window.source == "config"
    assert window.notify_subscribers is False
    assert window.announce_before is None
    assert window.messages.scheduled  # defaults keep the API's required message non-empty


def test_recurring_window_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        maintenances:
          - id: weekly-patching
            name: Weekly patching
            status_page: Acme Status
            components: [API, Web/Website]
            cron: "0 2 * * sun"
            timezone: Europe/Berlin
            duration: 2h
            announce_before: 3d
            notify_subscribers: true
            automate: true
            messages:
              scheduled: "Patching {{ components }} on Sunday."
              started: Patching has started.
              completed: Patching is done.
        """,
    )
    [window] = load_maintenances(path)
    assert isinstance(window, RecurringWindow)
    assert window.duration == timedelta(hours=2)
    assert window.announce_before == timedelta(days=3)
    assert window.components == ("API", "Web/Website")
    assert window.automate is True
    assert window.schedule.timezone.key == "Europe/Berlin"


def test_windows_inherit_the_rule_files_status_page(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        status_page: Acme Status
        rules: []
        maintenances:
          - {id: a, name: A, components: [API], start_at: "2026-05-03T02:00:00Z", end_at: "2026-05-03T03:00:00Z"}
          - {id: b, name: B, status_page: Other, components: [API], start_at: "2026-05-03T02:00:00Z", end_at: "2026-05-03T03:00:00Z"}
        """,
    )
    assert [w.status_page for w in load_maintenances(path)] == ["Acme Status", "Other"]


@pytest.mark.parametrize(
    ("case", "windows_yaml", "expected"),
    [
        (
            "naive start",
            ONE_OFF.replace("2026-05-03T02:00:00+02:00", "2026-05-03T02:00:00"),
            ("db-upgrade", "start_at", "has no UTC offset"),
        ),
        (
            "naive end as a string",
            ONE_OFF.replace("2026-05-03T04:00:00+02:00", '"2026-05-03 04:00"'),
            ("db-upgrade", "end_at", "has no UTC offset"),
        ),
        (
            "a date is not a time",
            ONE_OFF.replace("2026-05-03T02:00:00+02:00", "2026-05-03"),
            ("db-upgrade", "start_at", "is a date, not a time"),
        ),
        (
            "not a time at all",
            ONE_OFF.replace("2026-05-03T02:00:00+02:00", "tomorrow"),
            ("db-upgrade", "start_at", "is not an RFC 3339 time"),
        ),
        (
            "end before start",
            ONE_OFF.replace("T04:00:00+02:00", "T01:00:00+02:00"),
            ("db-upgrade", None, "end_at (2026-05-02T23:00:00+00:00) must be after start_at"),
        ),
        (
            "end equals start",
            ONE_OFF.replace("T04:00:00+02:00", "T02:00:00+02:00"),
            ("db-upgrade", None, "must be after start_at"),
        ),
        (
            "bad cron",
            """
            - {id: w, name: W, status_page: P, components: [API], cron: "0 2 * *", duration: 1h, timezone: UTC}
            """,
            ("w", "cron", "has 4 fields; expected 5"),
        ),
        (
            "cron with both day fields",
            """
            - {id: w, name: W, status_page: P, components: [API], cron: "0 2 1 * 0", duration: 1h, timezone: UTC}
            """,
            ("w", "cron", "restricts both day-of-month and day-of-week"),
        ),
        (
            "bad timezone",
            """
            - {id: w, name: W, status_page: P, components: [API], cron: "0 2 * * *", duration: 1h, timezone: Europe/Berln}
            """,
            ("w", "timezone", "unknown time zone 'Europe/Berln'"),
        ),
        (
            "zero duration",
            """
            - {id: w, name: W, status_page: P, components: [API], cron: "0 2 * * *", duration: 0s, timezone: UTC}
            """,
            ("w", "duration", "longer than zero"),
        ),
        (
            "bad duration",
            """
            - {id: w, name: W, status_page: P, components: [API], cron: "0 2 * * *", duration: two hours, timezone: UTC}
            """,
            ("w", "duration", "invalid duration 'two hours'"),
        ),
        (
            "missing timezone",
            """
            - {id: w, name: W, status_page: P, components: [API], cron: "0 2 * * *", duration: 1h}
            """,
            ("w", "timezone", "required"),
        ),
        (
            "unknown key",
            ONE_OFF + "  notify: true\n",
            ("db-upgrade", "notify", "unknown key (a window has: "),
        ),
        (
            "unknown message key",
            ONE_OFF + "  messages: {begun: x}\n",
            ("db-upgrade", "messages.begun", "unknown key"),
        ),
        (
            "both kinds",
            ONE_OFF + '  cron: "0 2 * * *"\n',
            ("db-upgrade", None, "either one-off (start_at, end_at) or recurring"),
        ),
        (
            "missing id",
            ONE_OFF.replace("- id: db-upgrade\n  ", "- "),
            ("#1", "id", "required"),
        ),
        (
            "bad id",
            ONE_OFF.replace("db-upgrade", "db upgrade!"),
            ("db upgrade!", "id", "should match pattern"),
        ),
        (
            "no components",
            ONE_OFF.replace("[Database]", "[]"),
            ("db-upgrade", "components", "at least 1 item"),
        ),
        (
            "component twice",
            ONE_OFF.replace("[Database]", "[Database, API, Database]"),
            ("db-upgrade", "components", "'Database' is listed twice"),
        ),
        (
            "empty component",
            ONE_OFF.replace("[Database]", '[Database, " "]'),
            ("db-upgrade", "components[1]", "must not be empty"),
        ),
        (
            "name too long",
            ONE_OFF.replace("Database upgrade", "x" * 201),
            ("db-upgrade", "name", "at most 200 characters"),
        ),
        (
            "template syntax",
            ONE_OFF + '  messages: {started: "{{ oops"}\n',
            ("db-upgrade", "messages.started", "template error on line 1"),
        ),
        (
            "negative announce",
            ONE_OFF + "  announce_before: -1h\n",
            ("db-upgrade", "announce_before", "invalid duration"),
        ),
        (
            "source is not for config",
            ONE_OFF + "  source: api\n",
            ("db-upgrade", "source", "set by the bridge"),
        ),
        ("not a mapping", "- just a string\n", ("#1", None, "a window is a mapping of keys")),
    ],
)
def test_window_problems(
    tmp_path: Path, case: str, windows_yaml: str, expected: tuple[str | None, str | None, str]
) -> None:
    found = problems_of(tmp_path, windows_yaml)
    window, field, fragment = expected
    assert any(p[0] == window and p[1] == field and fragment in p[2] for p in found), (case, found)


def test_every_problem_is_reported_and_nothing_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        maintenances:
          - {id: a, name: A, status_page: P, components: [X], start_at: "2026-05-03T02:00:00", end_at: "2026-05-03T03:00:00Z"}
          - {id: b, name: B, status_page: P, components: [X], cron: "* * * * *", duration: 1h, timezone: Nowhere/Town}
          - {id: c, name: C, status_page: P, components: [X], start_at: "2026-05-03T02:00:00Z", end_at: "2026-05-03T03:00:00Z"}
        """,
    )
    with pytest.raises(MaintenanceConfigError) as caught:
        load_maintenances(path)
    text = str(caught.value)
    assert f"{path}: maintenance 'a': start_at: 2026-05-03T02:00:00 has no UTC offset" in text
    assert f"{path}: maintenance 'b': timezone: unknown time zone 'Nowhere/Town'" in text
    assert f"{path}: maintenance 'b': cron: cron minute '*' must be one number" in text
    assert "'c'" not in text


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    body = "maintenances:" + textwrap.indent(ONE_OFF, "  ")
    first = write(tmp_path, body, "a.yaml")
    second = write(tmp_path, body, "b.yaml")
    found = check_maintenances(tmp_path)
    assert [(p.file, p.window, p.field) for p in found] == [(str(second), "db-upgrade", "id")]
    assert f"also in {first}" in found[0].message


def test_duplicate_ids_in_one_file(tmp_path: Path) -> None:
    found = problems_of(tmp_path, ONE_OFF + ONE_OFF)
    assert [(w, f) for w, f, _ in found] == [("db-upgrade", "id")]
    assert "duplicate window id" in found[0][2]


@pytest.mark.parametrize(
    ("document", "field", "fragment"),
    [
        ("- a list\n", None, "expected a mapping with 'maintenances:'"),
        ("maintenances: {id: x}\n", "maintenances", "must be a list of windows"),
        ("maintenance: []\n", "maintenance", "unknown top-level key"),
        ("maintenances: [\n", None, "not valid YAML"),
    ],
)
def test_file_problems(tmp_path: Path, document: str, field: str | None, fragment: str) -> None:
    [problem] = check_maintenances(write(tmp_path, document))
    assert problem.window is None
    assert problem.field == field
    assert fragment in problem.message


def test_missing_path(tmp_path: Path) -> None:
    [problem] = check_maintenances(tmp_path / "nope.yaml")
    assert problem.message == "no such file or directory"


def test_files_without_windows_load_nothing(tmp_path: Path) -> None:
    write(tmp_path, "", "empty.yaml")
    write(tmp_path, "status_page: Acme Status\nrules: []\n", "rules.yaml")
    assert load_maintenances(tmp_path) == []


def test_references_are_checked_against_the_page_directory(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        maintenances:
          - {id: a, name: A, status_page: Acme Status, components: [API, Nope, Status], start_at: "2026-05-03T02:00:00Z", end_at: "2026-05-03T03:00:00Z"}
          - {id: b, name: B, status_page: Nowhere, components: [API], start_at: "2026-05-03T02:00:00Z", end_at: "2026-05-03T03:00:00Z"}
        """,
    )
    assert check_maintenances(path) == []  # offline, references cannot be checked
    found = [(p.window, p.field, p.message) for p in check_maintenances(path, directory=DIRECTORY)]
    assert found == [
        ("a", "components[1]", "no component 'Nope' on status page 'Acme Status'"),
        ("a", "components[2]", "component 'Status' is ambiguous ('A/Status', 'B/Status'): use its path"),
        ("b", "status_page", "no status page 'Nowhere' (known: 'Acme Status')"),
    ]


def test_resolve_targets_by_id_path_and_name() -> None:
    window = parse_window(
        {
            "id": "w",
            "name": "W",
            "status_page": "01HSANDBOXPAGE000000000000",
            "components": ["API", "Web/Website", "01HCOMPDB00000000000000000", "Payments API", "A/Status"],
            "start_at": "2026-05-03T02:00:00Z",
            "end_at": "2026-05-03T03:00:00Z",
        }
    )
    targets = resolve_targets(window, DIRECTORY)
    assert targets.status_page_id == "01HSANDBOXPAGE000000000000"
    assert targets.component_ids == (
        "01HCOMPAPI0000000000000000",
        "01HCOMPSITE000000000000000",
        "01HCOMPDB00000000000000000",
        "01HCOMPPAYEU00000000000000",
        "01HCOMPSTATUSA000000000000",
    )
    assert targets.component_paths[3] == "EU/Payments/Payments API"


@pytest.mark.parametrize(
    "data",
    [
        {
            "id": "w",
            "source": "api",
            "name": "Upgrade",
            "status_page": "Acme Status",
            "components": ["API"],
            "start_at": "2026-05-03T02:00:00.123456+02:00",
            "end_at": "2026-05-03T04:00:00Z",
            "announce_before": "90m",
            "messages": {"scheduled": "s", "started": "b", "completed": "c"},
        },
        {
            "id": "r",
            "name": "Weekly",
            "status_page": "Acme Status",
            "components": ["API", "Database"],
            "cron": "0 2 * * sun#1",
            "duration": "1h30m",
            "timezone": "America/New_York",
        },
    ],
)
def test_json_round_trip_for_the_store(data: dict[str, object]) -> None:
    window = parse_window(data)
    text = window_to_json(window)
    again = window_from_json(text)
    assert again == window
    assert type(again) is type(window)
    assert window_to_json(again) == text


def test_admin_windows_share_the_one_off_model() -> None:
    window = OneOffWindow(
        id=new_window_id(),
        source="api",
        name="Emergency DB failover",
        status_page="Acme Status",
        components=("Database",),
        start_at=datetime(2026, 5, 3, 2, tzinfo=UTC),
        end_at=datetime(2026, 5, 3, 3, tzinfo=UTC),
    )
    assert window.id.startswith("mw-") and window.id != new_window_id()
    moved = window.rescheduled(start_at=datetime(2026, 5, 3, 1, tzinfo=UTC), name="Failover")
    assert (moved.id, moved.source, moved.name) == (window.id, "api", "Failover")
    with pytest.raises(ValidationError, match="must be after start_at"):
        window.rescheduled(end_at=datetime(2026, 5, 3, 1, tzinfo=UTC))


def test_naive_python_datetimes_are_refused_too() -> None:
    with pytest.raises(ValidationError, match="has no UTC offset"):
        OneOffWindow(
            id="w",
            name="W",
            status_page="P",
            components=("API",),
            start_at=datetime(2026, 5, 3, 2),
            end_at=datetime(2026, 5, 3, 3, tzinfo=UTC),
        )


def test_models_are_immutable() -> None:
    window = parse_window(
        {
            "id": "w",
            "name": "W",
            "status_page": "P",
            "components": ["API"],
            "start_at": "2026-05-03T02:00:00Z",
            "end_at": "2026-05-03T03:00:00Z",
        }
    )
    with pytest.raises(ValidationError):
        window.name = "other"  # type: ignore[misc]


def test_the_example_file_loads_and_the_rules_loader_accepts_it() -> None:
    from bridge.rules import load_rules

    example = ROOT / "rules" / "maintenances.yaml"
    windows = load_maintenances(example, directory=DIRECTORY)
    assert {type(w) for w in windows} == {OneOffWindow, RecurringWindow}
    load_rules(example)  # a rules directory may hold it: the rules loader must not choke on it
