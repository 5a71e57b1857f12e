"""Alertmanager label matchers: ``name = "value"``, ``!=``, ``=~``, ``!~``.

Semantics follow Alertmanager: regular expressions are fully anchored, a missing label matches as
the empty string, values may be quoted (with ``\\"``, ``\\\\``, ``\\n`` escapes) or bare. Python's
``re`` differs from Go's RE2 in a few constructs; those RE2 refuses (backreferences, lookarounds)
are refused here too, so a rule means the same thing it would in Alertmanager.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = ("=~", "!~", "!=", "=")
_RE2_UNSUPPORTED = re.compile(r"\(\?[=!<]|\\[1-9]|\(\?P=")


class MatcherError(ValueError):
    """A matcher that does not parse; the message quotes it and says why."""


@dataclass(frozen=True)
class Matcher:
    """One Alertmanager-style matcher (``=``, ``!=``, ``=~``, ``!~``); regexes match the whole value."""

    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether the labels satisfy the matcher; an absent label matches as the empty string."""
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        body = text[1:-1]
        out, i = [], 0
        while i < len(body):
            ch = body[i]
            if ch == "\\":
                if i + 1 >= len(body):
                    raise MatcherError("dangling backslash in quoted value")
                nxt = body[i + 1]
                out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
                i += 2
                continue
            if ch == '"':
                raise MatcherError('unescaped " inside quoted value')
            out.append(ch)
            i += 1
        return "".join(out)
    if '"' in text:
        raise MatcherError("unbalanced quotes in value")
    return text


def parse_matcher(text: str) -> Matcher:
    """The Matcher of ``name op "value"``; raises MatcherError for bad syntax, a bad regex, or what
    Alertmanager's RE2 lacks (backreferences, lookarounds).
    """
    if not isinstance(text, str):
        raise MatcherError("a matcher is a string like 'severity = \"critical\"'")
    stripped = text.strip()
    m = _LABEL.match(stripped)
    if m is None:
        raise MatcherError(f"{text!r}: expected a label name first")
    name = m.group(0)
    rest = stripped[m.end() :].lstrip()
    op = next((o for o in _OPS if rest.startswith(o)), None)
    if op is None:
        raise MatcherError(f"{text!r}: expected one of =, !=, =~, !~ after {name!r}")
    value = _unquote(rest[len(op) :].strip())
    regex = None
    if op in ("=~", "!~"):
        if _RE2_UNSUPPORTED.search(value):
            raise MatcherError(f"{text!r}: backreferences and lookarounds are not supported (RE2 syntax)")
        try:
            regex = re.compile(f"(?:{value})")
        except re.error as exc:
            raise MatcherError(f"{text!r}: bad regular expression: {exc}") from exc
    return Matcher(name, op, value, regex)
