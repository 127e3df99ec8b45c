//! How late deadlines fire: a live process manager runner with 100, 1,000 and 10,000 pending
//! deadlines (due in a day), on SQLite and PostgreSQL (`DATABASE_URL`), and 200 more that come
//! due over two seconds; each firing records how long after its due time it ran. Prints the
//! median and the 99th percentile per store and size. `cargo run --release -p cqrs-benches
//! --bin deadline_delay`; its numbers are in BENCHMARKS.md.

use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use cqrs_runtime::doc_support::{Counter, CounterCommand, CounterEvent};
use cqrs_runtime::postgres::{PostgresConfig, PostgresStore};
use cqrs_runtime::process::{Dispatcher, Effects, ProcessManager, ProcessRunner, Route};
use cqrs_runtime::projection::ProcessTarget;
use cqrs_runtime::sqlite::{Durability, SqliteConfig, SqliteStore};
use cqrs_runtime::{BoxError, EventStore, Repository, StoredEvent};

/// How late each firing was, in microseconds.
static DELAYS: Mutex<Vec<i64>> = Mutex::new(Vec::new());

/// Counter `n`'s `Added(ms)` sets a deadline `ms` milliseconds after the event.
struct Timer;

impl ProcessManager for Timer {
    const NAME: &'static str = "timer";
    const FOLLOWS: &'static [&'static str] = &["counter"];
    type State = ();

    fn route(&self, event: &StoredEvent) -> Result<Route, BoxError> {
        Ok(Route::Start(event.aggregate_id.clone()))
    }

    fn handle(
        &self,
        _: &mut (),
        event: &StoredEvent,
        effects: &mut Effects,
    ) -> Result<(), BoxError> {
        if let CounterEvent::Added(ms) = event.as_event_ref().decode::<CounterEvent>()? {
            effects.schedule("due", Duration::from_millis(ms));
        }
        Ok(())
    }

    fn on_deadline(&self, _: &mut (), _: &str, effects: &mut Effects) -> Result<(), BoxError> {
        let late = (Utc::now() - effects.now())
            .num_microseconds()
            .unwrap_or(i64::MAX);
        DELAYS.lock().unwrap().push(late);
        effects.complete();
        Ok(())
    }
}

const DAY_MS: u64 = 24 * 3600 * 1000;
const MEASURED: usize = 200;

async fn run<S, T>(store: S, target: T, pending: usize) -> (f64, f64)
where
    S: EventStore + Clone,
    T: ProcessTarget,
{
    let counters = Repository::<Counter, _>::new(store.clone());
    for chunk in (0..pending).collect::<Vec<_>>().chunks(64) {
        futures::future::join_all(chunk.iter().map(|i| {
            let id = format!("far-{i}");
            let counters = counters.clone();
            async move {
                counters
                    .execute(&id, CounterCommand::Add(DAY_MS))
                    .await
                    .unwrap()
            }
        }))
        .await;
    }
    let mut runner = ProcessRunner::new(store.clone(), target, Timer, Dispatcher::new())
        .batch_size(500)
        .poll_interval(Duration::from_secs(1));
    runner.catch_up().await.unwrap();
    DELAYS.lock().unwrap().clear();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let live = tokio::spawn(async move {
        runner
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    for i in 0..MEASURED {
        let ms = 500 + (i as u64 * 2000 / MEASURED as u64);
        counters
            .execute(&format!("near-{i}"), CounterCommand::Add(ms))
            .await
            .unwrap();
    }
    while DELAYS.lock().unwrap().len() < MEASURED {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    live.await.unwrap().unwrap();
    let mut delays = DELAYS.lock().unwrap().clone();
    delays.sort_unstable();
    let at = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    (at(0.5), at(0.99))
}

fn main() {
    let rt = cqrs_benches::runtime();
    println!("| store | pending deadlines | p50 | p99 |");
    println!("|---|---|---|---|");
    for pending in [100, 1_000, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        let config =
            SqliteConfig::new(dir.path().join("timers.db")).durability(Durability::Relaxed);
        let (p50, p99) = rt.block_on(async {
            let store = SqliteStore::open(config).await.unwrap();
            let target = store.projection_target();
            run(store, target, pending).await
        });
        println!("| SQLite | {pending} | {p50:.1} ms | {p99:.1} ms |");
    }
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("PostgreSQL skipped: set DATABASE_URL (source scripts/postgres.sh)");
        return;
    };
    for pending in [100, 1_000, 10_000] {
        let (p50, p99) = rt.block_on(async {
            let schema = format!("timers_{}", uuid::Uuid::now_v7().simple());
            let store = PostgresStore::connect(PostgresConfig::new(&url).schema(schema))
                .await
                .unwrap();
            let target = store.projection_target();
            run(store, target, pending).await
        });
        println!("| PostgreSQL | {pending} | {p50:.1} ms | {p99:.1} ms |");
    }
}
