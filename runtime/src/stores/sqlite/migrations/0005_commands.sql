-- The idempotency keys of commands (`Metadata::command_id`): written in the transaction that
-- appended the command's events, so that the same key on the same stream is answered with
-- those events instead of running again. Rows older than the store's retention are deleted
-- by later appends.
CREATE TABLE {commands} (
    aggregate_type  TEXT    NOT NULL,
    aggregate_id    TEXT    NOT NULL,
    command_id      TEXT    NOT NULL,
    first_sequence  INTEGER NOT NULL CHECK (first_sequence > 0),
    last_sequence   INTEGER NOT NULL CHECK (last_sequence >= first_sequence),
    -- Microseconds since the Unix epoch, UTC.
    recorded_at     INTEGER NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, command_id)
) WITHOUT ROWID;

CREATE INDEX {commands}_by_time ON {commands} (recorded_at);
