"""Reading a timeline file: YAML, then the models, with errors that name the file and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bridge.timeline.model import Timeline


class TimelineFileError(Exception):
    """A malformed timeline file; the message is ``file:line: what is wrong`` (one per problem)."""


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the deepest node of ``loc`` that exists in the composed YAML."""
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                break
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def parse_timeline(text: str, source: str) -> Timeline:
    """The Timeline of a YAML text; raises TimelineFileError naming ``source`` and the line that is wrong."""
    try:
        raw: Any = yaml.safe_load(text)
        tree = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise TimelineFileError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict):
        raise TimelineFileError(
            f"{source}:1: a timeline is a mapping with version, name, rules, events, expect"
        )
    try:
        return Timeline.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            line = _line_of(tree, loc)
            field = ".".join(str(p) for p in loc) or "(file)"
            problems.append(f"{source}:{line or 1}: {field}: {error['msg']}")
        raise TimelineFileError("\n".join(problems)) from exc


def load_timeline(path: Path) -> Timeline:
    """The Timeline of a file; raises TimelineFileError when it cannot be read or is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TimelineFileError(f"{path}: {exc.strerror}") from exc
    return parse_timeline(text, str(path))
