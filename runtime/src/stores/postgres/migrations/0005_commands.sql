-- The idempotency keys of commands (`Metadata::command_id`): written by the statement that
-- appends the command's events, so that the same key on the same stream is answered with
-- those events instead of running again. Rows older than the store's retention are deleted
-- by later appends.
CREATE TABLE {commands} (
    aggregate_type  TEXT        NOT NULL,
    aggregate_id    TEXT        NOT NULL,
    command_id      TEXT        NOT NULL,
    first_sequence  BIGINT      NOT NULL CHECK (first_sequence > 0),
    last_sequence   BIGINT      NOT NULL CHECK (last_sequence >= first_sequence),
    recorded_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT {commands_key} PRIMARY KEY (aggregate_type, aggregate_id, command_id)
);

CREATE INDEX {commands_by_time} ON {commands} (recorded_at);
