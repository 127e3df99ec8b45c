-- Keeps the newest snapshot: an older one never replaces a newer one.
INSERT INTO {snapshots} AS s (aggregate_type, aggregate_id, version, fingerprint, state, taken_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET
    version = excluded.version,
    fingerprint = excluded.fingerprint,
    state = excluded.state,
    taken_at = excluded.taken_at
WHERE excluded.version >= s.version
