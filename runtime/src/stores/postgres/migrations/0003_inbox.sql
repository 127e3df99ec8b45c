-- The event ids each bus consumer has processed, written in the transaction that applied the
-- message, so that a redelivered message is recognized and skipped.
CREATE TABLE {inbox} (
    consumer      TEXT        NOT NULL,
    event_id      UUID        NOT NULL,
    processed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
