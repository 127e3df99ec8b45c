//! The metrics the runtime records and the health its runners report, read back through the
//! `metrics-util` debugging recorder installed for this test binary.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cqrs_runtime::bus::memory::MemoryBroker;
use cqrs_runtime::bus::{Message, MessageHandler, Outbox, Relay, Subscriber};
use cqrs_runtime::doc_support::{Counted, Counter, CounterCommand};
use cqrs_runtime::health::{Health, State};
use cqrs_runtime::metrics as m;
use cqrs_runtime::projection::MemoryTarget;
use cqrs_runtime::{
    AppendError, BoxError, CacheLimits, CommandError, CommandRecord, EventStore, InMemoryStore,
    LogPosition, NewEvent, PoisonPolicy, Projector, Repository, RetryPolicy, Snapshot, StoreError,
    StoredEvent,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;

/// The recorder of this binary, installed once.
fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this binary");
        m::describe();
        snapshotter
    })
}

/// A metric's name, its labels, and its value.
type Recorded = Vec<(String, Vec<(String, String)>, DebugValue)>;

/// Every value recorded so far, by metric name and labels: a snapshot of the debugging
/// recorder drains its counters and histograms, so they are added up here.
fn recorded() -> std::sync::MutexGuard<'static, Recorded> {
    static RECORDED: Mutex<Recorded> = Mutex::new(Vec::new());
    let mut recorded = RECORDED.lock().unwrap_or_else(|e| e.into_inner());
    for (key, _, _, value) in snapshotter().snapshot().into_vec() {
        let key = key.key();
        let name = key.name().to_owned();
        let labels: Vec<(String, String)> = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        let known = recorded
            .iter_mut()
            .find(|(n, l, _)| *n == name && *l == labels);
        match (known, value) {
            (Some((_, _, DebugValue::Counter(total))), DebugValue::Counter(n)) => *total += n,
            (Some((_, _, DebugValue::Histogram(all))), DebugValue::Histogram(more)) => {
                all.extend(more)
            }
            (Some((_, _, old)), value) => *old = value,
            (None, value) => recorded.push((name, labels, value)),
        }
    }
    recorded
}

/// The value of metric `name` whose labels include every pair of `labels`.
fn value(name: &str, labels: &[(&str, &str)]) -> Option<DebugValue> {
    recorded()
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, value)| match value {
            DebugValue::Counter(n) => DebugValue::Counter(*n),
            DebugValue::Gauge(g) => DebugValue::Gauge(*g),
            DebugValue::Histogram(all) => DebugValue::Histogram(all.clone()),
        })
}

fn counter(name: &str, labels: &[(&str, &str)]) -> u64 {
    match value(name, labels) {
        Some(DebugValue::Counter(n)) => n,
        None => 0,
        Some(other) => panic!("{name} is not a counter: {other:?}"),
    }
}

fn gauge(name: &str, labels: &[(&str, &str)]) -> f64 {
    match value(name, labels) {
        Some(DebugValue::Gauge(g)) => g.into_inner(),
        other => panic!("{name} {labels:?} is not a gauge: {other:?}"),
    }
}

fn histogram_len(name: &str, labels: &[(&str, &str)]) -> usize {
    match value(name, labels) {
        Some(DebugValue::Histogram(values)) => values.len(),
        other => panic!("{name} {labels:?} is not a histogram: {other:?}"),
    }
}

/// The in-memory store with another writer: the first append of a command finds that writer's
/// event already in the stream, a real version conflict.
#[derive(Debug, Clone, Default)]
struct Interloper {
    store: InMemoryStore,
    interfere: Arc<AtomicBool>,
}

impl EventStore for Interloper {
    async fn append(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> Result<Vec<LogPosition>, AppendError> {
        if self.interfere.swap(false, Ordering::SeqCst) {
            let other = NewEvent::raw("Added", 1, json!(100));
            self.store
                .append(aggregate_type, aggregate_id, expected_version, &[other])
                .await?;
        }
        self.store
            .append(aggregate_type, aggregate_id, expected_version, events)
            .await
    }

    async fn read_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.store
            .read_stream(aggregate_type, aggregate_id, after, limit)
            .await
    }

    async fn read_all(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.store.read_all(after, limit).await
    }

