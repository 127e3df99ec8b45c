SELECT position, aggregate_type, aggregate_id, sequence, event_id, event_type, event_version,
       payload, metadata, recorded_at
FROM {events}
WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND sequence > ?3
ORDER BY sequence
LIMIT ?4
