-- A random name for this store, mixed into every incident create's idempotency key. A store that
-- is lost and started afresh numbers its episodes from 1 again; with the same keys, its creates
-- would replay its predecessor's, and incident.io answers a replay with the original incident,
-- which may be resolved by now or a human's. A store that already holds groups gets the empty
-- name, which keeps the keys it used before: a create of unknown outcome still replays safely.
INSERT INTO control (key, value, updated_at)
SELECT 'store_identity',
       CASE WHEN EXISTS (SELECT 1 FROM incident_groups) THEN '""'
            ELSE '"' || lower(hex(randomblob(16))) || '"' END,
       datetime('now');
