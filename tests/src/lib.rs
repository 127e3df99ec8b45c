//! Cross-crate tests live in `tests/`. This library holds what the tests and their child
//! processes share: the ledger projections of the projection suite.
//!
//! A ledger records one row per applied event of the bank's accounts, (account, sequence,
//! cents), so a test can see every event applied exactly once, in order per account. Its
//! deposit handler fails on a chosen amount (the poison), as told by [`Switches`].

pub mod brokers;
pub mod bus;
pub mod history;
pub mod interbank;

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bank::{Account, Deposited, Opened};
use cqrs_runtime::{BoxError, StoredEvent, projection};
use sqlx::{Executor, PgConnection, Row as _, SqliteConnection};

/// One applied event: account id, sequence, cents deposited (0 for an opening).
pub type Row = (String, u64, i64);

/// What makes the deposit handler fail; clones share the switches.
#[derive(Debug, Clone)]
pub struct Switches {
    poison: Arc<AtomicI64>,
    failures_left: Arc<AtomicU32>,
    attempts: Arc<AtomicU32>,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            poison: Arc::new(AtomicI64::new(-1)),
            failures_left: Arc::new(AtomicU32::new(0)),
            attempts: Arc::new(AtomicU32::new(0)),
        }
    }
}

impl Switches {
    /// Deposits of `cents` fail `times` times (`u32::MAX`: always).
    pub fn poison(&self, cents: i64, times: u32) {
        self.poison.store(cents, Ordering::SeqCst);
        self.failures_left.store(times, Ordering::SeqCst);
    }

    /// No deposit fails any more.
    pub fn cure(&self) {
        self.poison.store(-1, Ordering::SeqCst);
    }

    /// How many times the handler ran on the poison amount.
    pub fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::SeqCst)
    }

    fn check(&self, cents: i64) -> Result<(), BoxError> {
        if cents != self.poison.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let left = self.failures_left.load(Ordering::SeqCst);
        if left == 0 {
            return Ok(());
        }
        if left != u32::MAX {
            self.failures_left.fetch_sub(1, Ordering::SeqCst);
        }
        Err(format!("poison deposit of {cents} cents").into())
    }
}

/// A ledger in memory. Clones share the rows.
#[derive(Debug, Clone, Default)]
pub struct MemLedger {
    rows: Arc<Mutex<Vec<Row>>>,
    /// The failure switches.
    pub switches: Switches,
}

impl MemLedger {
    /// The rows, in the order they were applied.
    pub fn rows(&self) -> Vec<Row> {
        self.rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, envelope: &StoredEvent, cents: i64) {
        self.rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((envelope.aggregate_id.clone(), envelope.sequence, cents));
    }
}

#[projection(aggregates(Account), name = "ledger")]
impl MemLedger {
    fn opened(&mut self, _event: &Opened, envelope: &StoredEvent) {
        self.push(envelope, 0);
    }

    fn deposited(&mut self, event: &Deposited, envelope: &StoredEvent) -> Result<(), BoxError> {
        self.switches.check(event.amount.cents)?;
        self.push(envelope, event.amount.cents);
        Ok(())
    }

