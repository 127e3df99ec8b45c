//! What the benchmarks share: a minimal aggregate with and without snapshots, event makers, and
//! the raw-driver baseline that does an append's transaction directly through sqlx.

use std::convert::Infallible;

use cqrs_runtime::{Aggregate, Command, Event, Metadata, NewEvent, handlers};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// Add to a tally.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Command)]
pub struct Add {
    /// How much.
    pub n: i64,
}

/// A tally grew.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Event)]
pub struct Added {
    /// How much.
    pub n: i64,
}

/// A tally replayed from every event.
#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(command = Add, event = Added)]
pub struct Tally {
    /// The sum.
    pub total: i64,
}

/// The same tally, snapshotted every 1,000 events.
#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(rename = "tally", command = Add, event = Added, snapshot_every = 1000)]
pub struct SnapshottedTally {
    /// The sum.
    pub total: i64,
}

#[handlers]
impl Tally {
    fn add(&self, cmd: Add) -> Result<Added, Infallible> {
        Ok(Added { n: cmd.n })
    }
    fn added(&mut self, event: &Added) {
        self.total += event.n;
    }
}

#[handlers]
impl SnapshottedTally {
    fn add(&self, cmd: Add) -> Result<Added, Infallible> {
        Ok(Added { n: cmd.n })
    }
    fn added(&mut self, event: &Added) {
        self.total += event.n;
    }
}

/// `count` serialized `Added` events.
pub fn new_events(count: usize) -> Vec<NewEvent> {
    (0..count)
        .map(|i| NewEvent {
            event_id: uuid::Uuid::now_v7(),
            event_type: "Added",
            event_version: 1,
            payload: format!(r#"{{"n":{i}}}"#),
            metadata: Metadata::default(),
            recorded_at: chrono::Utc::now(),
        })
        .collect()
}

/// The raw baseline: the same schema and transactions as the store, straight through sqlx,
/// with one connection per writer and no group commit.
#[derive(Debug, Clone)]
pub struct RawSqlite {
    pool: SqlitePool,
}

impl RawSqlite {
    /// A pool of `writers` connections on a new file, with the store's pragmas.
    pub async fn open(path: &std::path::Path, writers: u32, durable: bool) -> Self {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if durable {
                sqlx::sqlite::SqliteSynchronous::Full
            } else {
                sqlx::sqlite::SqliteSynchronous::Normal
            })
            .busy_timeout(std::time::Duration::from_secs(60));
        let pool = SqlitePoolOptions::new()
            .max_connections(writers)
            .connect_with(options)
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS events (position INTEGER PRIMARY KEY AUTOINCREMENT, \
             aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL, sequence INTEGER NOT NULL, \
             event_id BLOB NOT NULL UNIQUE, event_type TEXT NOT NULL, event_version INTEGER NOT NULL, \
             payload TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at INTEGER NOT NULL, \
             UNIQUE (aggregate_type, aggregate_id, sequence))",
        )
        .execute(&pool)
        .await
        .unwrap();
        RawSqlite { pool }
    }

    /// A stream's payloads in sequence order, read straight through sqlx: the load of a
    /// command handled with the raw driver.
    pub async fn read(&self, stream: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT payload FROM events WHERE aggregate_type = 'tally' AND aggregate_id = ?1 ORDER BY sequence",
        )
        .bind(stream)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// One append: check the version and insert the events in one immediate transaction.
    pub async fn append(&self, stream: &str, expected: i64, events: &[NewEvent]) {
        let mut conn = self.pool.acquire().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .unwrap();
        let (actual,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(MAX(sequence), 0) FROM events WHERE aggregate_type = 'tally' AND aggregate_id = ?1",
        )
        .bind(stream)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(
            actual, expected,
            "the raw baseline writes each stream from one task"
        );
        let mut sql = String::from(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_id, event_type, \
             event_version, payload, metadata, recorded_at) VALUES ",
        );
        for i in 0..events.len() {
            let p = i * 9;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{})",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6,
                p + 7,
                p + 8,
                p + 9
            ));
        }
        sql.push_str(" RETURNING position");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, event) in events.iter().enumerate() {
            query = query
                .bind("tally")
                .bind(stream)
                .bind(expected + i as i64 + 1)
                .bind(event.event_id.as_bytes().as_slice())
                .bind(event.event_type)
                .bind(i64::from(event.event_version))
                .bind(&event.payload)
                .bind("{}")
                .bind(event.recorded_at.timestamp_micros());
        }
        query.fetch_all(&mut *conn).await.unwrap();
        sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
    }
}

