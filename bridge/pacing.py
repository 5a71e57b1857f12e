"""Every retry, back-off, probe and timeout value of the daemon, in one place, each with its reason.

Settings (``STATUSBRIDGE_*``) are what an operator tunes for their installation; these are what
the code needs to stay polite to the provider and converge quickly, chosen once and named here so
that their relations stay visible (a probe cap under the reconcile interval, a lease retry under
the HA drill's takeover target). The app passes them to the components it builds; a component's
own default names the same constant, so a test that builds one alone gets the production value.
The Status Page client is the exception: it imports nothing of ours, and gets its retry policy
from the app only.

All values are seconds.
"""

from __future__ import annotations

from typing import Final

# --- the Status Page API -----------------------------------------------------------------------

API_RETRY_ATTEMPTS: Final = 3
"""Tries of one request in one call: a blip (a dropped connection, one 502) heals inside the call;
anything longer is the breaker's to pace, not the call's."""
API_RETRY_TOTAL: Final = 5.0
"""One call, its retries included, never holds its turn at the provider for longer than this."""
API_RETRY_BASE: Final = 0.25
"""First in-call retry delay (full jitter, doubling): short, since a blip is short."""
API_RETRY_CAP: Final = 1.0
"""Longest in-call retry delay: a breaker probe must not sit in a long back-off when the
provider comes back."""

BREAKER_INTERVAL: Final = 0.5
"""First probe after the provider failed: a one-off failure costs half a second of publication."""
BREAKER_CAP: Final = 2.5
"""Probes are never further apart than this during an outage: one request per 2.5 s at most
while it lasts, and the page converges within about 2.5 s of the provider's recovery."""

ACTION_BACKOFF_BASE: Final = 1.0
"""First back-off of a group whose action failed for its own reasons (a refusal, not an outage),
doubling with full jitter: other groups keep publishing meanwhile."""
ACTION_BACKOFF_CAP: Final = 120.0
"""Longest back-off of one group: a problem fixed on the provider's side is retried within two
minutes, and a permanent one costs one request per two minutes."""

# --- the reconcile loop ------------------------------------------------------------------------

MIN_PASS_INTERVAL: Final = 0.25
"""Passes triggered by webhooks are at least this far apart: a burst of deliveries is planned once,
and a fresh alert still reaches the page within a quarter of a second."""
PASS_DUTY_FACTOR: Final = 3.0
"""After a pass, wait at least this many times as long as it took before the next one (on change):
reading and evaluating take at most a quarter of the time however many alerts are active, and
ingest keeps the rest."""
MAX_PASS_PAUSE: Final = 5.0
"""...but never longer than this: a huge store must not make the page lag by minutes."""

PASS_RETRY_BASE: Final = 0.5
"""After a pass that failed (the store did not answer), the next comes 0.5·2ⁿ s later..."""
PASS_RETRY_CAP: Final = 30.0
"""...and never later than this: half the default reconcile interval."""

LEASE_RETRY: Final = 2.0
"""A replica without the reconcile lease tries to take it this often (and the leader looks at its
own this often): takeover within about 2 s of the leader's loss, the HA drill's target."""
LEASE_CHECK: Final = 1.0
"""The PostgreSQL lease holder checks its lease connection this often (its query may take twice
this): a lost lease stops publication within about 2 s, before another replica takes over."""

RULES_WATCH: Final = 2.0
"""The rules file is checked for changes, and unresolved page or component names retried, this
often: an edit or a provider that comes back shows within 2 s, for one stat per 2 s."""

LAG_PROBE: Final = 2.0
"""The event loop's lag (``statusbridge_event_loop_lag_seconds``) is sampled this often: a timer due
this often shows how late the loop runs timers, for one wake-up per 2 s, the same period as the
rules watcher and the lease loop (on a virtual clock the three share each jump)."""

# --- health and ingest -------------------------------------------------------------------------

STORE_PING_TIMEOUT: Final = 2.0
"""``/readyz`` waits this long for the store before it reports it unavailable: longer means a
probe that hangs instead of a clear answer."""

PULL_TIMEOUT: Final = 10.0
"""One pull of Alertmanager's active alerts: a slow Alertmanager is skipped this pass (the next
pass pulls again) rather than holding the pass for a whole reconcile interval."""

INGEST_RETRY_AFTER: Final = 5
"""What a webhook refused because the store is unavailable tells the sender (``Retry-After``):
Alertmanager and Grafana retry anyway; 5 s is short enough not to lose an alert's ordering, long
enough not to hammer a store that is restarting."""
