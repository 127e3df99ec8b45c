-- The event log: one row per event, never updated or deleted by the store.
-- `position` is the global log order (AUTOINCREMENT: never reused, even after a rollback).
CREATE TABLE {events} (
    position        INTEGER PRIMARY KEY AUTOINCREMENT,
    aggregate_type  TEXT    NOT NULL,
    aggregate_id    TEXT    NOT NULL,
    sequence        INTEGER NOT NULL CHECK (sequence > 0),
    event_id        BLOB    NOT NULL UNIQUE CHECK (length(event_id) = 16),
    event_type      TEXT    NOT NULL,
    event_version   INTEGER NOT NULL CHECK (event_version > 0),
    payload         TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    -- Microseconds since the Unix epoch, UTC.
    recorded_at     INTEGER NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence)
);

-- The newest snapshot per aggregate; a cache that may be dropped at any time.
CREATE TABLE {snapshots} (
    aggregate_type  TEXT    NOT NULL,
    aggregate_id    TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    -- The state type's fingerprint, a u64 stored bit for bit as a signed integer.
    fingerprint     INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    taken_at        INTEGER NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
) WITHOUT ROWID;