/// The process's peak resident memory so far, in KiB (Linux `VmHWM`).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A read model in memory: every tally's total, owned by the runner.
#[derive(Debug, Clone, Default)]
pub struct TallyTotals {
    /// Total per tally id.
    pub totals: std::collections::HashMap<String, i64>,
    /// Events applied.
    pub applied: u64,
}

#[cqrs_runtime::projection(aggregates(Tally), name = "tally-totals")]
impl TallyTotals {
    fn added(&mut self, event: &Added, envelope: &cqrs_runtime::StoredEvent) {
        self.applied += 1;
        match self.totals.get_mut(&envelope.aggregate_id) {
            Some(total) => *total += event.n,
            None => {
                self.totals.insert(envelope.aggregate_id.clone(), event.n);
            }
        }
    }

    #[reset]
    fn clear(&mut self) {
        self.totals.clear();
        self.applied = 0;
    }
}

/// A read model in an SQLite table of the store's file: one upsert per event.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteTallyTable;

#[cqrs_runtime::projection(aggregates(Tally), name = "tally-table")]
impl SqliteTallyTable {
    #[reset]
    async fn create(&mut self, conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
        use sqlx::Executor;
        conn.execute(
            "DROP TABLE IF EXISTS tally_totals; CREATE TABLE tally_totals (id TEXT PRIMARY KEY, total INTEGER NOT NULL)",
        )
        .await?;
        Ok(())
    }

    async fn added(
        &mut self,
        event: &Added,
        envelope: &cqrs_runtime::StoredEvent,
        conn: &mut sqlx::SqliteConnection,
    ) -> Result<(), sqlx::Error> {
        use sqlx::Executor;
        let query = sqlx::query(
            "INSERT INTO tally_totals (id, total) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET total = total + excluded.total",
        )
        .bind(&envelope.aggregate_id)
        .bind(event.n);
        conn.execute(query).await?;
        Ok(())
    }
}

/// A read model in a PostgreSQL table (`<schema>.tally_totals`): one upsert per event.
#[derive(Debug, Clone)]
pub struct PgTallyTable {
    /// The qualified table name.
    pub table: String,
}

#[cqrs_runtime::projection(aggregates(Tally), name = "tally-table")]
impl PgTallyTable {
    #[reset]
    async fn create(&mut self, conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        use sqlx::Executor;
        let sql = format!(
            "DROP TABLE IF EXISTS {0}; CREATE TABLE {0} (id TEXT PRIMARY KEY, total BIGINT NOT NULL)",
            self.table
        );
        conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql)))
            .await?;
        Ok(())
    }

    async fn added(
        &mut self,
        event: &Added,
        envelope: &cqrs_runtime::StoredEvent,
        conn: &mut sqlx::PgConnection,
    ) -> Result<(), sqlx::Error> {
        use sqlx::Executor;
        let sql = format!(
            "INSERT INTO {} (id, total) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET total = {0}.total + excluded.total",
            self.table
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&envelope.aggregate_id)
            .bind(event.n);
        conn.execute(query).await?;
        Ok(())
    }
}

/// Sums a batch's additions by tally.
fn sums<'e>(events: &'e [(Added, &cqrs_runtime::StoredEvent)]) -> Vec<(&'e str, i64)> {
    let mut sums: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for (event, envelope) in events {
        *sums.entry(envelope.aggregate_id.as_str()).or_default() += event.n;
    }
    sums.into_iter().collect()
}

/// The same read model as [`SqliteTallyTable`], through a batch handler: a batch's additions
/// summed by tally, then one multi-row upsert per 10,000 tallies.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteTallyBatchTable;

#[cqrs_runtime::projection(aggregates(Tally), name = "tally-batch-table")]
impl SqliteTallyBatchTable {
    #[reset]
    async fn create(&mut self, conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
        use sqlx::Executor;
        conn.execute(
            "DROP TABLE IF EXISTS tally_batch_totals; CREATE TABLE tally_batch_totals (id TEXT PRIMARY KEY, total INTEGER NOT NULL)",
        )
        .await?;
        Ok(())
    }

