"""The planner: ``plan(desired, published, now) -> Plan``, pure.

This is where correctness lives. Given what a group should look like (from alerts and rules) and what
was last published, it decides the next publications, or why it holds them back:

- a quiet group with no open incident does nothing; a firing one opens an incident once its first
  alert has fired for ``open_after`` (one incident per group *episode*, created with an idempotency
  key derived from the episode, so a retried or replayed create can never open a second one);
- inside an open incident, a change of the component set, of a worst status, or of the incident
  status (all resolved → ``monitoring``; re-fire → back to ``investigating``) is one update carrying
  the full component set — after the change has held for ``change_after`` (``downgrade_after`` for
  improvements), at most one per coalescing window, and within the update budget (updates for
  monitoring/resolved are always kept available);
- ``monitoring`` for ``resolve_after`` → ``resolved``; a later firing starts a new episode;
- a changed rendered name is a rename; a changed rendered message alone publishes nothing;
- an update whose outcome is unknown is read back before anything else; a taken-over incident is
  never touched.

The companion functions ``after_*`` are the state transitions the executor records with the outcome
of each action. Together they let tests drive the whole lifecycle without any I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from bridge.domain import (
    DEFAULT_INTERMITTENT_MESSAGE,
    SEVERITY,
    ComponentStatus,
    GroupSettings,
    IncidentStatus,
    NotifyPolicy,
    PublishedGroup,
    worst,
)
from bridge.engine.model import (
    MAX_UPDATES,
    CreateIncident,
    DesiredGroup,
    Plan,
    Policy,
    ReadBack,
    RenameIncident,
    UpdateIncident,
    idempotency_key,
)

DEFAULT_RESOLVED_MESSAGE = "This incident has been resolved."

_STATUS_RANK = {
    IncidentStatus.MONITORING: 0,
    IncidentStatus.IDENTIFIED: 1,
    IncidentStatus.INVESTIGATING: 2,
}


def plan(
    desired: DesiredGroup | None,
    published: PublishedGroup | None,
    now: datetime,
    policy: Policy | None = None,
) -> Plan:
    """The next actions for one group. ``desired is None`` means the group no longer exists
    (its alerts are gone or its rule was removed): an open incident is then wound down."""
    policy = policy or Policy()
    if published is not None and published.taken_over:
        if desired is None or not desired.firing:
            return Plan(end_takeover=True, held="taken over; its alerts have cleared: the episode ends")
        return Plan(held=f"taken over ({published.taken_over_reason or 'edited on the page'}); not touched")
    if published is not None and published.force_resolve and published.open and published.incident_id:
        settings = group_settings(desired, published)
        return Plan(
            actions=(
                UpdateIncident(
                    group_key=published.key,
                    incident_id=published.incident_id,
                    incident_status=IncidentStatus.RESOLVED,
                    components=None,
                    message=settings.resolved_message or DEFAULT_RESOLVED_MESSAGE,
                    notify_subscribers=_notifies(settings.notify, IncidentStatus.RESOLVED),
                ),
            )
        )
    if published is not None and published.outcome_unknown and published.incident_id:
        if published.recheck_at is not None and now < published.recheck_at:
            return Plan(
                wake_at=published.recheck_at,
                held=f"an update of unknown outcome may still land: read back at {published.recheck_at.isoformat()}",
            )
        return Plan(actions=(ReadBack(published.key, published.incident_id),))
    if published is None or not published.open:
        return _plan_closed(desired, published, now, policy)
    return _plan_open(desired, published, now, policy)


def group_settings(desired: DesiredGroup | None, published: PublishedGroup | None) -> GroupSettings:
    """The rule's settings for a group: the desired state's while anything fires, else those
    recorded with what was published (a quiet group, a restart, a reload that removed the rule)."""
    if desired is not None:
        return desired.settings
    if published is not None and published.settings is not None:
        return published.settings
    return GroupSettings()


def with_firing_record(
    published: PublishedGroup | None, desired: DesiredGroup | None
) -> PublishedGroup | None:
    """Record with an existing group what a firing pass knows and a quiet one will need: the
    rule's settings and the series behind it (the guard's evidence), when they changed."""
    if published is None or desired is None:
        return published
    series = desired.alert_series if desired.firing else published.alerts
    if published.settings == desired.settings and published.alerts == series:
        return published
    return replace(published, settings=desired.settings, alerts=series)


def _notifies(policy: NotifyPolicy, status: IncidentStatus) -> bool:
    if status is IncidentStatus.RESOLVED:
        return policy in (NotifyPolicy.ALWAYS, NotifyPolicy.OPEN_AND_RESOLVE)
    return policy is NotifyPolicy.ALWAYS


def _coalesce_until(published: PublishedGroup | None, policy: Policy) -> datetime | None:
    if published is None or published.last_published_at is None:
        return None
    return published.last_published_at + policy.coalesce_window


def _plan_closed(
    desired: DesiredGroup | None, published: PublishedGroup | None, now: datetime, policy: Policy
) -> Plan:
    if desired is None or not desired.firing:
        if published is not None and published.create_attempted and published.incident_status is None:
            return Plan(actions=(_settle_attempted_create(desired, published, policy.key_scope),))
        return Plan()
    opens_at = (desired.first_firing_at or now) + desired.timings.open_after
    if now < opens_at:
        return Plan(wake_at=opens_at, held=f"open_after: opens at {opens_at.isoformat()}")
    coalesced = _coalesce_until(published, policy)
    if coalesced is not None and now < coalesced:
        return Plan(wake_at=coalesced, held="coalescing after the previous incident")
    episode = next_episode(published)
    return Plan(
        actions=(
            CreateIncident(
                group_key=desired.key,
                episode=episode,
                status_page_id=desired.status_page_id,
                name=desired.name,
                message=desired.message,
                components=dict(desired.components),
                notify_subscribers=desired.notify in (NotifyPolicy.ALWAYS, NotifyPolicy.OPEN_AND_RESOLVE),
                idempotency_key=idempotency_key(desired.key, episode, policy.key_scope),
                settings=desired.settings,
                alerts=desired.alert_series,
            ),
        )
    )


def _settle_attempted_create(
    desired: DesiredGroup | None, published: PublishedGroup, scope: str
) -> CreateIncident:
    """A create was sent, its outcome was never recorded, and the group is quiet now.

    Replaying the create with the episode's idempotency key returns the incident if the first
    attempt reached the page (the lifecycle then winds it down); if it never did, the replay
    creates it already resolved, which shows nothing as ongoing. Either way no incident is left
    open without the bridge knowing its id.
    """
    return CreateIncident(
        group_key=published.key,
        episode=published.episode,
        status_page_id=published.status_page_id,
        name=published.name or (desired.name if desired is not None else published.key),
        message=group_settings(desired, published).resolved_message or DEFAULT_RESOLVED_MESSAGE,
        components={},
        notify_subscribers=False,
        idempotency_key=idempotency_key(published.key, published.episode, scope),
        incident_status=IncidentStatus.RESOLVED,
    )


def before_create(published: PublishedGroup | None, action: CreateIncident) -> PublishedGroup:
    """The write-ahead record of a create, committed before the request is sent."""
    base = published or PublishedGroup(
        key=action.group_key, episode=action.episode, status_page_id=action.status_page_id
    )
    return replace(
        base,
        episode=action.episode,
        status_page_id=action.status_page_id,
        incident_id=None,
        incident_status=None,
        components={},
        name=action.name,
        update_count=0,
        create_attempted=True,
        # The rule's settings and the series behind it are recorded ahead too: if the outcome is
        # never recorded and the alerts then resolve, the wind-down must still be the rule's.
        settings=action.settings if action.settings is not None else base.settings,
        alerts=action.alerts or base.alerts,
    )


def next_episode(published: PublishedGroup | None) -> int:
    """The episode a create belongs to: a confirmed (resolved) episode is used up; an unconfirmed one
    is reused so that a create replayed after a crash carries the same idempotency key."""
    if published is None:
        return 1
    if published.incident_status is None:
        return published.episode
    return published.episode + 1


def _target(
    desired: DesiredGroup | None, published: PublishedGroup
) -> tuple[IncidentStatus, dict[str, ComponentStatus]]:
    assert published.incident_status is not None
    components = dict.fromkeys(published.components, ComponentStatus.OPERATIONAL)
    if desired is not None and desired.firing:
        components.update(desired.components)
        status = published.incident_status
        if status is IncidentStatus.MONITORING:
            status = IncidentStatus.INVESTIGATING
        return status, components
    return IncidentStatus.MONITORING, components


def digest(status: IncidentStatus, components: Mapping[str, ComponentStatus]) -> str:
    """16 hex digits identifying a target (status and components, order-free): the pending change's key."""
    text = status.value + ";" + ";".join(f"{k}={v.value}" for k, v in sorted(components.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _is_improvement(
    status: IncidentStatus,
    components: Mapping[str, ComponentStatus],
    published: PublishedGroup,
) -> bool:
    assert published.incident_status is not None
    before = SEVERITY[worst(published.components.values())]
    after = SEVERITY[worst(components.values())]
    if after != before:
        return after < before
    if status != published.incident_status:
        return _STATUS_RANK.get(status, 0) < _STATUS_RANK.get(published.incident_status, 0)
    # Same worst status and same incident status: a component recovered or joined at a status no
    # worse than the rest; it is an improvement when no component got worse.
    return all(
        SEVERITY[s] <= SEVERITY[published.components.get(c, ComponentStatus.OPERATIONAL)]
        for c, s in components.items()
    )


def _budget_allows(status: IncidentStatus, published: PublishedGroup, policy: Policy) -> bool:
    if status is IncidentStatus.RESOLVED:
        limit = MAX_UPDATES
    elif status != published.incident_status:
        limit = MAX_UPDATES - 1
    else:
        limit = MAX_UPDATES - policy.reserved_updates
    return published.update_count < limit


def note_flip(published: PublishedGroup, desired: DesiredGroup | None, now: datetime) -> PublishedGroup:
    """Record a flip of an open group between firing and clear, and whether it is flapping.

    Flapping starts when the flips within ``flap_window`` pass ``flap_threshold``, and lasts
    until no flip has come for a whole ``flap_window``."""
    if not published.open or published.taken_over:
        return published
    firing = desired is not None and desired.firing
    timings = group_settings(desired, published).timings
    flips = tuple(t for t in published.flips if t > now - timings.flap_window)
    if published.last_firing is not None and firing != published.last_firing:
        flips = (*flips, now)
    since = published.flapping_since
    if timings.flap_threshold and len(flips) > timings.flap_threshold and since is None:
        since = now
    if since is not None and not flips:
        since = None
    if (flips, firing, since) == (published.flips, published.last_firing, published.flapping_since):
        return published
    return replace(published, flips=flips, last_firing=firing, flapping_since=since)


def _flapping_target(
    status: IncidentStatus, components: Mapping[str, ComponentStatus], published: PublishedGroup
) -> tuple[IncidentStatus, dict[str, ComponentStatus]]:
    """While flapping: still investigating, each component at the worst status seen."""
    worst_seen = dict(published.components)
    for c, st in components.items():
        if SEVERITY[st] > SEVERITY[worst_seen.get(c, ComponentStatus.OPERATIONAL)]:
            worst_seen[c] = st
    if status is IncidentStatus.MONITORING:
        status = published.incident_status or IncidentStatus.INVESTIGATING
        if status is IncidentStatus.MONITORING:
            status = IncidentStatus.INVESTIGATING
    return status, worst_seen


def _plan_open(
    desired: DesiredGroup | None, published: PublishedGroup, now: datetime, policy: Policy
) -> Plan:
    if published.flapping_since is None:
        return _plan_open_steady(desired, published, now, policy, flapping=False)
    window = group_settings(desired, published).timings.flap_window
    quiet_at = (published.flips[-1] if published.flips else now) + window
    result = _plan_open_steady(desired, published, now, policy, flapping=True)
    if result.held or result.actions:
        wake = quiet_at if result.wake_at is None else min(result.wake_at, quiet_at)
        return replace(result, wake_at=wake)
    return Plan(
        wake_at=quiet_at,
        held=f"flapping: open at the worst status seen; monitoring once quiet until {quiet_at.isoformat()}",
    )


def _plan_open_steady(
    desired: DesiredGroup | None, published: PublishedGroup, now: datetime, policy: Policy, *, flapping: bool
) -> Plan:
    assert published.incident_id is not None, "an open incident has an id"
    incident_id = published.incident_id
    # A rename goes out with the publication whose state it names, or on its own when nothing else
    # is pending; never inside a held plan (a held plan has no actions at all: what it would do
    # is what waits, title included).
    actions: list[RenameIncident | UpdateIncident] = []
    if desired is not None and desired.name and desired.name != published.name:
        actions.append(RenameIncident(published.key, incident_id, desired.name))

    status, components = _target(desired, published)
    coalesced = _coalesce_until(published, policy)
    settings = group_settings(desired, published)
    notify_policy = settings.notify
    if flapping:
        status, components = _flapping_target(status, components, published)
        if not published.flap_announced:
            # The one extra update a flapping group makes: it says the problem is intermittent.
            if coalesced is not None and now < coalesced:
                return Plan(wake_at=coalesced, held="coalescing updates")
            if not _budget_allows(status, published, policy):
                return Plan(held="update budget exhausted: only status changes are still published")
            actions.append(
                _update(
                    published,
                    status,
                    components,
                    settings.intermittent_message or DEFAULT_INTERMITTENT_MESSAGE,
                    notify_policy,
                    announces_flapping=True,
                )
            )
            return Plan(actions=tuple(actions))

    if status == published.incident_status and components == dict(published.components):
        if status is not IncidentStatus.MONITORING:
            if actions and coalesced is not None and now < coalesced:
                return Plan(wake_at=coalesced, held="coalescing updates")
            return Plan(actions=tuple(actions))
        resolve_after = settings.timings.resolve_after
        monitoring_since = published.monitoring_since or published.last_published_at or now
        resolves_at = monitoring_since + resolve_after
        if now < resolves_at:
            return Plan(
                wake_at=resolves_at,
                held=f"resolve_after: resolves at {resolves_at.isoformat()}",
            )
        if coalesced is not None and now < coalesced:
            return Plan(wake_at=coalesced, held="coalescing updates")
        if not _budget_allows(IncidentStatus.RESOLVED, published, policy):
            return Plan(held="update budget exhausted (100 per incident)")
        actions.append(
            UpdateIncident(
                group_key=published.key,
                incident_id=incident_id,
                incident_status=IncidentStatus.RESOLVED,
                components=None,
                message=settings.resolved_message or DEFAULT_RESOLVED_MESSAGE,
                notify_subscribers=_notifies(notify_policy, IncidentStatus.RESOLVED),
            )
        )
        return Plan(actions=tuple(actions))

    target_digest = digest(status, components)
    since = published.pending_since if published.pending_digest == target_digest else now
    assert since is not None
    timings = settings.timings
    if _is_improvement(status, components, published):
        hold = timings.downgrade_after if timings.downgrade_after is not None else timings.change_after
    else:
        hold = timings.change_after
    if now < since + hold:
        return Plan(
            wake_at=since + hold,
            pending_digest=target_digest,
            pending_since=since,
            held=f"change must hold until {(since + hold).isoformat()}",
        )
    if coalesced is not None and now < coalesced:
        return Plan(
            wake_at=coalesced,
            pending_digest=target_digest,
            pending_since=since,
            held="coalescing updates",
        )
    if not _budget_allows(status, published, policy):
        return Plan(
            pending_digest=target_digest,
            pending_since=since,
            held="update budget exhausted: only status changes are still published",
        )
    if status is IncidentStatus.MONITORING:
        message = policy.monitoring_message
    else:
        message = desired.message if desired is not None else policy.monitoring_message
    actions.append(_update(published, status, components, message, notify_policy))
    return Plan(actions=tuple(actions))


def _update(
    published: PublishedGroup,
    status: IncidentStatus,
    components: Mapping[str, ComponentStatus],
    message: str,
    notify: NotifyPolicy,
    *,
    announces_flapping: bool = False,
) -> UpdateIncident:
    """An update of the open incident carrying the full component set."""
    assert published.incident_id is not None
    return UpdateIncident(
        group_key=published.key,
        incident_id=published.incident_id,
        incident_status=status,
        components=dict(components),
        message=message,
        notify_subscribers=_notifies(notify, status),
        announces_flapping=announces_flapping,
    )


# --- state transitions recorded with each action's outcome ------------------------------------


def after_create(
    published: PublishedGroup | None,
    action: CreateIncident,
    incident_id: str,
    now: datetime,
    *,
    incident_status: IncidentStatus | None = None,
    components: Mapping[str, ComponentStatus] | None = None,
    update_count: int = 1,
) -> PublishedGroup:
    """Record a created incident. The page's answer wins over the action: an idempotent replay
    returns the original incident, whatever this request asked for."""
    base = published or PublishedGroup(
        key=action.group_key, episode=action.episode, status_page_id=action.status_page_id
    )
    return replace(
        base,
        episode=action.episode,
        status_page_id=action.status_page_id,
        incident_id=incident_id,
        incident_status=incident_status or action.incident_status,
        components=dict(action.components if components is None else components),
        name=action.name,
        update_count=update_count,
        create_attempted=False,
        opened_at=now,
        last_published_at=now,
        monitoring_since=None,
        pending_digest=None,
        pending_since=None,
        outcome_unknown=False,
        taken_over=False,
        taken_over_reason=None,
        settings=action.settings if action.settings is not None else base.settings,
        alerts=action.alerts or base.alerts,
        last_firing=None,
        flips=(),
        flapping_since=None,
        flap_announced=False,
        sent=() if base.episode != action.episode or base.incident_id != incident_id else base.sent,
    )


def after_update(published: PublishedGroup, action: UpdateIncident, now: datetime) -> PublishedGroup:
    """The group's record once ``action`` is known to be applied at ``now``; a forced resolve becomes a
    takeover, so the bridge does not reopen while the alerts still fire.
    """
    if action.components is None:
        components = dict.fromkeys(published.components, ComponentStatus.OPERATIONAL)
    else:
        components = dict(action.components)
    if action.incident_status is IncidentStatus.MONITORING:
        monitoring_since = published.monitoring_since or now
    else:
        monitoring_since = None
    forced = published.force_resolve and action.incident_status is IncidentStatus.RESOLVED
    return replace(
        published,
        # A forced resolve is a human decision: the bridge does not reopen while the alerts fire.
        force_resolve=False,
        taken_over=published.taken_over or forced,
        taken_over_reason="force-resolved by an admin" if forced else published.taken_over_reason,
        incident_status=action.incident_status,
        components=components,
        update_count=published.update_count + 1,
        last_published_at=now,
        monitoring_since=monitoring_since,
        pending_digest=None,
        pending_since=None,
        outcome_unknown=False,
        unknown_since=None,
        recheck_at=None,
        flap_announced=published.flap_announced or action.announces_flapping,
    )


def after_rename(published: PublishedGroup, action: RenameIncident) -> PublishedGroup:
    """The group's record once the rename is known to be applied."""
    return replace(published, name=action.name)


def after_takeover(published: PublishedGroup) -> PublishedGroup:
    """Close a taken-over episode once its alerts have cleared. If the human left the incident open,
    it is remembered (and reported) as left open; the next firing opens a new episode."""
    left_open = published.incident_id if published.open else None
    return replace(
        published,
        taken_over=False,
        incident_status=IncidentStatus.RESOLVED,
        left_open_incident=left_open or published.left_open_incident,
        pending_digest=None,
        pending_since=None,
        outcome_unknown=False,
    )


def with_pending(published: PublishedGroup | None, result: Plan) -> PublishedGroup | None:
    """Remember (or forget) the hold the planner is counting."""
    if published is None:
        return None
    if (published.pending_digest, published.pending_since) == (
        result.pending_digest,
        result.pending_since,
    ):
        return published
    return replace(published, pending_digest=result.pending_digest, pending_since=result.pending_since)
