#!/usr/bin/env python3
"""Regenerate bridge/timeline/timeline.schema.json from the timeline models.

Run after changing bridge/timeline/model.py; tests/timeline/test_format.py fails until the shipped
schema and the models agree.
"""

from __future__ import annotations

import json
from pathlib import Path

from bridge.timeline.model import Timeline

OUT = Path(__file__).resolve().parent.parent / "bridge" / "timeline" / "timeline.schema.json"

schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://statusbridge.dev/timeline.schema.json",
    **Timeline.model_json_schema(),
}
OUT.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
print(f"wrote {OUT}")
