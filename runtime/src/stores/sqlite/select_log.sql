-- One row holding the page as a JSON array (see select_stream.sql).
SELECT json_group_array(
           json_array(position, sequence, hex(event_id), event_type, event_version,
                      payload, metadata, recorded_at, aggregate_type, aggregate_id)
           ORDER BY position)
FROM (SELECT position, sequence, event_id, event_type, event_version, payload, metadata,
             recorded_at, aggregate_type, aggregate_id
      FROM {events}
      WHERE position > ?1
      ORDER BY position
      LIMIT ?2)