    #[reset]
    fn clear(&mut self) {
        self.rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Version 2 of the in-memory ledger, built side by side with version 1.
#[derive(Debug, Clone, Default)]
pub struct MemLedgerV2(pub MemLedger);

#[projection(aggregates(Account), name = "ledger", version = 2)]
impl MemLedgerV2 {
    fn opened(&mut self, _event: &Opened, envelope: &StoredEvent) {
        self.0.push(envelope, 0);
    }

    fn deposited(&mut self, event: &Deposited, envelope: &StoredEvent) {
        self.0.push(envelope, event.amount.cents);
    }

    #[reset]
    fn clear(&mut self) {
        self.0.clear();
    }
}

/// A ledger in an SQLite table of the store's file, written in the batch's transaction.
#[derive(Debug, Clone, Default)]
pub struct SqliteLedger {
    /// The failure switches.
    pub switches: Switches,
}

impl SqliteLedger {
    /// The rows, by account and sequence.
    pub async fn rows(pool: &sqlx::SqlitePool) -> Vec<Row> {
        let rows = match sqlx::query(
            "SELECT account, sequence, cents FROM ledger ORDER BY account, sequence",
        )
        .fetch_all(pool)
        .await
        {
            Ok(rows) => rows,
            // Not created yet: the runner has not started.
            Err(e) if e.to_string().contains("no such table") => return Vec::new(),
            Err(e) => panic!("read the ledger: {e}"),
        };
        rows.iter()
            .map(|r| (r.get(0), r.get::<i64, _>(1).unsigned_abs(), r.get(2)))
            .collect()
    }

    async fn insert(
        conn: &mut SqliteConnection,
        envelope: &StoredEvent,
        cents: i64,
    ) -> Result<(), BoxError> {
        let query =
            sqlx::query("INSERT INTO ledger (account, sequence, cents) VALUES (?1, ?2, ?3)")
                .bind(&envelope.aggregate_id)
                .bind(envelope.sequence as i64)
                .bind(cents);
        conn.execute(query).await?;
        Ok(())
    }
}

#[projection(aggregates(Account), name = "ledger")]
impl SqliteLedger {
    #[reset]
    async fn create(&mut self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        // No key: a second application of an event would show as a second row.
        conn.execute(
            "DROP TABLE IF EXISTS ledger; CREATE TABLE ledger (account TEXT NOT NULL, sequence INTEGER NOT NULL, cents INTEGER NOT NULL)",
        )
        .await?;
        Ok(())
    }

    async fn opened(
        &mut self,
        _event: &Opened,
        envelope: &StoredEvent,
        conn: &mut SqliteConnection,
    ) -> Result<(), BoxError> {
        Self::insert(conn, envelope, 0).await
    }

    async fn deposited(
        &mut self,
        event: &Deposited,
        envelope: &StoredEvent,
        conn: &mut SqliteConnection,
    ) -> Result<(), BoxError> {
        self.switches.check(event.amount.cents)?;
        Self::insert(conn, envelope, event.amount.cents).await
    }
}

/// A ledger in a PostgreSQL table (`<schema>.ledger`), written in the batch's transaction.
#[derive(Debug, Clone)]
pub struct PgLedger {
    /// The failure switches.
    pub switches: Switches,
    /// The qualified table name.
    pub table: String,
}

impl PgLedger {
    /// A ledger in `schema`.
    pub fn new(schema: &str) -> Self {
        PgLedger {
            switches: Switches::default(),
            table: format!("{schema}.ledger"),
        }
    }

    /// The rows, by account and sequence.
    pub async fn rows(&self, pool: &sqlx::PgPool) -> Vec<Row> {
        let sql = format!(
            "SELECT account, sequence, cents FROM {} ORDER BY account, sequence",
            self.table
        );
        let rows = match sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await {
            Ok(rows) => rows,
            // Not created yet (undefined_table): the runner has not started.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
                return Vec::new();
            }
            Err(e) => panic!("read the ledger: {e}"),
        };
        rows.iter()
            .map(|r| (r.get(0), r.get::<i64, _>(1).unsigned_abs(), r.get(2)))
            .collect()
    }

    async fn insert(
        &self,
        conn: &mut PgConnection,
        envelope: &StoredEvent,
        cents: i64,
    ) -> Result<(), BoxError> {
        let sql = format!(
            "INSERT INTO {} (account, sequence, cents) VALUES ($1, $2, $3)",
            self.table
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&envelope.aggregate_id)
            .bind(envelope.sequence as i64)
            .bind(cents);
        conn.execute(query).await?;
        Ok(())
    }
}

#[projection(aggregates(Account), name = "ledger")]
impl PgLedger {
    #[reset]
    async fn create(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let sql = format!(
            "DROP TABLE IF EXISTS {0}; CREATE TABLE {0} (account TEXT NOT NULL, sequence BIGINT NOT NULL, cents BIGINT NOT NULL)",
            self.table
        );
        conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql)))
            .await?;
        Ok(())
    }

    async fn opened(
        &mut self,
        _event: &Opened,
        envelope: &StoredEvent,
        conn: &mut PgConnection,
    ) -> Result<(), BoxError> {
        self.insert(conn, envelope, 0).await
    }

    async fn deposited(
        &mut self,
        event: &Deposited,
        envelope: &StoredEvent,
        conn: &mut PgConnection,
    ) -> Result<(), BoxError> {
        self.switches.check(event.amount.cents)?;
        self.insert(conn, envelope, event.amount.cents).await
    }
}

/// The rows a ledger must hold for a log: every opening and deposit, by account and sequence.
pub fn expected_rows(log: &[StoredEvent]) -> Vec<Row> {
    let mut rows: Vec<Row> = log
        .iter()
        .filter(|e| e.aggregate_type == bank::ACCOUNT_TYPE)
        .filter_map(|e| {
            let cents = match e.clone().decode::<bank::AccountEvent>().ok()?.event {
                bank::AccountEvent::Opened { .. } => 0,
                bank::AccountEvent::Deposited { amount } => amount.cents,
                _ => return None,
            };
            Some((e.aggregate_id.clone(), e.sequence, cents))
        })
        .collect();
    rows.sort();
    rows
}

impl MemLedger {
    /// The rows sorted by account and sequence, as [`expected_rows`] gives them.
    pub fn sorted_rows(&self) -> Vec<Row> {
        let mut rows = self.rows();
        rows.sort();
        rows
    }
}

/// The PostgreSQL server of the tests, from `DATABASE_URL`. Without it the tests say they were
/// skipped (straight to the stderr handle: the harness captures `eprintln!` of passing tests,
/// and a skip must be seen); with `CI` set they fail instead, so CI never passes without them.
pub fn database_url(tests: &str) -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "DATABASE_URL is not set, and CI must run the {tests}: run `bash scripts/test.sh`, which starts a server"
        ),
        _ => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: the {tests} need DATABASE_URL; `bash scripts/test.sh` starts a throwaway server and sets it"
            );
            None
        }
    }
}

/// Checks `done` every `every` until it holds or `patience` runs out, and says whether it held.
/// The callers then assert on what they waited for, so that a timeout fails with their message
/// (the waiting is never the assertion).
pub async fn eventually(
    patience: std::time::Duration,
    every: std::time::Duration,
    mut done: impl AsyncFnMut() -> bool,
) -> bool {
    let deadline = std::time::Instant::now() + patience;
    loop {
        if done().await {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}
