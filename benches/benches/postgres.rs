//! PostgreSQL store benchmarks (needs `DATABASE_URL`; `source scripts/postgres.sh` starts a
//! throwaway server): appends with 1, 8 and 32 concurrent writers, 1 and 10 events per command,
//! against a raw-driver baseline doing the same inserts, the same baseline with the store's
//! expected-version check, and the same baseline plus the ordering method's transaction-id
//! column and index (its cost, as a ratio); and loading an aggregate of 10,000 events, against
//! the limit of a raw streaming read of its rows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_benches::{Tally, new_events};
use cqrs_runtime::postgres::{PostgresConfig, PostgresStore};
use cqrs_runtime::{EventStore, NewEvent, Repository};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sqlx::PgPool;

fn database_url() -> Option<String> {
    let url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("postgres benchmarks skipped: set DATABASE_URL (source scripts/postgres.sh)");
    }
    url
}

/// The raw baseline: a plain multi-row insert (one statement, its own transaction) into a
/// table with the same columns and stream uniqueness, without the store's version check,
/// notification trigger or ordering column. `ordered` adds the ordering column and index.
async fn raw_table(pool: &PgPool, name: &str, ordered: bool) {
    let (column, index) = if ordered {
        (
            "transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),",
            format!("CREATE INDEX {name}_log ON {name} (transaction_id, position);"),
        )
    } else {
        ("", String::new())
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS {name}; \
         CREATE TABLE {name} (position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, {column} \
         aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL, sequence BIGINT NOT NULL, \
         event_id UUID NOT NULL UNIQUE, event_type TEXT NOT NULL, event_version INTEGER NOT NULL, \
         payload JSONB NOT NULL, metadata JSONB NOT NULL, recorded_at TIMESTAMPTZ NOT NULL, \
         UNIQUE (aggregate_type, aggregate_id, sequence)); {index}"
    )))
    .execute(pool)
    .await
    .unwrap();
}

async fn raw_insert(pool: &PgPool, table: &str, stream: &str, first: i64, events: &[NewEvent]) {
    // `raw_checked` is the `raw` table, written with the store's expected-version check.
    let (table, check) = match table {
        "raw_checked" => (
            "raw_events",
            "WHERE (SELECT COALESCE(MAX(sequence), 0) FROM raw_events \
             WHERE aggregate_type = 'tally' AND aggregate_id = $1) = $2",
        ),
        other => (other, ""),
    };
    let sql = format!(
        "INSERT INTO {table} (aggregate_type, aggregate_id, sequence, event_id, event_type, \
         event_version, payload, metadata, recorded_at) \
         SELECT 'tally', $1, $2 + e.ord, e.event_id, e.event_type, e.event_version, e.payload::jsonb, \
         e.metadata::jsonb, e.recorded_at \
         FROM UNNEST($3::uuid[], $4::text[], $5::int4[], $6::text[], $7::text[], $8::timestamptz[]) \
         WITH ORDINALITY AS e(event_id, event_type, event_version, payload, metadata, recorded_at, ord) \
         {check}"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
        .bind(stream)
        .bind(first)
        .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.event_type).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| e.event_version as i32)
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|e| e.payload.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(|_| "{}").collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.recorded_at).collect::<Vec<_>>())
        .execute(pool)
        .await
        .unwrap();
}

#[derive(Clone, Copy)]
enum Target {
    Store,
    Raw,
    RawChecked,
    RawOrdered,
}

