//! SQLite store benchmarks: appends (1 and 10 events per command, 1 and 16 concurrent writers,
//! durable and relaxed) against the raw-driver baseline doing the same transactions, and loading
//! an aggregate of 10,000 events with and without a snapshot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_benches::{RawSqlite, RusqliteLimit, SnapshottedTally, Tally, new_events};
use cqrs_runtime::sqlite::{Durability, SqliteConfig, SqliteStore};
use cqrs_runtime::{Aggregate, EventStore, LogPosition, Repository, Snapshot};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Runs `appends` appends of `per_command` events, spread over `writers` tasks, each writing
/// its own stream; returns the time taken.
async fn run_ours(store: &SqliteStore, appends: u64, writers: u64, per_command: usize) -> Duration {
    let events = Arc::new(new_events(per_command));
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (store, events) = (store.clone(), Arc::clone(&events));
            let count = appends / writers + u64::from(w < appends % writers);
            tokio::spawn(async move {
                let stream = format!("w{w}-{}", uuid::Uuid::now_v7());
                let mut version = 0;
                for _ in 0..count {
                    let fresh = fresh_ids(&events);
                    store
                        .append("tally", &stream, version, &fresh)
                        .await
                        .unwrap();
                    version += fresh.len() as u64;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    start.elapsed()
}

async fn run_raw(raw: &RawSqlite, appends: u64, writers: u64, per_command: usize) -> Duration {
    let events = Arc::new(new_events(per_command));
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (raw, events) = (raw.clone(), Arc::clone(&events));
            let count = appends / writers + u64::from(w < appends % writers);
            tokio::spawn(async move {
                let stream = format!("w{w}-{}", uuid::Uuid::now_v7());
                let mut version = 0;
                for _ in 0..count {
                    let fresh = fresh_ids(&events);
                    raw.append(&stream, version, &fresh).await;
                    version += fresh.len() as i64;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    start.elapsed()
}

/// Event ids are unique in the table: every append gets new ones (same cost on both sides).
fn fresh_ids(events: &[cqrs_runtime::NewEvent]) -> Vec<cqrs_runtime::NewEvent> {
    events
        .iter()
        .map(|e| cqrs_runtime::NewEvent {
            event_id: uuid::Uuid::now_v7(),
            ..e.clone()
        })
        .collect()
}

fn appends(c: &mut Criterion) {
    let rt = cqrs_benches::runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("sqlite_append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (durability, label) in [
        (Durability::Full, "durable"),
        (Durability::Relaxed, "relaxed"),
    ] {
        for per_command in [1usize, 10] {
            for writers in [1u64, 16] {
                group.throughput(Throughput::Elements(per_command as u64));
                let id = format!("{label}/{per_command}ev/{writers}w");
                let path = dir
                    .path()
                    .join(format!("ours-{label}-{per_command}-{writers}.db"));
                let store = rt
                    .block_on(SqliteStore::open(
                        SqliteConfig::new(&path).durability(durability),
                    ))
                    .unwrap();
                group.bench_function(BenchmarkId::new("store", &id), |b| {
                    b.to_async(&rt).iter_custom(|appends| {
                        let store = store.clone();
                        async move { run_ours(&store, appends, writers, per_command).await }
                    })
                });
                let raw_path = dir
                    .path()
                    .join(format!("raw-{label}-{per_command}-{writers}.db"));
                let raw = rt.block_on(RawSqlite::open(
                    &raw_path,
                    writers as u32,
                    durability == Durability::Full,
                ));
                group.bench_function(BenchmarkId::new("raw", &id), |b| {
                    b.to_async(&rt).iter_custom(|appends| {
                        let raw = raw.clone();
                        async move { run_raw(&raw, appends, writers, per_command).await }
                    })
                });
                // The limit: one thread, rusqlite; with 16 writers, one transaction appends to
                // each of 16 streams (a perfect group commit of every writer).
                let limit = RusqliteLimit::open(
                    &dir.path()
                        .join(format!("limit-{label}-{per_command}-{writers}.db")),
                    durability == Durability::Full,
                );
                let streams: Vec<String> = (0..writers).map(|w| format!("limit-{w}")).collect();
                let events = new_events(per_command);
                let mut version = 0;
                group.bench_function(BenchmarkId::new("limit", &id), |b| {
                    b.iter_custom(|appends| {
                        let start = Instant::now();
                        for _ in 0..appends.div_ceil(writers) {
                            let fresh: Vec<_> =
                                streams.iter().map(|_| fresh_ids(&events)).collect();
                            if writers == 1 {
                                limit.append(&streams[0], version, &fresh[0]);
                            } else {
                                limit.append_round(&streams, version, &fresh);
                            }
                            version += events.len() as i64;
                        }
                        start.elapsed()
                    })
                });
            }
        }
    }
    group.finish();
}

fn loads(c: &mut Criterion) {
    let rt = cqrs_benches::runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = rt
        .block_on(SqliteStore::open(
            SqliteConfig::new(dir.path().join("load.db")).durability(Durability::Relaxed),
        ))
        .unwrap();
    const EVENTS: u64 = 10_000;
    rt.block_on(async {
        for batch in 0..(EVENTS / 500) {
            store
                .append("tally", "big", batch * 500, &new_events(500))
                .await
                .unwrap();
        }
        let codec = SnapshottedTally::snapshots().unwrap();
        let total: i64 = (0..500).sum::<i64>() * (EVENTS / 500) as i64;
        store
            .save_snapshot(&Snapshot {
                aggregate_type: "tally".into(),
                aggregate_id: "big".into(),
                version: EVENTS,
                fingerprint: codec.fingerprint,
                state: format!(r#"{{"total":{total}}}"#),
            })
            .await
            .unwrap();
    });
    let mut group = c.benchmark_group("sqlite_load_10000_events");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    let plain = Repository::<Tally, _>::new(store.clone()).no_cache();
    group.bench_function("replay", |b| {
        b.to_async(&rt).iter(|| async {
            let root = plain.load(&"big".into()).await.unwrap();
            assert_eq!(root.version(), EVENTS);
        })
    });
    let snapshotted = Repository::<SnapshottedTally, _>::new(store.clone()).no_cache();
    group.bench_function("snapshot", |b| {
        b.to_async(&rt).iter(|| async {
            let root = snapshotted.load(&"big".into()).await.unwrap();
            assert_eq!(root.version(), EVENTS);
        })
    });
    let limit = RusqliteLimit::open(&dir.path().join("load-limit.db"), false);
    for batch in 0..(EVENTS / 500) {
        limit.append("big", (batch * 500) as i64, &new_events(500));
    }
    group.bench_function("limit", |b| {
        b.iter(|| {
            assert_eq!(
                limit.load("big"),
                (0..500).sum::<i64>() * (EVENTS / 500) as i64
            )
        })
    });
    group.finish();
}

/// Reading the log of one aggregate type out of 10 equally busy ones: the whole log filtered
/// by the reader (what a projection did before `read_all_of`), against the type's own range
/// of the index. At 10,000, 100,000 and 1,000,000 events in the log.
fn log_of_one_type(c: &mut Criterion) {
    let rt = cqrs_benches::runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("sqlite_log_of_1_type_in_10");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let types: Vec<String> = (0..10).map(|t| format!("type{t}")).collect();
    for events in [10_000u64, 100_000, 1_000_000] {
        let config = SqliteConfig::new(dir.path().join(format!("log-{events}.db")))
            .durability(Durability::Relaxed);
        let store = rt.block_on(SqliteStore::open(config)).unwrap();
        rt.block_on(async {
            // 10 events per append, the types taking turns.
            for round in 0..events / 100 {
                for t in &types {
                    store
                        .append(t, "stream", round * 10, &new_events(10))
                        .await
                        .unwrap();
                }
            }
        });
        let wanted = [types[0].as_str()];
        group.throughput(Throughput::Elements(events));
        group.bench_function(BenchmarkId::new("all_then_filter", events), |b| {
            b.to_async(&rt).iter(|| async {
                let (mut after, mut found) = (LogPosition::START, 0u64);
                loop {
                    let page = store.read_all(after, 1000).await.unwrap();
                    found += page
                        .iter()
                        .filter(|e| e.aggregate_type == wanted[0])
                        .count() as u64;
                    match page.last() {
                        Some(last) if page.len() == 1000 => after = last.position,
                        _ => break,
                    }
                }
                assert_eq!(found, events / 10);
            })
        });
        group.bench_function(BenchmarkId::new("read_all_of", events), |b| {
            b.to_async(&rt).iter(|| async {
                let (mut after, mut found) = (LogPosition::START, 0u64);
                loop {
                    let page = store.read_all_of(&wanted, after, 1000).await.unwrap();
                    found += page.len() as u64;
                    match page.last() {
                        Some(last) if page.len() == 1000 => after = last.position,
                        _ => break,
                    }
                }
                assert_eq!(found, events / 10);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, appends, loads, log_of_one_type);
criterion_main!(benches);