    async fn added(
        &mut self,
        events: &[(Added, &cqrs_runtime::StoredEvent)],
        conn: &mut sqlx::SqliteConnection,
    ) -> Result<(), sqlx::Error> {
        use sqlx::Executor;
        for chunk in sums(events).chunks(10_000) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("(?{}, ?{})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!(
                "INSERT INTO tally_batch_totals (id, total) VALUES {} ON CONFLICT (id) DO UPDATE SET total = total + excluded.total",
                values.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, total) in chunk {
                query = query.bind(*id).bind(*total);
            }
            conn.execute(query).await?;
        }
        Ok(())
    }
}

/// The same read model as [`PgTallyTable`], through a batch handler: a batch's additions summed
/// by tally, then one `INSERT ... SELECT FROM UNNEST(...)` upsert.
#[derive(Debug, Clone)]
pub struct PgTallyBatchTable {
    /// The qualified table name.
    pub table: String,
}

#[cqrs_runtime::projection(aggregates(Tally), name = "tally-batch-table")]
impl PgTallyBatchTable {
    #[reset]
    async fn create(&mut self, conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        use sqlx::Executor;
        let sql = format!(
            "DROP TABLE IF EXISTS {0}; CREATE TABLE {0} (id TEXT PRIMARY KEY, total BIGINT NOT NULL)",
            self.table
        );
        conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql)))
            .await?;
        Ok(())
    }

    async fn added(
        &mut self,
        events: &[(Added, &cqrs_runtime::StoredEvent)],
        conn: &mut sqlx::PgConnection,
    ) -> Result<(), sqlx::Error> {
        use sqlx::Executor;
        let (ids, totals): (Vec<&str>, Vec<i64>) = sums(events).into_iter().unzip();
        let sql = format!(
            "INSERT INTO {} (id, total) SELECT * FROM UNNEST($1::text[], $2::bigint[]) \
             ON CONFLICT (id) DO UPDATE SET total = {0}.total + excluded.total",
            self.table
        );
        conn.execute(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ids).bind(totals))
            .await?;
        Ok(())
    }
}

/// Writes `events` `Added` events to the store as 1,000 tallies (`t-0` ... `t-999`), in
/// appends of 100 events, unless the log already holds that many.
pub async fn fill_tallies<S: cqrs_runtime::EventStore>(store: &S, events: u64) {
    if store.count_events().await.unwrap() >= events {
        return;
    }
    let streams = 1000u64;
    let per_stream = events / streams;
    let mut version = 0;
    while version < per_stream {
        let n = 100.min(per_stream - version);
        let appends = (0..streams).map(|s| {
            let batch = new_events(n as usize);
            async move {
                store
                    .append("tally", &format!("t-{s}"), version, &batch)
                    .await
                    .unwrap();
            }
        });
        // 16 appends at a time: the group commit (SQLite) and the pool (PostgreSQL) see
        // concurrent writers.
        let mut pending = appends.collect::<Vec<_>>();
        while !pending.is_empty() {
            let chunk: Vec<_> = pending.drain(..pending.len().min(16)).collect();
            futures::future::join_all(chunk).await;
        }
        version += n;
    }
}

/// The benchmarks' runtime: two worker threads, like the machines they are measured on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The limit: the store's append transaction written the fastest way a Rust program can, with
/// rusqlite on the calling thread. One connection, the store's schema and pragmas, cached
/// prepared statements, no group commit and no hop to another thread.
#[derive(Debug)]
pub struct RusqliteLimit {
    conn: rusqlite::Connection,
}