async fn run(
    target: Target,
    store: &PostgresStore,
    appends: u64,
    writers: u64,
    per_command: usize,
) -> Duration {
    let template = Arc::new(new_events(per_command));
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (store, template) = (store.clone(), Arc::clone(&template));
            let count = appends / writers + u64::from(w < appends % writers);
            tokio::spawn(async move {
                let stream = format!("w{w}-{}", uuid::Uuid::now_v7());
                let mut version = 0u64;
                for _ in 0..count {
                    let events: Vec<NewEvent> = template
                        .iter()
                        .map(|e| NewEvent {
                            event_id: uuid::Uuid::now_v7(),
                            ..e.clone()
                        })
                        .collect();
                    match target {
                        Target::Store => {
                            store
                                .append("tally", &stream, version, &events)
                                .await
                                .unwrap();
                        }
                        Target::Raw => {
                            raw_insert(store.pool(), "raw_events", &stream, version as i64, &events)
                                .await
                        }
                        Target::RawChecked => {
                            raw_insert(
                                store.pool(),
                                "raw_checked",
                                &stream,
                                version as i64,
                                &events,
                            )
                            .await
                        }
                        Target::RawOrdered => {
                            raw_insert(
                                store.pool(),
                                "raw_ordered",
                                &stream,
                                version as i64,
                                &events,
                            )
                            .await
                        }
                    }
                    version += events.len() as u64;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    start.elapsed()
}

fn appends(c: &mut Criterion) {
    let Some(url) = database_url() else { return };
    let rt = cqrs_benches::runtime();
    let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
    let store = rt
        .block_on(PostgresStore::connect(
            PostgresConfig::new(&url).schema(schema).max_connections(40),
        ))
        .unwrap();
    rt.block_on(async {
        raw_table(store.pool(), "raw_events", false).await;
        raw_table(store.pool(), "raw_ordered", true).await;
    });
    let mut group = c.benchmark_group("postgres_append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for per_command in [1usize, 10] {
        for writers in [1u64, 8, 32] {
            group.throughput(Throughput::Elements(per_command as u64));
            let id = format!("{per_command}ev/{writers}w");
            for (name, target) in [
                ("store", Target::Store),
                ("raw", Target::Raw),
                ("raw_checked", Target::RawChecked),
                ("raw_ordered", Target::RawOrdered),
            ] {
                group.bench_function(BenchmarkId::new(name, &id), |b| {
                    b.to_async(&rt).iter_custom(|appends| {
                        let store = store.clone();
                        async move { run(target, &store, appends, writers, per_command).await }
                    })
                });
            }
        }
    }
    group.finish();
}

fn loads(c: &mut Criterion) {
    let Some(url) = database_url() else { return };
    let rt = cqrs_benches::runtime();
    let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
    let store = rt
        .block_on(PostgresStore::connect(
            PostgresConfig::new(&url).schema(schema),
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
    });
    let (pool, limit_sql) = (
        store.pool().clone(),
        format!(
            "SELECT position, transaction_id::text::bigint, sequence, event_id, event_type, \
             event_version, payload::text, metadata::text, recorded_at FROM {} \
             WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
            store.events_table()
        ),
    );
    let repo = Repository::<Tally, _>::new(store);
    let mut group = c.benchmark_group("postgres_load_10000_events");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    group.bench_function("replay", |b| {
        b.to_async(&rt).iter(|| async {
            assert_eq!(repo.load(&"big".into()).await.unwrap().version(), EVENTS);
        })
    });
    // The limit: the stream's rows in one streaming statement through sqlx, each column
    // decoded borrowed (no snapshot lookup, no JSON decoding, no state).
    group.bench_function("limit", |b| {
        b.to_async(&rt).iter(|| async {
            use futures::TryStreamExt;
            use sqlx::Row;
            let mut rows = sqlx::query(sqlx::AssertSqlSafe(limit_sql.clone()))
                .bind("tally")
                .bind("big")
                .fetch(&pool);
            let mut n = 0u64;
            while let Some(row) = rows.try_next().await.unwrap() {
                let columns = (
                    row.get::<i64, _>(0),
                    row.get::<i64, _>(1),
                    row.get::<i64, _>(2),
                    row.get::<uuid::Uuid, _>(3),
                    row.get::<&str, _>(4),
                    row.get::<i32, _>(5),
                    row.get::<&str, _>(6),
                    row.get::<&str, _>(7),
                    row.get::<chrono::DateTime<chrono::Utc>, _>(8),
                );
                std::hint::black_box(columns);
                n += 1;
            }
            assert_eq!(n, EVENTS);
        })
    });
    group.finish();
}

criterion_group!(benches, appends, loads);
criterion_main!(benches);
