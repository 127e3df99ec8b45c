-- Process managers: each running instance's state (JSON, as its state type writes it) and
-- its deadlines, written in the transaction that moves the manager's checkpoint; completed
-- instances' final states when the manager archives them.
CREATE TABLE {process_instances} (
    manager     TEXT    NOT NULL,
    instance    TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    -- Microseconds since the Unix epoch, UTC.
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (manager, instance)
) WITHOUT ROWID;

CREATE TABLE {process_deadlines} (
    manager     TEXT    NOT NULL,
    instance    TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    -- Microseconds since the Unix epoch, UTC.
    due_at      INTEGER NOT NULL,
    PRIMARY KEY (manager, instance, name)
) WITHOUT ROWID;

CREATE INDEX {process_deadlines_due} ON {process_deadlines} (manager, due_at);

CREATE TABLE {process_archive} (
    manager       TEXT    NOT NULL,
    instance      TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    -- Microseconds since the Unix epoch, UTC.
    completed_at  INTEGER NOT NULL,
    PRIMARY KEY (manager, instance)
) WITHOUT ROWID;

-- The commands of process managers that their aggregates refused, by idempotency key: a
-- runner handling an event again after a crash takes the refusal it already acted on instead
-- of sending the command again (which could now succeed). Deleted with their instance when it
-- completes.
CREATE TABLE {process_refusals} (
    manager     TEXT    NOT NULL,
    command_id  TEXT    NOT NULL,
    instance    TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    -- Microseconds since the Unix epoch, UTC.
    refused_at  INTEGER NOT NULL,
    PRIMARY KEY (manager, command_id)
) WITHOUT ROWID;

CREATE INDEX {process_refusals_by_instance} ON {process_refusals} (manager, instance);
