"""The rules in force, and their reload: on SIGHUP or a change on disk, a broken file keeps the
previous rules. The holder is where evaluation meets I/O: it reports each template failure once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from bridge.domain import (
    Alert,
    PageDirectory,
)
from bridge.observability import get_logger
from bridge.rules.evaluate import Evaluation
from bridge.rules.load import RulesError, load_rules, rule_files

log = get_logger(__name__)


MAX_REPORTED = 10_000
"""Distinct template failures remembered as reported: a bound, since errors may embed alert labels."""


class RulesHolder:
    """The rules in force, reloaded on SIGHUP or file change; a broken file keeps the previous rules."""

    def __init__(
        self,
        path: Path,
        *,
        directory: PageDirectory | None = None,
        on_reload: Callable[[], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self._on_error = on_error
        self.directory = directory
        self._on_reload = on_reload
        self.current = load_rules(path, directory)
        self.last_error: str | None = None
        self.generation = 1
        self.unresolved = False
        """Set while the pages could not be read: names in the rules are unresolved (``hold``)."""
        self._stamp = self._fingerprint()
        self._reported: set[tuple[str, str]] = set()

    def evaluate(self, alerts: Sequence[Alert]) -> Evaluation:
        """Evaluate the rules in force; a template that fell back to its default text is logged
        once per template and error (evaluation runs on every pass), not each time."""
        evaluation = self.current.evaluate(alerts)
        for failure in evaluation.template_failures:
            if failure not in self._reported and len(self._reported) < MAX_REPORTED:
                self._reported.add(failure)
                what, error = failure
                log.warning("template failed; using the rule's default text", template=what, error=error)
        return evaluation

    def relevant(self, alert: Alert) -> bool:
        """Whether any rule in force looks at the alert (a pass keeps only these in memory)."""
        return any(rule.matches(alert) for rule in self.current.rules)

    def current_generation(self) -> int:
        """``generation``, for whoever asks each pass (the guard tells reload-caused opens apart)."""
        return self.generation

    def hold(self) -> str | None:
        """Why nothing may be published now, or ``None``: names unresolved mean unknown targets."""
        if self.unresolved:
            return "the status pages could not be read yet: names in the rules are unresolved"
        return None

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        try:
            files = rule_files(self.path)
            return tuple((str(f), (st := f.stat()).st_mtime_ns, st.st_size) for f in files)
        except OSError:
            return ()

    def changed_on_disk(self) -> bool:
        """Whether the rule files (names, mtimes, sizes) differ from those last loaded."""
        return self._fingerprint() != self._stamp

    def reload(self) -> bool:
        """Load the rules again; ``True`` when the new ones are in force, ``False`` when they are invalid
        (logged, reported, and the previous rules kept).
        """
        self._stamp = self._fingerprint()
        try:
            rules = load_rules(self.path, self.directory)
        except RulesError as exc:
            self.last_error = str(exc)
            # The message names file, rule and field; a traceback would only hide it.
            log.error("rules reload failed; keeping the previous rules", error=self.last_error)  # noqa: TRY400
            if self._on_error is not None:
                self._on_error(self.last_error)
            return False
        self.current = rules
        self.last_error = None
        self.generation += 1
        log.info("rules reloaded", rules=len(rules.rules), generation=self.generation)
        if self._on_reload is not None:
            self._on_reload()
        return True


class NoRules:
    """The rules' absent form (no ``STATUSBRIDGE_RULES_PATH``): the holder's interface, with no rule.

    Nothing matches, so no alert is kept for a pass and nothing is published; it never reloads.
    Whoever holds the rules holds ``RulesHolder | NoRules`` and needs no check for ``None``.
    """

    directory: PageDirectory | None = None
    last_error: str | None = None

    def evaluate(self, _alerts: Sequence[Alert]) -> Evaluation:
        """No impacts, no heartbeats."""
        return Evaluation(impacts=[], groups={}, matches={})

    def relevant(self, _alert: Alert) -> bool:
        """No rule looks at any alert."""
        return False

    def current_generation(self) -> int:
        """Always 0."""
        return 0

    def hold(self) -> str | None:
        """Never: with no rule nothing is published anyway."""
        return None

    def changed_on_disk(self) -> bool:
        """There is no file to change."""
        return False

    def reload(self) -> bool:
        """Nothing to reload."""
        return False


NO_RULES = NoRules()
