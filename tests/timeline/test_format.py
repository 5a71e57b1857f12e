"""The timeline format as documented: the shipped JSON Schema is the models', and every example
in bridge/timeline/README.md is a valid timeline, event or expectation (one per event kind)."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from bridge.timeline import run_timeline
from bridge.timeline.model import EVENT_KINDS, Event, Expect, Timeline

README = (resources.files("bridge.timeline") / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```yaml\n(.*?)```", README, re.S)


def shipped_schema() -> dict[str, object]:
    return dict(json.loads((resources.files("bridge.timeline") / "timeline.schema.json").read_text()))


def test_the_shipped_schema_is_the_models() -> None:
    schema = shipped_schema()
    schema.pop("$schema")
    schema.pop("$id")
    assert schema == json.loads(json.dumps(Timeline.model_json_schema(), sort_keys=True)), (
        "run scripts/timeline-schema.py"
    )


def test_the_readme_examples_are_valid() -> None:
    whole, events, expectations = (yaml.safe_load(b) for b in BLOCKS)
    timeline = Timeline.model_validate(whole)
    # As an editor sees it: YAML timestamps are strings to JSON Schema.
    jsonschema.validate(json.loads(json.dumps(whole, default=lambda v: v.isoformat())), shipped_schema())
    assert timeline.expect
    parsed = [Event.model_validate(e) for e in events]
    assert {e.kind for e in parsed} == set(EVENT_KINDS), "one documented example per event kind"
    for raw in expectations:
        Expect.model_validate(raw)


def test_the_readme_maintenance_example_is_accepted_by_the_admin_api(tmp_path: Path) -> None:
    """The example's window is posted as written (unquoted YAML timestamps included) and shows."""
    _, events, expectations = (yaml.safe_load(b) for b in BLOCKS)
    (window,) = [e for e in events if "maintenance" in e]
    shown = {"at": "9m", "maintenances": expectations[0]["maintenances"]}
    timeline = Timeline.model_validate(
        {
            "version": 1,
            "name": "readme maintenance",
            "rules": {"status_page": "Acme Status", "rules": []},
            "events": [window],
            "expect": [shown],
        }
    )
    result = run_timeline(timeline, tmp_path / "readme.yaml")
    assert result.passed, "\n".join(result.failures)
