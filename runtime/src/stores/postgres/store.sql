-- name: select_stream
SELECT position, transaction_id::text::bigint, sequence, event_id, event_type, event_version,
       payload::text, metadata::text, recorded_at
FROM {events}
WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3
ORDER BY sequence
LIMIT $4

-- name: select_aggregate
-- What loading an aggregate needs, in one statement: its snapshot when $3 (the fingerprint the
-- caller restores) is given, as a first row of sequence 0 (events have sequences from 1), with
-- the fingerprint in the position column, the version in the transaction column and the state
-- in the payload column; then its events in sequence order, from the snapshot's own event when
-- the fingerprint is $3, else from the first.
SELECT fingerprint, version, 0::bigint AS sequence, NULL::uuid, NULL::text, NULL::int4, state,
       NULL::text, NULL::timestamptz
FROM {snapshots}
WHERE aggregate_type = $1 AND aggregate_id = $2 AND $3::bigint IS NOT NULL
UNION ALL
SELECT position, transaction_id::text::bigint, sequence, event_id, event_type, event_version,
       payload::text, metadata::text, recorded_at
FROM {events}
WHERE aggregate_type = $1 AND aggregate_id = $2
  AND sequence >= COALESCE((SELECT version FROM {snapshots}
                            WHERE aggregate_type = $1 AND aggregate_id = $2
                              AND fingerprint = $3::bigint), 1)
ORDER BY sequence

-- name: select_log
-- The log after ($1, $2) in (transaction_id, position) order, and only the events of
-- transactions older than the oldest one still running: those are all finished, so nothing
-- below the horizon can still appear. A transaction that commits late holds the horizon back
-- until it commits, and its events are read then, in their place.
-- The transaction id's text form is selected under another name (`txn`): an output column
-- named `transaction_id` would be what ORDER BY sorts on, and the index could not serve it.
SELECT position, transaction_id::text::bigint AS txn, sequence, event_id, event_type, event_version,
       payload::text, metadata::text, recorded_at, aggregate_type, aggregate_id
FROM {events}
WHERE (transaction_id, position) > ($1::text::xid8, $2)
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY transaction_id, position
LIMIT $3

-- name: select_log_of
-- The log of the aggregate types $4 after ($1, $2), under the same horizon as select_log: one
-- ordered range of the index on (aggregate_type, transaction_id, position) per type, merged.
-- One statement has one snapshot, so every range is cut at the same horizon.
SELECT e.position, e.transaction_id::text::bigint AS txn, e.sequence, e.event_id, e.event_type,
       e.event_version, e.payload::text, e.metadata::text, e.recorded_at, e.aggregate_type,
       e.aggregate_id
FROM unnest($4::text[]) AS t(aggregate_type)
CROSS JOIN LATERAL (
    SELECT *
    FROM {events} AS x
    WHERE x.aggregate_type = t.aggregate_type
      AND (x.transaction_id, x.position) > ($1::text::xid8, $2)
      AND x.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY x.transaction_id, x.position
    LIMIT $3
) AS e
ORDER BY e.transaction_id, e.position
LIMIT $3

-- name: select_version
SELECT COALESCE(MAX(sequence), 0) FROM {events} WHERE aggregate_type = $1 AND aggregate_id = $2

-- name: select_snapshot
SELECT version, fingerprint, state FROM {snapshots} WHERE aggregate_type = $1 AND aggregate_id = $2

-- name: upsert_snapshot
-- Keeps the newest snapshot: an older one never replaces a newer one.
INSERT INTO {snapshots} AS s (aggregate_type, aggregate_id, version, fingerprint, state, taken_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET
    version = excluded.version,
    fingerprint = excluded.fingerprint,
    state = excluded.state,
    taken_at = excluded.taken_at
WHERE excluded.version >= s.version

-- name: append
-- Appends a command's events if the stream's last sequence is $3, in one statement (its own
-- transaction). Two writers that both see version $3 both try sequence $3 + 1: the unique
-- constraint on (aggregate_type, aggregate_id, sequence) makes the second wait for the first
-- and fail, and the store reports that as the typed conflict.
INSERT INTO {events} (aggregate_type, aggregate_id, sequence, event_id, event_type,
                      event_version, payload, metadata, recorded_at)
SELECT $1, $2, $3 + e.ord, e.event_id, e.event_type, e.event_version, e.payload::jsonb,
       e.metadata::jsonb, e.recorded_at
FROM UNNEST($4::uuid[], $5::text[], $6::int4[], $7::text[], $8::text[], $9::timestamptz[])
     WITH ORDINALITY AS e(event_id, event_type, event_version, payload, metadata, recorded_at, ord)
WHERE (SELECT COALESCE(MAX(sequence), 0) FROM {events}
       WHERE aggregate_type = $1 AND aggregate_id = $2) = $3
RETURNING sequence, position, transaction_id::text::bigint

-- name: append_command
-- The append above, recording command id $10 for the stream in the same statement, once the
-- events went in: a command id the stream holds already violates {commands_key}, and the
-- statement writes nothing.
WITH appended AS (
    INSERT INTO {events} (aggregate_type, aggregate_id, sequence, event_id, event_type,
                          event_version, payload, metadata, recorded_at)
    SELECT $1, $2, $3 + e.ord, e.event_id, e.event_type, e.event_version, e.payload::jsonb,
           e.metadata::jsonb, e.recorded_at
    FROM UNNEST($4::uuid[], $5::text[], $6::int4[], $7::text[], $8::text[], $9::timestamptz[])
         WITH ORDINALITY AS e(event_id, event_type, event_version, payload, metadata, recorded_at, ord)
    WHERE (SELECT COALESCE(MAX(sequence), 0) FROM {events}
           WHERE aggregate_type = $1 AND aggregate_id = $2) = $3
    RETURNING sequence, position, transaction_id::text::bigint AS transaction_id
), recorded AS (
    INSERT INTO {commands} (aggregate_type, aggregate_id, command_id, first_sequence,
                            last_sequence, recorded_at)
    SELECT $1, $2, $10, MIN(sequence), MAX(sequence), ($9::timestamptz[])[1]
    FROM appended
    HAVING COUNT(*) > 0
)
SELECT sequence, position, transaction_id FROM appended

-- name: count_events
SELECT COUNT(*) FROM {events}

-- name: select_head
-- The newest event's number, through the primary key.
SELECT COALESCE(MAX(position), 0) FROM {events}

-- name: select_command
-- A command id's record, unless older than the retention's cutoff $4 (any age if NULL).
SELECT first_sequence, last_sequence, recorded_at
FROM {commands}
WHERE aggregate_type = $1 AND aggregate_id = $2 AND command_id = $3
  AND ($4::timestamptz IS NULL OR recorded_at >= $4)

-- name: prune_commands
-- Through the index on recorded_at.
DELETE FROM {commands} WHERE recorded_at < $1

-- name: forget_command
-- One command id's record if older than the cutoff $4: the id may be used again.
DELETE FROM {commands}
WHERE aggregate_type = $1 AND aggregate_id = $2 AND command_id = $3 AND recorded_at < $4
