//! The metrics the runtime records, through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! Nothing is recorded anywhere until the service installs a recorder (for Prometheus,
//! `metrics-exporter-prometheus`); without one each measurement costs a no-op call. Call
//! [`describe`] once after installing it to give every metric its help text and unit.
//!
//! Labels are low-cardinality names only (aggregate type, command, outcome, projection, topic,
//! subscriber), never an aggregate or event id.
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | [`COMMANDS`] | counter | `aggregate_type`, `command`, `outcome` |
//! | [`CONFLICTS`] | counter | `aggregate_type` |
//! | [`RETRIES`] | counter | `aggregate_type` |
//! | [`EVENTS_APPENDED`] | counter | `aggregate_type` |
//! | [`APPEND_DURATION`] | histogram (seconds) | `aggregate_type`, `store` |
//! | [`LOAD_DURATION`] | histogram (seconds) | `aggregate_type`, `store` |
//! | [`CACHE`] | counter | `aggregate_type`, `result` (`hit`, `miss`) |
//! | [`PROJECTION_EVENTS`] | counter | `projection`, `version` |
//! | [`PROJECTION_LAG_EVENTS`] | gauge | `projection`, `version` |
//! | [`PROJECTION_LAG_SECONDS`] | gauge | `projection`, `version` |
//! | [`RELAY_EVENTS`] | counter | `relay` |
//! | [`RELAY_LAG_EVENTS`] | gauge | `relay` |
//! | [`RELAY_LAG_SECONDS`] | gauge | `relay` |
//! | [`DEAD_LETTERS`] | counter | `follower` (a projection or a subscriber) |
//! | [`SUBSCRIBER_MESSAGES`] | counter | `subscriber`, `outcome` (`handled`, `duplicate`, `parked`) |
//! | [`INBOX_DUPLICATES`] | counter | `subscriber` |
//!
//! The lag gauges are measured after each batch: the positions of the log between the
//! follower's checkpoint and the log's head, and the age of the newest event the batch
//! applied; both are 0 once a batch comes back short (the follower is caught up).

use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use metrics::{
    Key, Label, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
};

/// Commands executed, by outcome: `committed`, `unchanged` (no event), `duplicate` (a command
/// id recorded already: answered with its first outcome), `rejected` (the
/// aggregate refused), `conflict` (retries ran out), `failed` (the store failed).
pub const COMMANDS: &str = "cqrs_commands_total";
/// Version conflicts met by commands, retried or not.
pub const CONFLICTS: &str = "cqrs_command_conflicts_total";
/// Commands run again after a conflict.
pub const RETRIES: &str = "cqrs_command_retries_total";
/// Events committed by commands.
pub const EVENTS_APPENDED: &str = "cqrs_events_appended_total";
/// How long an append took, successful or not.
pub const APPEND_DURATION: &str = "cqrs_append_duration_seconds";
/// How long loading an aggregate from the store took (snapshot and events).
pub const LOAD_DURATION: &str = "cqrs_load_duration_seconds";
/// Aggregates taken from the repository's cache (`hit`) or loaded (`miss`), where a cache is
/// on.
pub const CACHE: &str = "cqrs_aggregate_cache_total";
/// Events a projection runner read and applied (or skipped).
pub const PROJECTION_EVENTS: &str = "cqrs_projection_events_total";
/// Log positions between a projection's checkpoint and the log's head.
pub const PROJECTION_LAG_EVENTS: &str = "cqrs_projection_lag_events";
/// Age of the newest event a projection applied, while it is behind.
pub const PROJECTION_LAG_SECONDS: &str = "cqrs_projection_lag_seconds";
/// Events the outbox relay published.
pub const RELAY_EVENTS: &str = "cqrs_relay_events_total";
/// Log positions between the relay's checkpoint and the log's head.
pub const RELAY_LAG_EVENTS: &str = "cqrs_relay_lag_events";
/// Age of the newest event the relay published, while it is behind.
pub const RELAY_LAG_SECONDS: &str = "cqrs_relay_lag_seconds";
/// Events or messages parked in a dead-letter table.
pub const DEAD_LETTERS: &str = "cqrs_dead_letters_total";
/// Messages a subscriber received, by outcome.
pub const SUBSCRIBER_MESSAGES: &str = "cqrs_subscriber_messages_total";
/// Messages a subscriber skipped because its inbox had recorded them already.
pub const INBOX_DUPLICATES: &str = "cqrs_inbox_duplicates_total";

/// Gives every metric above its help text and unit, in the recorder installed now. Call it
/// once, after installing the recorder; recording works without it.
pub fn describe() {
    let counters = [
        (COMMANDS, "Commands executed, by outcome."),
        (
            CONFLICTS,
            "Version conflicts met by commands, retried or not.",
        ),
        (RETRIES, "Commands run again after a version conflict."),
        (EVENTS_APPENDED, "Events committed by commands."),
        (
            CACHE,
            "Aggregates taken from the repository cache (hit) or loaded (miss).",
        ),
        (
            PROJECTION_EVENTS,
            "Events a projection runner read from the log.",
        ),
        (RELAY_EVENTS, "Events the outbox relay published."),
        (DEAD_LETTERS, "Events or messages parked as dead letters."),
        (
            SUBSCRIBER_MESSAGES,
            "Messages a subscriber received, by outcome.",
        ),
        (
            INBOX_DUPLICATES,
            "Messages skipped because the inbox had them already.",
        ),
    ];
    for (name, help) in counters {
        describe_counter!(name, Unit::Count, help);
    }
    describe_histogram!(
        APPEND_DURATION,
        Unit::Seconds,
        "Time to append a command's events."
    );
    describe_histogram!(
        LOAD_DURATION,
        Unit::Seconds,
        "Time to load an aggregate from the store."
    );
    let lags = [
        (
            PROJECTION_LAG_EVENTS,
            Unit::Count,
            "Log positions a projection is behind the head.",
        ),
        (
            PROJECTION_LAG_SECONDS,
            Unit::Seconds,
            "Age of the newest event a projection applied while behind.",
        ),
        (
            RELAY_LAG_EVENTS,
            Unit::Count,
            "Log positions the outbox relay is behind the head.",
        ),
        (
            RELAY_LAG_SECONDS,
            Unit::Seconds,
            "Age of the newest event the relay published while behind.",
        ),
    ];
    for (name, unit, help) in lags {
        describe_gauge!(name, unit, help);
    }
}

