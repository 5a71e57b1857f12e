"""Timeline tests: ``statusbridge test-timeline``, like ``promtool test rules`` for the page.

A timeline file gives inputs at virtual times (webhooks, restarts, human edits, faults, rule
changes, maintenance) and the public page expected at later times; :func:`run_timeline` runs it
through the real daemon and sandbox on virtual time (see ``runner.py`` and ``clock.py``).
"""

from bridge.timeline.loader import TimelineFileError, load_timeline
from bridge.timeline.model import Timeline
from bridge.timeline.runner import Result, TimelineStuck, run_timeline

__all__ = ["Result", "Timeline", "TimelineFileError", "TimelineStuck", "load_timeline", "run_timeline"]