    async fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        self.store.load_snapshot(aggregate_type, aggregate_id).await
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        self.store.save_snapshot(snapshot).await
    }

    async fn count_events(&self) -> Result<u64, StoreError> {
        self.store.count_events().await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        self.store.head().await
    }

    async fn find_command(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        command_id: &str,
    ) -> Result<Option<CommandRecord>, StoreError> {
        self.store
            .find_command(aggregate_type, aggregate_id, command_id)
            .await
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

/// Serializes the tests of this binary: they read the same counters of the `counter` type.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn commands_count_outcomes_conflicts_retries_and_latencies() {
    let _one = ONE_AT_A_TIME.lock().await;
    snapshotter();
    let kind = [("aggregate_type", "counter")];
    let before = |outcome| {
        counter(
            m::COMMANDS,
            &[
                ("aggregate_type", "counter"),
                ("command", "CounterCommand"),
                ("outcome", outcome),
            ],
        )
    };
    let (committed0, rejected0) = (before("committed"), before("rejected"));
    let conflicts0 = counter(m::CONFLICTS, &kind);
    let retries0 = counter(m::RETRIES, &kind);
    let appended0 = counter(m::EVENTS_APPENDED, &kind);

    let store = Interloper::default();
    let repo = Repository::<Counter, _>::new(store.clone())
        .retry(RetryPolicy::attempts(3).backoff(Duration::ZERO, Duration::ZERO));
    let id = "c-metrics".to_owned();
    repo.execute(&id, CounterCommand::Add(1)).await.unwrap();
    // The next append meets another writer's event: one conflict, one retry, then committed.
    store.interfere.store(true, Ordering::SeqCst);
    repo.execute(&id, CounterCommand::Add(2)).await.unwrap();
    let refused = repo.execute(&id, CounterCommand::Subtract(1_000)).await;
    assert!(
        matches!(refused, Err(CommandError::Rejected(_))),
        "{refused:?}"
    );

    let after = |outcome| {
        counter(
            m::COMMANDS,
            &[
                ("aggregate_type", "counter"),
                ("command", "CounterCommand"),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(after("committed") - committed0, 2);
    assert_eq!(after("rejected") - rejected0, 1);
    assert_eq!(counter(m::CONFLICTS, &kind) - conflicts0, 1);
    assert_eq!(counter(m::RETRIES, &kind) - retries0, 1);
    assert_eq!(counter(m::EVENTS_APPENDED, &kind) - appended0, 2);
    let timed = [("aggregate_type", "counter"), ("store", "memory")];
    assert!(
        histogram_len(m::APPEND_DURATION, &timed) >= 3,
        "one per append tried"
    );
    assert!(histogram_len(m::LOAD_DURATION, &timed) >= 4, "one per load");

    // With a cache: the first command misses, the next hits.
    let cached = Repository::<Counter, _>::new(store).cache(CacheLimits::default());
    let hits0 = counter(
        m::CACHE,
        &[("aggregate_type", "counter"), ("result", "hit")],
    );
    let misses0 = counter(
        m::CACHE,
        &[("aggregate_type", "counter"), ("result", "miss")],
    );
    cached
        .execute(&"c-cached".to_owned(), CounterCommand::Add(1))
        .await
        .unwrap();
    cached
        .execute(&"c-cached".to_owned(), CounterCommand::Add(1))
        .await
        .unwrap();
    let hits = counter(
        m::CACHE,
        &[("aggregate_type", "counter"), ("result", "hit")],
    );
    let misses = counter(
        m::CACHE,
        &[("aggregate_type", "counter"), ("result", "miss")],
    );
    assert_eq!((hits - hits0, misses - misses0), (1, 1));
}

#[tokio::test]
async fn projections_report_lag_while_behind_and_health_with_the_event_that_stopped_them() {
    let _one = ONE_AT_A_TIME.lock().await;
    snapshotter();
    let store = InMemoryStore::new();
    for i in 0..10 {
        let event = NewEvent::raw("Added", 1, json!(1));
        store
            .append("counter", "lagging", i, &[event])
            .await
            .unwrap();
    }
    let labels = [("projection", "counted"), ("version", "1")];
    let events0 = counter(m::PROJECTION_EVENTS, &labels);

    // Batches of 3 over 10 events: after the first, 7 positions are left.
    let mut runner =
        Projector::new(store.clone(), MemoryTarget::new(), Counted::default()).batch_size(3);
    let mut lags = Vec::new();
    runner
        .rebuild(|progress| lags.push((progress.read, gauge(m::PROJECTION_LAG_EVENTS, &labels))))
        .await
        .unwrap();
    assert_eq!(lags, [(3, 7.0), (6, 4.0), (9, 1.0), (10, 0.0)]);
    assert_eq!(counter(m::PROJECTION_EVENTS, &labels) - events0, 10);
    assert_eq!(gauge(m::PROJECTION_LAG_SECONDS, &labels), 0.0, "caught up");

    // A poison event stops a running projection: health says so, with the event.
    let poison = NewEvent::raw("Added", 1, json!("not a number"));
    store
        .append("counter", "poisoned", 0, &[poison])
        .await
        .unwrap();
    let health = Health::new();
    let mut runner = Projector::new(store.clone(), MemoryTarget::new(), Counted::default())
        .on_error(PoisonPolicy::stop())
        .health(&health);
    assert!(!health.report().ready, "not started");
    let error = runner.run(std::future::pending()).await.unwrap_err();
    let report = health.report();
    assert!(!report.ready);
    let component = &report.components[0];
    assert_eq!(
        (component.kind, component.name.as_str()),
        ("projection", "counted v1")
    );
    assert!(matches!(&component.state, State::Failed { error: e } if *e == error.to_string()));
    let reason = component.reason.as_deref().unwrap();
    assert!(reason.contains("`poisoned`"), "names the stream: {reason}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["ready"], false);
    assert_eq!(json["components"][0]["state"], "failed");

    // Parked instead: counted as a dead letter, and the runner goes live.
    let dead0 = counter(m::DEAD_LETTERS, &[("follower", "counted")]);
    let health = Health::new();
    let mut runner = Projector::new(store, MemoryTarget::new(), Counted::default())
        .on_error(PoisonPolicy::park())
        .poll_interval(Duration::from_millis(10))
        .health(&health);
    let watcher = health.clone();
    let stopped = runner
        .run(async move {
            while !watcher.report().ready {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
    assert_eq!(stopped, cqrs_runtime::projection::Stopped::Shutdown);
    assert_eq!(
        counter(m::DEAD_LETTERS, &[("follower", "counted")]) - dead0,
        1
    );
    let report = health.report();
    assert!(matches!(&report.components[0].state, State::Stopped { why } if why == "shut down"));
    assert!(!report.ready, "a stopped runner is not ready");
}

/// Counts what it handles.
#[derive(Debug, Default)]
struct Handled(Arc<std::sync::atomic::AtomicUsize>);

impl MessageHandler<()> for Handled {
    async fn handle(&mut self, _: &Message, _: &mut ()) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn the_relay_and_subscribers_count_what_they_move_and_report_their_health() {
    let _one = ONE_AT_A_TIME.lock().await;
    snapshotter();
    let store = InMemoryStore::new();
    let repo = Repository::<Counter, _>::new(store.clone());
    for i in 0..5 {
        repo.execute(&format!("c-relayed-{i}"), CounterCommand::Add(1))
            .await
            .unwrap();
    }
    let relayed0 = counter(m::RELAY_EVENTS, &[("relay", "outbox")]);
    let broker = MemoryBroker::new();
    let health = Health::new();
    let mut relay = Relay::new(
        store,
        MemoryTarget::new(),
        Outbox::new().domain_events::<Counter>().topic("counters"),
        broker.publisher(),
    )
    .poll_interval(Duration::from_millis(10))
    .health(&health);
    let (watcher, published) = (health.clone(), broker.clone());
    relay
        .run(async move {
            while !(watcher.report().ready && published.messages("counters").len() == 5) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
    assert_eq!(
        counter(m::RELAY_EVENTS, &[("relay", "outbox")]) - relayed0,
        5
    );
    assert_eq!(gauge(m::RELAY_LAG_EVENTS, &[("relay", "outbox")]), 0.0);
    let relay_report = &health.report().components[0];
    assert_eq!(
        (relay_report.kind, relay_report.name.as_str()),
        ("relay", "outbox")
    );

    // The first message arrives twice: handled once, one duplicate skipped by the inbox.
    let first = broker.messages("counters")[0].clone();
    broker.push(first);
    let labels = [("subscriber", "counting")];
    let duplicates0 = counter(m::INBOX_DUPLICATES, &labels);
    let handled0 = counter(
        m::SUBSCRIBER_MESSAGES,
        &[("subscriber", "counting"), ("outcome", "handled")],
    );
    let handled = Handled::default();
    let count = Arc::clone(&handled.0);
    let health = Health::new();
    let mut subscriber = Subscriber::new(
        "counting",
        broker.subscribe("counting", &["counters"]),
        MemoryTarget::new(),
        handled,
    )
    .health(&health);
    let watcher = health.clone();
    let stats = subscriber
        .run(async move {
            while count.load(Ordering::SeqCst) < 5 || !watcher.report().ready {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // The duplicate comes after the five.
            tokio::time::sleep(Duration::from_millis(50)).await;
        })
        .await
        .unwrap();
    assert_eq!((stats.processed, stats.duplicates), (5, 1));
    assert_eq!(counter(m::INBOX_DUPLICATES, &labels) - duplicates0, 1);
    let handled = counter(
        m::SUBSCRIBER_MESSAGES,
        &[("subscriber", "counting"), ("outcome", "handled")],
    );
    assert_eq!(handled - handled0, 5);
    let report = health.report();
    assert_eq!(report.components[0].kind, "subscriber");
    assert!(matches!(&report.components[0].state, State::Stopped { .. }));
}
