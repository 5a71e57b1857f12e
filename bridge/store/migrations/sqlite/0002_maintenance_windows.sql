-- Maintenance windows created through the admin API (config windows live in files), and what the
-- bridge published for each occurrence: both as JSON documents owned by bridge.maintenance.
CREATE TABLE maintenance_windows (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
