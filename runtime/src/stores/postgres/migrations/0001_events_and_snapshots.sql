-- The event log: one row per event, never updated or deleted by the store.
-- `transaction_id` is the writing transaction: readers follow the log in
-- (transaction_id, position) order, and only below the oldest transaction still running, so
-- an event whose transaction commits late is read when it commits, never skipped.
CREATE TABLE {events} (
    position        BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    aggregate_type  TEXT        NOT NULL,
    aggregate_id    TEXT        NOT NULL,
    sequence        BIGINT      NOT NULL CHECK (sequence > 0),
    event_id        UUID        NOT NULL UNIQUE,
    event_type      TEXT        NOT NULL,
    event_version   INTEGER     NOT NULL CHECK (event_version > 0),
    payload         JSONB       NOT NULL,
    metadata        JSONB       NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT {events_stream_sequence} UNIQUE (aggregate_type, aggregate_id, sequence)
);

CREATE INDEX {events_log} ON {events} (transaction_id, position);

-- The newest snapshot per aggregate; a cache that may be dropped at any time. The state is
-- kept as the exact text the aggregate's codec wrote (TEXT, not JSONB, which would reformat it).
CREATE TABLE {snapshots} (
    aggregate_type  TEXT        NOT NULL,
    aggregate_id    TEXT        NOT NULL,
    version         BIGINT      NOT NULL,
    -- The state type's fingerprint, a u64 stored bit for bit as a signed integer.
    fingerprint     BIGINT      NOT NULL,
    state           TEXT        NOT NULL,
    taken_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
