"""The timeline format as documented: the shipped JSON Schema is the models', and every example
in bridge/timeline/README.md is a valid timeline, event or expectation (one per event kind)."""

from __future__ import annotations

import json
import re
from importlib import resources

import jsonschema
import yaml

from bridge.timeline.model import EVENT_KINDS, Event, Expect, Timeline

README = (resources.files("bridge.timeline") / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```yaml\n(.*?)```", README, re.S)


def shipped_schema() -> dict[str, object]:
    return dict(json.loads((resources.files("bridge.timeline") / "timeline.schema.json").read_text()))


def test_the_shipped_schema_is_the_models() -> None:
    schema = shipped_schema()
    schema.pop("$schema")
    schema.pop("$id")
    assert schema == json.loads(json.dumps(Timeline.model_json_schema(), sort_keys=True))


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
