-- The event ids each bus consumer has processed, written in the transaction that applied the
-- message, so that a redelivered message is recognized and skipped.
CREATE TABLE {inbox} (
    consumer      TEXT    NOT NULL,
    event_id      BLOB    NOT NULL CHECK (length(event_id) = 16),
    -- Microseconds since the Unix epoch, UTC.
    processed_at  INTEGER NOT NULL,
    PRIMARY KEY (consumer, event_id)
) WITHOUT ROWID;
