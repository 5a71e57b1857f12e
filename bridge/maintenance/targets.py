"""Which page and components a window names, resolved against the page directory.

Windows name their status page and components the way rules do (an ID, ``Group/Name``, or a plain
name), because operators write names; the API wants IDs. Resolution follows the same precedence as
rules (ID, then full path, then a unique name) and is strict: a name that matches nothing or several
components is an error to report, never a guess, since the page shows the maintenance to customers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bridge.domain import PageComponent, PageDirectory, PageInfo
from bridge.maintenance.models import OneOffWindow, RecurringWindow


class TargetError(ValueError):
    """A reference that does not resolve; ``field`` is ``status_page`` or ``components[n]``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Targets:
    """What a window affects, resolved: its page and component ids, with the paths they were named by."""

    status_page_id: str
    component_ids: tuple[str, ...]
    component_paths: tuple[str, ...]


def match_components(page: PageInfo, ref: str) -> list[PageComponent]:
    """The components of ``page`` that ``ref`` names, by the rules' precedence (ID, path, name)."""
    for found in (
        [c for c in page.components if c.id == ref],
        [c for c in page.components if c.path == ref],
        [c for c in page.components if c.path.endswith("/" + ref) or c.name == ref],
    ):
        if found:
            return found
    return []


def resolve_targets(window: OneOffWindow | RecurringWindow, directory: PageDirectory) -> Targets:
    """The page ID and component IDs of ``window``; raises :class:`TargetError` on the first problem."""
    problems = target_problems(window, directory)
    if problems:
        raise problems[0]
    page = directory.page(window.status_page)
    assert page is not None  # target_problems reported it otherwise
    components = [match_components(page, ref)[0] for ref in window.components]
    return Targets(page.id, tuple(c.id for c in components), tuple(c.path for c in components))


def target_problems(
    window: OneOffWindow | RecurringWindow, directory: PageDirectory
) -> Sequence[TargetError]:
    """Every reference of ``window`` that does not name exactly one thing."""
    page = directory.page(window.status_page)
    if page is None:
        known = ", ".join(repr(p.name) for p in directory.pages) or "none"
        return [TargetError("status_page", f"no status page {window.status_page!r} (known: {known})")]
    problems: list[TargetError] = []
    for index, ref in enumerate(window.components):
        found = match_components(page, ref)
        if not found:
            problems.append(
                TargetError(f"components[{index}]", f"no component {ref!r} on status page {page.name!r}")
            )
        elif len(found) > 1:
            paths = ", ".join(repr(c.path) for c in found)
            problems.append(
                TargetError(f"components[{index}]", f"component {ref!r} is ambiguous ({paths}): use its path")
            )
    return problems


def canonical_refs(
    window: OneOffWindow | RecurringWindow, directory: PageDirectory | None
) -> tuple[str, frozenset[str]]:
    """Page and component references as IDs where they resolve, as written where they do not.

    Lets "Acme Status"/"API" and the IDs they stand for compare equal, without failing on a window
    whose references cannot be checked (offline, or a page not loaded yet).
    """
    if directory is None:
        return window.status_page, frozenset(window.components)
    page = directory.page(window.status_page)
    if page is None:
        return window.status_page, frozenset(window.components)
    refs: set[str] = set()
    for ref in window.components:
        found = match_components(page, ref)
        refs.add(found[0].id if len(found) == 1 else ref)
    return page.id, frozenset(refs)
