SELECT position, transaction_id::text::bigint, sequence, event_id, event_type, event_version,
       payload::text, metadata::text, recorded_at
FROM {events}
WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3
ORDER BY sequence
LIMIT $4
