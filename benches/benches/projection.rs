//! Projection catch-up over 1,000,000 stored events (1,000 tallies of 1,000 events), against a
//! raw sequential read of the events table in the same run:
//!
//! - `raw_read`: every row of the events table in log order in one statement, each column read
//!   (the ceiling): through rusqlite on SQLite, through sqlx on PostgreSQL (each column decoded
//!   borrowed, as the store must hand it over);
//! - `store_read`: the store's own paged log reader, without a projection;
//! - `memory_model`: a runner into an in-memory read model (decode, route, apply);
//! - `table`: a runner into a table of the same database, one upsert per event, a batch per
//!   transaction (on PostgreSQL over the first 100,000 events only: a round trip per event);
//! - `table_batched`: the same table through a batch handler, one upsert per batch.
//!
//! The event files stay in the temporary directory between runs (`cqrs-bench-*`), so only the
//! first run pays for writing them. PostgreSQL rows need `DATABASE_URL`.

use std::time::{Duration, Instant};

use cqrs_benches::{
    PgTallyBatchTable, PgTallyTable, SqliteTallyBatchTable, SqliteTallyTable, TallyTotals,
    fill_tallies,
};
use cqrs_runtime::postgres::{PostgresConfig, PostgresStore};
use cqrs_runtime::projection::MemoryTarget;
use cqrs_runtime::sqlite::{Durability, SqliteConfig, SqliteStore};
use cqrs_runtime::{EventStoreExt, LogPosition, Projector};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::TryStreamExt;

const EVENTS: u64 = 1_000_000;
const PG_TABLE_EVENTS: u64 = 100_000;
const BATCH: usize = 2048;

/// Counts the items of a stream of results.
async fn count<T, E: std::fmt::Debug>(
    mut items: impl futures::Stream<Item = Result<T, E>> + Unpin,
) -> u64 {
    let mut n = 0;
    while items.try_next().await.unwrap().is_some() {
        n += 1;
    }
    n
}

/// Runs `pass` `iters` times and returns the total time, checking each pass saw every event.
fn timed<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, events: u64, pass: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            assert_eq!(pass().await, events);
        }
        start.elapsed()
    })
}

/// Every row of a PostgreSQL events table in log order, in one streaming statement, each
/// column decoded as the store must hand it over (borrowed text, integers, the id, the time):
/// the fastest read of the log a Rust program makes through sqlx.
async fn pg_raw_read(store: &PostgresStore) -> u64 {
    use sqlx::Row;
    let sql = format!(
        "SELECT position, transaction_id::text::bigint, aggregate_type, aggregate_id, sequence, \
         event_id, event_type, event_version, payload::text, metadata::text, recorded_at FROM {} \
         ORDER BY transaction_id, position",
        store.events_table()
    );
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).fetch(store.pool());
    let mut n = 0;
    while let Some(row) = rows.try_next().await.unwrap() {
        let columns = (
            row.get::<i64, _>(0),
            row.get::<i64, _>(1),
            row.get::<&str, _>(2),
            row.get::<&str, _>(3),
            row.get::<i64, _>(4),
            row.get::<uuid::Uuid, _>(5),
            row.get::<&str, _>(6),
            row.get::<i32, _>(7),
            row.get::<&str, _>(8),
            row.get::<&str, _>(9),
            row.get::<chrono::DateTime<chrono::Utc>, _>(10),
        );
        std::hint::black_box(columns);
        n += 1;
    }
    n
}

