-- name: select_checkpoint
SELECT txn, position FROM {checkpoints} WHERE projection = ?1 AND version = ?2

-- name: insert_checkpoint
-- A projection's first checkpoint; none may exist yet (ignored means: another runner made it).
INSERT INTO {checkpoints} (projection, version, txn, position, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (projection, version) DO NOTHING

-- name: advance_checkpoint
-- Moves a checkpoint only from where the runner read it: 0 rows means another runner moved it.
UPDATE {checkpoints} SET txn = ?3, position = ?4, updated_at = ?5
WHERE projection = ?1 AND version = ?2 AND txn = ?6 AND position = ?7

-- name: delete_checkpoint
DELETE FROM {checkpoints} WHERE projection = ?1 AND version = ?2

-- name: insert_dead_letter
INSERT INTO {dead_letters} (projection, version, event_id, txn, position, aggregate_type,
    aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at, error,
    attempts, parked_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
ON CONFLICT (projection, version, event_id) DO UPDATE SET
    error = excluded.error, attempts = excluded.attempts, parked_at = excluded.parked_at

-- name: select_dead_letters
SELECT txn, position, aggregate_type, aggregate_id, sequence, event_id, event_type,
    event_version, payload, metadata, recorded_at, error, attempts, parked_at
FROM {dead_letters} WHERE projection = ?1 AND version = ?2
ORDER BY txn, position

-- name: delete_dead_letter
DELETE FROM {dead_letters} WHERE projection = ?1 AND version = ?2 AND event_id = ?3

-- name: activate
-- A version becomes the active one of its name unless a newer one already is.
INSERT INTO {projection_versions} (projection, version) VALUES (?1, ?2)
ON CONFLICT (projection) DO UPDATE SET version = excluded.version
WHERE {projection_versions}.version < excluded.version

-- name: select_active
SELECT version FROM {projection_versions} WHERE projection = ?1

-- name: acquire_lease
-- Taken if free, expired, or already this owner's: 1 row changed means held.
INSERT INTO {leases} (projection, version, owner, expires_at) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (projection, version) DO UPDATE SET
    owner = excluded.owner, expires_at = excluded.expires_at
WHERE {leases}.expires_at < ?5 OR {leases}.owner = excluded.owner

-- name: renew_lease
UPDATE {leases} SET expires_at = ?4 WHERE projection = ?1 AND version = ?2 AND owner = ?3

-- name: release_lease
DELETE FROM {leases} WHERE projection = ?1 AND version = ?2 AND owner = ?3

-- name: record_processed
-- 0 rows: the consumer processed this event before.
INSERT INTO {inbox} (consumer, event_id, processed_at) VALUES (?1, ?2, ?3)
ON CONFLICT (consumer, event_id) DO NOTHING

-- name: prune_processed
DELETE FROM {inbox} WHERE consumer = ?1 AND processed_at < ?2

-- name: select_instance
SELECT state FROM {process_instances} WHERE manager = ?1 AND instance = ?2

-- name: select_instance_deadlines
SELECT name, due_at FROM {process_deadlines} WHERE manager = ?1 AND instance = ?2
ORDER BY due_at, name

-- name: upsert_instance
INSERT INTO {process_instances} (manager, instance, state, updated_at) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (manager, instance) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at

-- name: delete_instance
DELETE FROM {process_instances} WHERE manager = ?1 AND instance = ?2

-- name: delete_deadlines
DELETE FROM {process_deadlines} WHERE manager = ?1 AND instance = ?2

-- name: insert_deadline
INSERT INTO {process_deadlines} (manager, instance, name, due_at) VALUES (?1, ?2, ?3, ?4)

-- name: select_due
-- Through the index on (manager, due_at).
SELECT instance, name, due_at FROM {process_deadlines}
WHERE manager = ?1 AND due_at <= ?2
ORDER BY due_at, instance, name
LIMIT ?3

-- name: archive_instance
INSERT INTO {process_archive} (manager, instance, state, completed_at) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (manager, instance) DO UPDATE SET state = excluded.state, completed_at = excluded.completed_at

-- name: select_archived
SELECT state FROM {process_archive} WHERE manager = ?1 AND instance = ?2

-- name: select_next_due
-- Through the index on (manager, due_at).
SELECT due_at FROM {process_deadlines} WHERE manager = ?1 ORDER BY due_at LIMIT 1

-- name: select_refusal
SELECT reason FROM {process_refusals} WHERE manager = ?1 AND command_id = ?2

-- name: insert_refusal
INSERT INTO {process_refusals} (manager, command_id, instance, reason, refused_at)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (manager, command_id) DO NOTHING

-- name: delete_refusals
-- A completed instance's refused commands, through the index on (manager, instance).
DELETE FROM {process_refusals} WHERE manager = ?1 AND instance = ?2
