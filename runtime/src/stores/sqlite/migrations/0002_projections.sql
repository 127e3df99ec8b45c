-- Where each projection (name, version) has read the log up to, moved in the transaction that
-- applied the events. `txn` and `position` are the two halves of a LogPosition.
CREATE TABLE {checkpoints} (
    projection  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    txn         INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (projection, version)
) WITHOUT ROWID;

-- Events a projection could not apply and parked, with the whole stored event, to list and
-- replay. The log itself is never changed.
CREATE TABLE {dead_letters} (
    projection      TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    event_id        BLOB    NOT NULL,
    txn             INTEGER NOT NULL,
    position        INTEGER NOT NULL,
    aggregate_type  TEXT    NOT NULL,
    aggregate_id    TEXT    NOT NULL,
    sequence        INTEGER NOT NULL,
    event_type      TEXT    NOT NULL,
    event_version   INTEGER NOT NULL,
    payload         TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    recorded_at     INTEGER NOT NULL,
    error           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    parked_at       INTEGER NOT NULL,
    PRIMARY KEY (projection, version, event_id)
) WITHOUT ROWID;

-- The version of each projection name that queries should read: the newest that caught up.
CREATE TABLE {projection_versions} (
    projection  TEXT    PRIMARY KEY,
    version     INTEGER NOT NULL
) WITHOUT ROWID;

-- Who runs each projection: a lease that expires unless renewed (microseconds since epoch).
CREATE TABLE {leases} (
    projection  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    owner       BLOB    NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (projection, version)
) WITHOUT ROWID;
