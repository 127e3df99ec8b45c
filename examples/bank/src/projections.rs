//! The bank's read models.
//!
//! - [`AccountSummaries`]: one summary per account, kept in memory (rebuilt from the log when
//!   the process starts). Its handlers take no connection, so it runs on any target.
//! - [`DailyTotals`]: money in and out per day and currency, across all accounts, in SQLite
//!   tables beside the events. Its handlers write through the batch's transaction, so each
//!   event counts exactly once, even when the runner is killed mid-batch. Deposits go through
//!   a batch handler: a batch's deposits are summed by day and currency and written with one
//!   statement.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use cqrs_runtime::{StoredEvent, projection};
use sqlx::{Executor, Row, SqliteConnection};

use crate::{Account, Closed, Deposited, Opened, Withdrawn};

/// What the bank shows for an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    /// Who owns it.
    pub owner: String,
    /// Its currency.
    pub currency: String,
    /// The balance in cents.
    pub balance: i64,
    /// Deposits and withdrawals so far.
    pub transactions: u64,
    /// Whether it was closed.
    pub closed: bool,
    /// The sequence of the last event applied: events at or below it are duplicates.
    pub version: u64,
}

/// Every account's summary, by account id. Clones share the data, so a service keeps one to
/// answer queries while a runner owns another.
#[derive(Debug, Clone, Default)]
pub struct AccountSummaries {
    accounts: Arc<RwLock<BTreeMap<String, AccountSummary>>>,
}

impl AccountSummaries {
    /// The summary of one account.
    pub fn get(&self, id: &str) -> Option<AccountSummary> {
        self.read().get(id).cloned()
    }

