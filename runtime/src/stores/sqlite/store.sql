-- name: select_stream
SELECT position, sequence, event_id, event_type, event_version, payload, metadata, recorded_at
FROM {events}
WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND sequence > ?3
ORDER BY sequence
LIMIT ?4

-- name: select_aggregate
-- What loading an aggregate needs, in one statement (one read of the file): its snapshot when
-- ?3 (the fingerprint the caller restores) is given, as a first row of sequence 0 (events have
-- sequences from 1), with the fingerprint in the position column, the version in the event
-- version column and the state in the payload column; then its events in sequence order, from
-- the snapshot's own event when the fingerprint is ?3, else from the first.
SELECT fingerprint, 0 AS sequence, NULL, NULL, version, state, NULL, NULL
FROM {snapshots}
WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND ?3 IS NOT NULL
UNION ALL
SELECT position, sequence, event_id, event_type, event_version, payload, metadata, recorded_at
FROM {events}
WHERE aggregate_type = ?1 AND aggregate_id = ?2
  AND sequence >= COALESCE((SELECT version FROM {snapshots}
                            WHERE aggregate_type = ?1 AND aggregate_id = ?2
                              AND fingerprint = ?3), 1)
ORDER BY sequence

-- name: select_log
SELECT position, sequence, event_id, event_type, event_version, payload, metadata, recorded_at,
       aggregate_type, aggregate_id
FROM {events}
WHERE position > ?1
ORDER BY position
LIMIT ?2

-- name: select_log_of
-- The log of one aggregate type, through the index on (aggregate_type, position).
SELECT position, sequence, event_id, event_type, event_version, payload, metadata, recorded_at,
       aggregate_type, aggregate_id
FROM {events}
WHERE aggregate_type = ?1 AND position > ?2
ORDER BY position
LIMIT ?3

-- name: select_version
SELECT COALESCE(MAX(sequence), 0) FROM {events} WHERE aggregate_type = ?1 AND aggregate_id = ?2

-- name: select_snapshot
SELECT version, fingerprint, state FROM {snapshots} WHERE aggregate_type = ?1 AND aggregate_id = ?2

-- name: upsert_snapshot
-- Keeps the newest snapshot: an older one never replaces a newer one.
INSERT INTO {snapshots} (aggregate_type, aggregate_id, version, fingerprint, state, taken_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET
    version = excluded.version,
    fingerprint = excluded.fingerprint,
    state = excluded.state,
    taken_at = excluded.taken_at
WHERE excluded.version >= {snapshots}.version

-- name: count_events
SELECT COUNT(*) FROM {events}

-- name: select_head
-- The newest event's number, through the primary key.
SELECT COALESCE(MAX(position), 0) FROM {events}

-- name: select_command
-- A command id's record, unless older than the retention's cutoff ?4.
SELECT first_sequence, last_sequence, recorded_at
FROM {commands}
WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND command_id = ?3 AND recorded_at >= ?4

-- name: prune_commands
-- Through the index on recorded_at.
DELETE FROM {commands} WHERE recorded_at < ?1

-- name: forget_command
-- One command id's record if older than the cutoff ?4: the id may be used again.
DELETE FROM {commands}
WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND command_id = ?3 AND recorded_at < ?4
