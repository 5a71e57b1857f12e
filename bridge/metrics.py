"""Prometheus metrics of one daemon, on a registry of its own (tests run several apps per process).

Counters are incremented where things happen; gauges that describe state (alerts active, incidents
open, rules health) are refreshed from the runtime when ``/metrics`` is scraped, so they can never
drift from the truth.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info


class Metrics:
    """Every Prometheus metric of one daemon, in a registry of its own (``/metrics`` exposes it)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.webhooks = Counter(
            "statusbridge_webhooks_total",
            "Webhook deliveries by source and outcome",
            ["source", "outcome"],
            registry=r,
        )
        self.api_requests = Counter(
            "statusbridge_api_requests_total",
            "Status page API requests by operation and outcome",
            ["operation", "outcome"],
            registry=r,
        )
        self.api_latency = Histogram(
            "statusbridge_api_request_seconds", "Status page API latency", ["operation"], registry=r
        )
        self.api_retries = Counter(
            "statusbridge_api_retries_total",
            "Status page API attempts after the first",
            ["operation"],
            registry=r,
        )
        self.reconcile_runs = Counter(
            "statusbridge_reconcile_runs_total", "Reconcile passes by outcome", ["outcome"], registry=r
        )
        self.actions = Counter(
            "statusbridge_actions_total",
            "Actions planned (and executed unless shadow)",
            ["action"],
            registry=r,
        )
        self.rules_reload_errors = Counter(
            "statusbridge_rules_reload_errors_total", "Rule reloads that failed", registry=r
        )
        self.rules_ok = Gauge(
            "statusbridge_rules_last_reload_ok", "1 if the last rules (re)load succeeded", registry=r
        )
        self.alerts_active = Gauge("statusbridge_alerts_active", "Firing alerts in the store", registry=r)
        self.incidents_open = Gauge(
            "statusbridge_incidents_open", "Incidents the bridge has open on the page", registry=r
        )
        self.groups_held = Gauge(
            "statusbridge_groups_held", "Groups with a publication held back", registry=r
        )
        self.blind = Gauge("statusbridge_blind", "1 while a heartbeat alert is missing", registry=r)
        self.flapping = Gauge(
            "statusbridge_flapping_groups",
            "Open incident groups flapping between firing and clear (damped: see flap_threshold)",
            registry=r,
        )
        self.guard_held = Gauge(
            "statusbridge_guard_held_groups",
            "Groups whose publication the blast-radius guard holds",
            registry=r,
        )
        self.left_open = Gauge(
            "statusbridge_taken_over_left_open",
            "Taken-over incidents still open although their alerts cleared",
            registry=r,
        )
        self.impacts = Gauge(
            "statusbridge_component_impact",
            "Desired status severity per component (0 operational .. 3 full outage)",
            ["component"],
            registry=r,
        )
        self.reconcile_lag = Gauge(
            "statusbridge_reconcile_lag_seconds",
            "Seconds since the last completed reconcile pass",
            registry=r,
        )
        self.drift = Counter(
            "statusbridge_drift_corrections_total",
            "Read-backs that changed the recorded state (takeovers, adopted outcomes)",
            registry=r,
        )
        self.coalesced = Gauge(
            "statusbridge_coalesced_groups", "Groups whose update waits for the coalescing window", registry=r
        )
        self.maintenances = Gauge(
            "statusbridge_maintenance_windows",
            "Published maintenance occurrences by status",
            ["status"],
            registry=r,
        )
        self.provider_down = Gauge(
            "statusbridge_status_page_api_down",
            "1 while the status page API is unavailable (writes paused, one probe at a time)",
            registry=r,
        )
        self.leader = Gauge(
            "statusbridge_leader", "1 while this replica holds the reconcile lease", registry=r
        )
        self.store_bytes = Gauge(
            "statusbridge_store_bytes", "Bytes the store takes on disk (SQLite) or in its schema", registry=r
        )
        self.loop_lag = Histogram(
            "statusbridge_event_loop_lag_seconds",
            "How late the event loop ran a timer that was due: a stall delays every webhook and pass",
            buckets=(0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.build = Info("statusbridge_build", "Build information", registry=r)

    def observe_webhook(self, source: str, status: int) -> None:
        """Count one webhook delivery by its source and the HTTP status it was answered with."""
        self.webhooks.labels(source, str(status)).inc()

    def observe_api(self, operation: str, outcome: str, seconds: float, attempt: int) -> None:
        """Count one status page API attempt, its latency (seconds), and a retry when ``attempt`` > 1."""
        self.api_requests.labels(operation, outcome).inc()
        self.api_latency.labels(operation).observe(seconds)
        if attempt > 1:
            self.api_retries.labels(operation).inc()
