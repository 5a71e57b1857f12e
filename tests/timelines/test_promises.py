"""Every promise in the map of tests/timelines/README.md is still worded so in the docs, and each
maps to timelines that exist; every timeline of the corpus is in the map."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SOURCES = {"README": ROOT / "README.md", "rules reference": ROOT / "bridge" / "rules" / "README.md"}
ROW = re.compile(r'^\| (README|rules reference): "(.+)" \| (.+) \|$', re.M)


def rows() -> list[tuple[str, str, list[str]]]:
    text = (HERE / "README.md").read_text()
    return [(src, quote, re.findall(r"`([^`]+\.yaml)`", files)) for src, quote, files in ROW.findall(text)]


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_each_promise_is_quoted_exactly_and_has_timelines() -> None:
    found = rows()
    assert len(found) >= 10
    for source, quote, files in found:
        assert _flat(quote) in _flat(SOURCES[source].read_text()), f"{source} no longer says: {quote}"
        assert files, quote
        for name in files:
            assert (HERE / name).is_file(), name


def test_every_timeline_is_in_the_map() -> None:
    mapped = {name for _, _, files in rows() for name in files}
    listed = (HERE / "README.md").read_text()
    for path in HERE.glob("*.yaml"):
        assert path.name in mapped or path.name in listed, path.name
