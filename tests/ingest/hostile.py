"""Hostile webhook bodies: a builder and Hypothesis strategies, shared by the hostile-input tests
(tests/ingest/test_hostile.py) and the fuzz drill (tests/resilience/test_fuzz.py)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st


def am_body(**alert: Any) -> bytes:
    raw = {"status": "firing", "labels": {"alertname": "X"}, "startsAt": "2026-11-23T10:00:00Z"}
    raw.update(alert)
    # ensure_ascii keeps lone surrogates as \udxxx escapes, exactly as a hostile sender would write them.
    return json.dumps({"version": "4", "alerts": [raw]}).encode()


surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)
strings = st.text(max_size=12) | surrogates | st.sampled_from(["", "\x00", "\u202e", "\U0001f525"])
numbers = (
    st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([10**4000, 1e308])
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | strings,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(strings, children, max_size=3),
    max_leaves=12,
)
times = (
    st.sampled_from(
        [
            "2026-11-23T10:00:00Z",
            "2026-11-23T10:00:00.123456789Z",
            "2021-10-12T09:51:03.157076+02:00",
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59.999999-14:00",
            "2026-02-30T10:00:00Z",
            "2026-11-23T10:00:60Z",
            "2026-11-23 10:00:00z",
            "yesterday",
            "",
        ]
    )
    | json_values
)
label_maps = st.dictionaries(strings, strings, max_size=3) | json_values
alerts = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["firing", "resolved"]) | json_values,
        "labels": label_maps,
        "annotations": label_maps,
        "startsAt": times,
        "endsAt": times,
        "fingerprint": strings | json_values,
        "generatorURL": strings | json_values,
        "values": json_values,
    },
)
payloads = json_values | st.fixed_dictionaries(
    {"alerts": st.lists(alerts, max_size=4) | json_values},
    optional={
        "version": st.sampled_from(["4", "1"]) | json_values,
        "truncatedAlerts": numbers | json_values,
        "evalMatches": json_values,
    },
)