/// Labels of a projection's metrics.
pub(crate) fn projection_labels(name: &'static str, version: u32) -> Vec<Label> {
    vec![
        Label::from_static_parts("projection", name),
        Label::new("version", version.to_string()),
    ]
}

/// What a follower's batch tells the lag gauges: how many positions are left after it, and how
/// old its newest event was (both 0 when the follower is caught up).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Lag {
    pub(crate) events: u64,
    pub(crate) age: Duration,
}

/// A follower's batch: counts its events in `events_total` and sets its pair of lag gauges.
pub(crate) fn record_batch(
    [events_total, lag_events, lag_seconds]: [&'static str; 3],
    labels: &[Label],
    read: usize,
    lag: Lag,
) {
    counter!(events_total, labels.to_vec()).increment(read as u64);
    gauge!(lag_events, labels.to_vec()).set(lag.events as f64);
    gauge!(lag_seconds, labels.to_vec()).set(lag.age.as_secs_f64());
}

/// Where the runtime's measurements say they come from.
static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The metric keys of one aggregate type's repository, made once. Building a key from labels
/// that are not literals allocates, which cost a command about 150 ns with no recorder
/// installed (BENCHMARKS.md, "Spans and metrics"); these keys are built when the repository
/// is, and the command keys at the first use of each (command, outcome).
#[derive(Debug)]
pub(crate) struct AggregateMeters {
    aggregate_type: &'static str,
    cache_hit: Key,
    cache_miss: Key,
    conflicts: Key,
    retries: Key,
    appended: Key,
    append_time: Key,
    load_time: Key,
    /// Per (command, outcome); a handful, compared by address first.
    commands: RwLock<Vec<(&'static str, &'static str, Key)>>,
}

impl AggregateMeters {
    /// The keys of `aggregate_type`'s metrics on the store called `store`.
    pub(crate) fn new(aggregate_type: &'static str, store: &'static str) -> Self {
        let kind = || Label::from_static_parts("aggregate_type", aggregate_type);
        let key = |name: &'static str, more: &[Label]| {
            let mut labels = vec![kind()];
            labels.extend_from_slice(more);
            Key::from_parts(name, labels)
        };
        let on_store = [Label::from_static_parts("store", store)];
        AggregateMeters {
            aggregate_type,
            cache_hit: key(CACHE, &[Label::from_static_parts("result", "hit")]),
            cache_miss: key(CACHE, &[Label::from_static_parts("result", "miss")]),
            conflicts: key(CONFLICTS, &[]),
            retries: key(RETRIES, &[]),
            appended: key(EVENTS_APPENDED, &[]),
            append_time: key(APPEND_DURATION, &on_store),
            load_time: key(LOAD_DURATION, &on_store),
            commands: RwLock::new(Vec::new()),
        }
    }

    pub(crate) fn cache(&self, hit: bool) {
        count(
            if hit {
                &self.cache_hit
            } else {
                &self.cache_miss
            },
            1,
        );
    }

    pub(crate) fn conflict(&self) {
        count(&self.conflicts, 1);
    }

    pub(crate) fn retry(&self) {
        count(&self.retries, 1);
    }

    pub(crate) fn appended(&self, events: usize, took: Duration) {
        count(&self.appended, events as u64);
        time(&self.append_time, took);
    }

    pub(crate) fn append_failed(&self, took: Duration) {
        time(&self.append_time, took);
    }

    pub(crate) fn loaded(&self, took: Duration) {
        time(&self.load_time, took);
    }

    /// Counts a command's outcome.
    pub(crate) fn command(&self, command: &'static str, outcome: &'static str) {
        let same = |(c, o, _): &&(&'static str, &'static str, Key)| {
            (std::ptr::eq(*c, command) || *c == command)
                && (std::ptr::eq(*o, outcome) || *o == outcome)
        };
        let known = self.commands.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, _, key)) = known.iter().find(same) {
            return count(key, 1);
        }
        drop(known);
        let key = Key::from_parts(
            COMMANDS,
            vec![
                Label::from_static_parts("aggregate_type", self.aggregate_type),
                Label::from_static_parts("command", command),
                Label::from_static_parts("outcome", outcome),
            ],
        );
        count(&key, 1);
        let mut known = self
            .commands
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if !known.iter().any(|entry| same(&entry)) {
            known.push((command, outcome, key));
        }
    }
}

fn count(key: &Key, n: u64) {
    metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA).increment(n));
}

fn time(key: &Key, took: Duration) {
    metrics::with_recorder(|recorder| {
        recorder
            .register_histogram(key, &METADATA)
            .record(took.as_secs_f64())
    });
}
