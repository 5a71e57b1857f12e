-- What the bridge published for each maintenance occurrence (engine's PublishedMaintenance as JSON).
CREATE TABLE published_maintenances (
    key TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
