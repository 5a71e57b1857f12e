-- Operator switches shared by every replica (pause, guard releases): key -> JSON value.
CREATE TABLE control (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
