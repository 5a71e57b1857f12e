"""Maintenance windows and their pure math: occurrences and phases as a function of ``now``.

Models and the YAML loader say what a window is (see README.md here); :mod:`.schedule` says where
each occurrence stands at an instant. Publishing, the admin API and the APScheduler clock live above
this package and only call into it.
"""

from bridge.maintenance.cron import CronError, CronSchedule, parse_cron, parse_timezone
from bridge.maintenance.loader import (
    MaintenanceConfigError,
    MaintenanceProblem,
    check_maintenances,
    load_maintenances,
    parse_maintenances,
)
from bridge.maintenance.models import (
    DEFAULT_RECURRING_ANNOUNCE,
    Messages,
    OneOffWindow,
    RecurringWindow,
    Window,
    announce_lead,
    new_window_id,
    parse_window,
    window_from_json,
    window_to_json,
)
from bridge.maintenance.schedule import (
    ONE_OFF_KEY,
    AnyWindow,
    DesiredMaintenance,
    Occurrence,
    Overlap,
    Phase,
    desired,
    next_wakeups,
    occurrences,
    overlaps,
    phase,
    under_maintenance,
)
from bridge.maintenance.targets import TargetError, Targets, canonical_refs, resolve_targets, target_problems

__all__ = [
    "DEFAULT_RECURRING_ANNOUNCE",
    "ONE_OFF_KEY",
    "AnyWindow",
    "CronError",
    "CronSchedule",
    "DesiredMaintenance",
    "MaintenanceConfigError",
    "MaintenanceProblem",
    "Messages",
    "Occurrence",
    "OneOffWindow",
    "Overlap",
    "Phase",
    "RecurringWindow",
    "TargetError",
    "Targets",
    "Window",
    "announce_lead",
    "canonical_refs",
    "check_maintenances",
    "desired",
    "load_maintenances",
    "new_window_id",
    "next_wakeups",
    "occurrences",
    "overlaps",
    "parse_cron",
    "parse_maintenances",
    "parse_timezone",
    "parse_window",
    "phase",
    "resolve_targets",
    "target_problems",
    "under_maintenance",
    "window_from_json",
    "window_to_json",
]
