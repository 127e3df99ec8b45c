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
