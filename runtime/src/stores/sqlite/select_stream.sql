-- One row holding the page as a JSON array: sqlx hands rows one by one from its worker thread,
-- and one row per page reads a long stream about three times faster than one row per event.
SELECT json_group_array(
           json_array(position, sequence, hex(event_id), event_type, event_version,
                      payload, metadata, recorded_at)
           ORDER BY sequence)
FROM (SELECT position, sequence, event_id, event_type, event_version, payload, metadata,
             recorded_at
      FROM {events}
      WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND sequence > ?3
      ORDER BY sequence
      LIMIT ?4)
