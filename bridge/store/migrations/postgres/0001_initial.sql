-- Alerts as received: one row per instance (source, fingerprint, starts_at). Times are stored in
-- the same fixed-width UTC text as on SQLite so both backends sort and compare alike.
CREATE TABLE alerts (
    source TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    ends_at TEXT,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    generator_url TEXT NOT NULL,
    received_at TEXT NOT NULL,
    first_received_at TEXT NOT NULL,
    last_received_at TEXT NOT NULL,
    receive_count INTEGER NOT NULL,
    PRIMARY KEY (source, fingerprint, starts_at)
);
CREATE INDEX alerts_firing ON alerts (status, last_received_at);

CREATE TABLE incident_groups (
    key TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE action_log (
    id BIGSERIAL PRIMARY KEY,
    group_key TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    at TEXT NOT NULL,
    incident_id TEXT,
    detail TEXT NOT NULL DEFAULT '',
    epoch BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX action_log_group ON action_log (group_key, id);