fn sqlite(c: &mut Criterion) {
    let rt = cqrs_benches::runtime();
    let path = std::env::temp_dir().join("cqrs-bench-catchup-1m.db");
    let store = rt.block_on(async {
        let store = SqliteStore::open(SqliteConfig::new(&path).durability(Durability::Relaxed))
            .await
            .unwrap();
        fill_tallies(&store, EVENTS).await;
        store
    });
    let mut group = c.benchmark_group("catchup_sqlite");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(EVENTS));
    let raw =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    group.bench_function("raw_read", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let mut select = raw
                    .prepare_cached(
                        "SELECT position, aggregate_type, aggregate_id, sequence, event_id, event_type, \
                         event_version, payload, metadata, recorded_at FROM cqrs_events ORDER BY position",
                    )
                    .unwrap();
                let mut rows = select.query([]).unwrap();
                let mut n = 0u64;
                while let Some(row) = rows.next().unwrap() {
                    for column in 0..10 {
                        std::hint::black_box(row.get_ref(column).unwrap());
                    }
                    n += 1;
                }
                assert_eq!(n, EVENTS);
            }
            start.elapsed()
        })
    });
    group.bench_function("store_read", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, EVENTS, || async {
                count(store.log_events(LogPosition::START)).await
            })
        })
    });
    group.bench_function("memory_model", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, EVENTS, || async {
                let mut runner =
                    Projector::new(store.clone(), MemoryTarget::new(), TallyTotals::default())
                        .batch_size(BATCH);
                runner.catch_up().await.unwrap();
                assert_eq!(runner.projection().totals.len(), 1000);
                runner.projection().applied
            })
        })
    });
    group.bench_function("table", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, EVENTS, || async {
                let mut runner =
                    Projector::new(store.clone(), store.projection_target(), SqliteTallyTable)
                        .batch_size(BATCH);
                runner.rebuild(|_| {}).await.unwrap().read
            })
        })
    });
    group.bench_function("table_batched", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, EVENTS, || async {
                let mut runner = Projector::new(
                    store.clone(),
                    store.projection_target(),
                    SqliteTallyBatchTable,
                )
                .batch_size(BATCH);
                runner.rebuild(|_| {}).await.unwrap().read
            })
        })
    });
    group.finish();
}

fn postgres(c: &mut Criterion) {
    let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!(
            "postgres catch-up benchmarks skipped: set DATABASE_URL (source scripts/postgres.sh)"
        );
        return;
    };
    let rt = cqrs_benches::runtime();
    let connect = |schema: &str| {
        let config = PostgresConfig::new(&url).schema(schema).max_connections(8);
        rt.block_on(PostgresStore::connect(config)).unwrap()
    };
    let store = connect("bench_catchup");
    rt.block_on(fill_tallies(&store, EVENTS));
    let small = connect("bench_catchup_small");
    rt.block_on(fill_tallies(&small, PG_TABLE_EVENTS));

    let mut group = c.benchmark_group("catchup_postgres");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(EVENTS));
    group.bench_function("raw_read", |b| {
        b.iter_custom(|iters| timed(&rt, iters, EVENTS, || async { pg_raw_read(&store).await }))
    });
    group.bench_function("store_read", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, EVENTS, || async {
                count(store.log_events(LogPosition::START)).await
            })
        })
    });
    group.bench_function("memory_model", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, EVENTS, || async {
                let mut runner =
                    Projector::new(store.clone(), MemoryTarget::new(), TallyTotals::default())
                        .batch_size(BATCH);
                runner.catch_up().await.unwrap();
                runner.projection().applied
            })
        })
    });
    group.throughput(Throughput::Elements(PG_TABLE_EVENTS));
    group.bench_function("table_100k", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, PG_TABLE_EVENTS, || async {
                let table = PgTallyTable {
                    table: "bench_catchup_small.tally_totals".to_owned(),
                };
                let mut runner = Projector::new(small.clone(), small.projection_target(), table)
                    .batch_size(BATCH);
                runner.rebuild(|_| {}).await.unwrap().read
            })
        })
    });
    group.bench_function("table_batched_100k", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, PG_TABLE_EVENTS, || async {
                let table = PgTallyBatchTable {
                    table: "bench_catchup_small.tally_batch_totals".to_owned(),
                };
                let mut runner = Projector::new(small.clone(), small.projection_target(), table)
                    .batch_size(BATCH);
                runner.rebuild(|_| {}).await.unwrap().read
            })
        })
    });
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("table_batched", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, EVENTS, || async {
                let table = PgTallyBatchTable {
                    table: "bench_catchup.tally_batch_totals".to_owned(),
                };
                let mut runner = Projector::new(store.clone(), store.projection_target(), table)
                    .batch_size(BATCH);
                runner.rebuild(|_| {}).await.unwrap().read
            })
        })
    });
    group.throughput(Throughput::Elements(PG_TABLE_EVENTS));
    group.bench_function("raw_read_100k", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, PG_TABLE_EVENTS, || async {
                pg_raw_read(&small).await
            })
        })
    });
    group.finish();
}

criterion_group!(benches, sqlite, postgres);
criterion_main!(benches);
