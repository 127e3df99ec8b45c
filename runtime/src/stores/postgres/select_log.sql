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
