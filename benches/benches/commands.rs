//! Idempotency keys (`Metadata::command_id`): a command sent with a key (one indexed lookup
//! before it runs, one insert in its append's transaction) against the same command without,
//! through a cached repository, on SQLite (relaxed durability, so that the fsync does not hide
//! the extra work) and PostgreSQL (`DATABASE_URL`; `source scripts/postgres.sh` starts one),
//! with 1,000, 10,000 and 100,000 keys already recorded. A command with a key sent again is
//! the `duplicate` row: the lookup, then the first run's events read back.

use std::time::{Duration, Instant};

use cqrs_runtime::doc_support::{Counter, CounterCommand};
use cqrs_runtime::postgres::{PostgresConfig, PostgresStore};
use cqrs_runtime::sqlite::{Durability, SqliteConfig, SqliteStore};
use cqrs_runtime::{EventStore, Metadata, NewEvent, Repository};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use futures::future::join_all;

/// Keys already recorded before a size's rows are measured.
const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// Records keys until the store holds `total`, one keyed event per new stream, 64 at a time.
async fn seed<S: EventStore>(store: &S, from: usize, total: usize) {
    for chunk in (from..total).collect::<Vec<_>>().chunks(64) {
        join_all(chunk.iter().map(|i| {
            let event = NewEvent::raw("Added", 1, serde_json::json!(1))
                .with_metadata(Metadata::default().command_id(format!("seed-{i}")));
            let stream = format!("seed-{i}");
            async move { store.append("counter", &stream, 0, &[event]).await.unwrap() }
        }))
        .await;
    }
}

/// `commands` commands on one aggregate, each with a fresh key if `keyed`.
async fn run<S: EventStore>(repo: &Repository<Counter, S>, commands: u64, keyed: bool) -> Duration {
    let id = "measured".to_owned();
    let started = Instant::now();
    for _ in 0..commands {
        let metadata = if keyed {
            Metadata::default().command_id(uuid::Uuid::now_v7().to_string())
        } else {
            Metadata::default()
        };
        repo.execute_with(&id, CounterCommand::Add(1), metadata)
            .await
            .unwrap();
    }
    started.elapsed()
}

/// The same keyed command `commands` times: every run after the first is a duplicate.
async fn run_duplicates<S: EventStore>(repo: &Repository<Counter, S>, commands: u64) -> Duration {
    let id = "repeated".to_owned();
    let once = Metadata::default().command_id("the-same-key");
    repo.execute_with(&id, CounterCommand::Add(1), once.clone())
        .await
        .unwrap();
    let started = Instant::now();
    for _ in 0..commands {
        let answer = repo
            .execute_with(&id, CounterCommand::Add(1), once.clone())
            .await
            .unwrap();
        assert!(answer.duplicate);
    }
    started.elapsed()
}

fn measure<S: EventStore + Clone>(c: &mut Criterion, name: &str, store: S) {
    let rt = cqrs_benches::runtime();
    let repo = Repository::<Counter, _>::new(store.clone());
    let mut group = c.benchmark_group(format!("keyed_commands_{name}"));
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let mut seeded = 0;
    for size in SIZES {
        rt.block_on(seed(&store, seeded, size));
        seeded = size;
        for (row, keyed) in [("plain", false), ("keyed", true)] {
            group.bench_function(BenchmarkId::new(row, size), |b| {
                b.to_async(&rt)
                    .iter_custom(|commands| run(&repo, commands, keyed))
            });
        }
        group.bench_function(BenchmarkId::new("duplicate", size), |b| {
            b.to_async(&rt)
                .iter_custom(|commands| run_duplicates(&repo, commands))
        });
    }
    group.finish();
}

fn sqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rt = cqrs_benches::runtime();
    let config = SqliteConfig::new(dir.path().join("keys.db")).durability(Durability::Relaxed);
    let store = rt.block_on(SqliteStore::open(config)).unwrap();
    let _inside = rt.enter();
    measure(c, "sqlite", store);
}

fn postgres(c: &mut Criterion) {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("keyed_commands_postgres skipped: set DATABASE_URL (source scripts/postgres.sh)");
        return;
    };
    let rt = cqrs_benches::runtime();
    let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
    let store = rt
        .block_on(PostgresStore::connect(
            PostgresConfig::new(&url).schema(schema),
        ))
        .unwrap();
    measure(c, "postgres", store);
}

criterion_group!(benches, sqlite, postgres);
criterion_main!(benches);