impl RusqliteLimit {
    /// A connection to a new file with the store's pragmas and its events table.
    pub fn open(path: &std::path::Path, durable: bool) -> Self {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(60))
            .unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", if durable { "FULL" } else { "NORMAL" })
            .unwrap();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS events (position INTEGER PRIMARY KEY AUTOINCREMENT, \
             aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL, sequence INTEGER NOT NULL, \
             event_id BLOB NOT NULL UNIQUE, event_type TEXT NOT NULL, event_version INTEGER NOT NULL, \
             payload TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at INTEGER NOT NULL, \
             UNIQUE (aggregate_type, aggregate_id, sequence))",
        )
        .unwrap();
        RusqliteLimit { conn }
    }

    /// The connection.
    pub fn conn(&self) -> &rusqlite::Connection {
        &self.conn
    }

    /// One append: `BEGIN IMMEDIATE`, the stream's last sequence, one insert per event,
    /// `COMMIT`.
    pub fn append(&self, stream: &str, expected: i64, events: &[NewEvent]) {
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        self.append_in_transaction(stream, expected, events);
        self.conn.execute_batch("COMMIT").unwrap();
    }

    /// One append to each of `streams` (each at version `expected`, with its own events) in
    /// one transaction: what a group commit of that many writers does, done the fastest way.
    pub fn append_round(&self, streams: &[String], expected: i64, events: &[Vec<NewEvent>]) {
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        for (stream, events) in streams.iter().zip(events) {
            self.append_in_transaction(stream, expected, events);
        }
        self.conn.execute_batch("COMMIT").unwrap();
    }

    fn append_in_transaction(&self, stream: &str, expected: i64, events: &[NewEvent]) {
        let conn = &self.conn;
        let actual: i64 = conn
            .prepare_cached(
                "SELECT COALESCE(MAX(sequence), 0) FROM events \
                 WHERE aggregate_type = 'tally' AND aggregate_id = ?1",
            )
            .unwrap()
            .query_row([stream], |row| row.get(0))
            .unwrap();
        assert_eq!(
            actual, expected,
            "the limit writes each stream from one thread"
        );
        let mut insert = conn
            .prepare_cached(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_id, event_type, \
                 event_version, payload, metadata, recorded_at) \
                 VALUES ('tally', ?1, ?2, ?3, ?4, ?5, ?6, '{}', ?7)",
            )
            .unwrap();
        for (i, event) in events.iter().enumerate() {
            insert
                .execute(rusqlite::params![
                    stream,
                    expected + i as i64 + 1,
                    event.event_id.as_bytes().as_slice(),
                    event.event_type,
                    i64::from(event.event_version),
                    event.payload,
                    event.recorded_at.timestamp_micros(),
                ])
                .unwrap();
        }
    }

    /// A stream replayed: every payload read in sequence order and decoded into the tally.
    pub fn load(&self, stream: &str) -> i64 {
        let mut select = self
            .conn
            .prepare_cached(
                "SELECT payload FROM events WHERE aggregate_type = 'tally' AND aggregate_id = ?1 \
                 ORDER BY sequence",
            )
            .unwrap();
        let mut rows = select.query([stream]).unwrap();
        let mut total = 0;
        while let Some(row) = rows.next().unwrap() {
            let payload = row.get_ref(0).unwrap().as_str().unwrap();
            total += serde_json::from_str::<Added>(payload).unwrap().n;
        }
        total
    }
}

/// `events` stored events of one bank account (an opening, then deposits), as a store holds
/// them.
pub fn account_events(events: usize) -> Vec<NewEvent> {
    use cqrs_runtime::{DomainEvent, Metadata};
    (0..events)
        .map(|i| {
            let event: bank::AccountEvent = if i == 0 {
                bank::Opened {
                    owner: "Ada".into(),
                    currency: "EUR".into(),
                }
                .into()
            } else {
                bank::Deposited {
                    amount: bank::Money::eur(i as i64),
                }
                .into()
            };
            NewEvent {
                event_id: uuid::Uuid::now_v7(),
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: event.encode().expect("the event encodes"),
                metadata: Metadata::default(),
                recorded_at: chrono::Utc::now(),
            }
        })
        .collect()
}

/// The median of a criterion benchmark's last run, in nanoseconds, from its `estimates.json`
/// under `root` (`target/criterion`).
pub fn median_ns(root: &std::path::Path, id: &str) -> Option<f64> {
    let path = root.join(id).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// A duration in nanoseconds, in the unit that reads best.
pub fn show_duration(ns: f64) -> String {
    match ns {
        n if n >= 1e9 => format!("{:.2} s", n / 1e9),
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.2} µs", n / 1e3),
        n => format!("{n:.1} ns"),
    }
}
