-- Process managers: each running instance's state (JSON, as its state type writes it) and
-- its deadlines, written in the transaction that moves the manager's checkpoint; completed
-- instances' final states when the manager archives them.
CREATE TABLE {process_instances} (
    manager     TEXT    NOT NULL,
    instance    TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (manager, instance)
);

CREATE TABLE {process_deadlines} (
    manager     TEXT    NOT NULL,
    instance    TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    due_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (manager, instance, name)
);

CREATE INDEX {process_deadlines_due} ON {process_deadlines} (manager, due_at);

CREATE TABLE {process_archive} (
    manager       TEXT    NOT NULL,
    instance      TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    completed_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (manager, instance)
);

-- The commands of process managers that their aggregates refused, by idempotency key: a
-- runner handling an event again after a crash takes the refusal it already acted on instead
-- of sending the command again (which could now succeed). Deleted with their instance when it
-- completes.
CREATE TABLE {process_refusals} (
    manager     TEXT    NOT NULL,
    command_id  TEXT    NOT NULL,
    instance    TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    refused_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (manager, command_id)
);

CREATE INDEX {process_refusals_by_instance} ON {process_refusals} (manager, instance);