    /// Every summary, by account id.
    pub fn all(&self) -> BTreeMap<String, AccountSummary> {
        self.read().clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, AccountSummary>> {
        self.accounts.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `change` on an account's summary unless this event was already applied: the
    /// envelope's sequence makes the handlers idempotent under at-least-once delivery.
    fn update(&self, envelope: &StoredEvent, change: impl FnOnce(&mut AccountSummary)) {
        let mut accounts = self
            .accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(summary) = accounts
            .get_mut(&envelope.aggregate_id)
            .filter(|s| envelope.sequence > s.version)
        {
            change(summary);
            summary.version = envelope.sequence;
        }
    }
}

#[projection(aggregates(Account))]
impl AccountSummaries {
    fn opened(&mut self, event: &Opened, envelope: &StoredEvent) {
        let mut accounts = self
            .accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        accounts
            .entry(envelope.aggregate_id.clone())
            .or_insert_with(|| AccountSummary {
                owner: event.owner.clone(),
                currency: event.currency.clone(),
                balance: 0,
                transactions: 0,
                closed: false,
                version: envelope.sequence,
            });
    }

    fn deposited(&mut self, event: &Deposited, envelope: &StoredEvent) {
        self.update(envelope, |s| {
            s.balance += event.amount.cents;
            s.transactions += 1;
        });
    }

    fn withdrawn(&mut self, event: &Withdrawn, envelope: &StoredEvent) {
        self.update(envelope, |s| {
            s.balance -= event.cents;
            s.transactions += 1;
        });
    }

    fn closed(&mut self, _event: &Closed, envelope: &StoredEvent) {
        self.update(envelope, |s| s.closed = true);
    }

    #[reset]
    fn clear(&mut self) {
        self.accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// One day's money movements in one currency, across all accounts.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DailyTotal {
    /// The day, `YYYY-MM-DD` (UTC).
    pub day: String,
    /// The currency.
    pub currency: String,
    /// Cents deposited.
    pub deposited: i64,
    /// Cents withdrawn.
    pub withdrawn: i64,
}

/// Money in and out per day and currency, in the tables `bank_daily_totals_v1` and
/// `bank_account_currencies_v1` of the store's SQLite file (a new version builds new tables).
#[derive(Debug, Clone, Copy, Default)]
pub struct DailyTotals;

impl DailyTotals {
    /// The totals, by day then currency, from the tables of the active version.
    pub async fn query(pool: &sqlx::SqlitePool) -> Result<Vec<DailyTotal>, sqlx::Error> {
        sqlx::query_as(
            "SELECT day, currency, deposited, withdrawn FROM bank_daily_totals_v1 ORDER BY day, currency",
        )
        .fetch_all(pool)
        .await
    }

    /// Adds `(day, currency, deposited, withdrawn)` rows to the totals, with one upsert per
    /// 200 rows (4 parameters each, far below SQLite's limit).
    async fn add(
        conn: &mut SqliteConnection,
        rows: &[(String, &str, i64, i64)],
    ) -> Result<(), sqlx::Error> {
        for chunk in rows.chunks(200) {
            let mut upsert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO bank_daily_totals_v1 (day, currency, deposited, withdrawn) ",
            );
            upsert.push_values(chunk, |mut row, (day, currency, deposited, withdrawn)| {
                row.push_bind(day.clone())
                    .push_bind(currency.to_string())
                    .push_bind(*deposited)
                    .push_bind(*withdrawn);
            });
            upsert.push(
                " ON CONFLICT (day, currency) DO UPDATE SET
                     deposited = deposited + excluded.deposited, withdrawn = withdrawn + excluded.withdrawn",
            );
            upsert.build().execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// The day an event was recorded, `YYYY-MM-DD` (UTC).
fn day(envelope: &StoredEvent) -> String {
    envelope.recorded_at.format("%Y-%m-%d").to_string()
}

#[projection(aggregates(Account), name = "daily-totals", version = 1)]
impl DailyTotals {
    #[reset]
    async fn create_tables(&mut self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        conn.execute(sqlx::raw_sql(
            "DROP TABLE IF EXISTS bank_daily_totals_v1;
             DROP TABLE IF EXISTS bank_account_currencies_v1;
             CREATE TABLE bank_daily_totals_v1 (
                 day TEXT NOT NULL, currency TEXT NOT NULL,
                 deposited INTEGER NOT NULL, withdrawn INTEGER NOT NULL,
                 PRIMARY KEY (day, currency));
             CREATE TABLE bank_account_currencies_v1 (
                 account_id TEXT PRIMARY KEY, currency TEXT NOT NULL);",
        ))
        .await?;
        Ok(())
    }

    async fn opened(
        &mut self,
        event: &Opened,
        envelope: &StoredEvent,
        conn: &mut SqliteConnection,
    ) -> Result<(), sqlx::Error> {
        let query = sqlx::query(
            "INSERT INTO bank_account_currencies_v1 (account_id, currency) VALUES (?1, ?2)",
        )
        .bind(&envelope.aggregate_id)
        .bind(&event.currency);
        conn.execute(query).await?;
        Ok(())
    }

    /// Every deposit of a batch at once: summed by day and currency, then written with one
    /// statement.
    async fn deposited(
        &mut self,
        events: &[(Deposited, &StoredEvent)],
        conn: &mut SqliteConnection,
    ) -> Result<(), sqlx::Error> {
        let mut sums: BTreeMap<(String, &str), i64> = BTreeMap::new();
        for (event, envelope) in events {
            let key = (day(envelope), event.amount.currency.as_str());
            *sums.entry(key).or_default() += event.amount.cents;
        }
        let rows: Vec<_> = sums
            .into_iter()
            .map(|((day, currency), cents)| (day, currency, cents, 0))
            .collect();
        Self::add(conn, &rows).await
    }

    async fn withdrawn(
        &mut self,
        event: &Withdrawn,
        envelope: &StoredEvent,
        conn: &mut SqliteConnection,
    ) -> Result<(), sqlx::Error> {
        let query =
            sqlx::query("SELECT currency FROM bank_account_currencies_v1 WHERE account_id = ?1")
                .bind(&envelope.aggregate_id);
        let currency: String = conn.fetch_one(query).await?.try_get(0)?;
        Self::add(conn, &[(day(envelope), &currency, 0, event.cents)]).await
    }
}
