-- Where each projection (name, version) has read the log up to, moved in the transaction that
-- applied the events. `txn` and `position` are the two halves of a LogPosition.
CREATE TABLE {checkpoints} (
    projection  TEXT        NOT NULL,
    version     INTEGER     NOT NULL,
    txn         BIGINT      NOT NULL,
    position    BIGINT      NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, version)
);

-- Events a projection could not apply and parked, with the whole stored event, to list and
-- replay. The log itself is never changed.
CREATE TABLE {dead_letters} (
    projection      TEXT        NOT NULL,
    version         INTEGER     NOT NULL,
    event_id        UUID        NOT NULL,
    txn             BIGINT      NOT NULL,
    position        BIGINT      NOT NULL,
    aggregate_type  TEXT        NOT NULL,
    aggregate_id    TEXT        NOT NULL,
    sequence        BIGINT      NOT NULL,
    event_type      TEXT        NOT NULL,
    event_version   INTEGER     NOT NULL,
    payload         TEXT        NOT NULL,
    metadata        TEXT        NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    error           TEXT        NOT NULL,
    attempts        INTEGER     NOT NULL,
    parked_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (projection, version, event_id)
);

-- The version of each projection name that queries should read: the newest that caught up.
-- Leases are session advisory locks, so they need no table.
CREATE TABLE {projection_versions} (
    projection  TEXT    PRIMARY KEY,
    version     INTEGER NOT NULL
);
