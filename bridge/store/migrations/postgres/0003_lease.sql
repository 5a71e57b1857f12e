-- The reconcile lease: the holder of the advisory lock bumps the epoch when it takes over, and every
-- write of published state checks it in the same transaction (fencing a stale leader).
CREATE TABLE lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL,
    holder TEXT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
