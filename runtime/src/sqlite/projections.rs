//! The SQLite projection target: read models, checkpoints, dead letters and leases in the
//! store's own file, each batch in one `BEGIN IMMEDIATE` transaction of a separate write
//! connection (SQLite's write lock is shared with the store's writer and waited for with the
//! busy timeout).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{Row, Sqlite, SqliteConnection, Transaction};
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::LogPosition;
use crate::projection::{Advance, CommitError, ParkedEvent, ProjectionId, ProjectionTarget};
use crate::sql::{EventRow, Tables, encode_metadata, named_queries, to_i64};

const NAMES: [&str; 14] = [
    "select_checkpoint",
    "insert_checkpoint",
    "advance_checkpoint",
    "delete_checkpoint",
    "insert_dead_letter",
    "select_dead_letters",
    "delete_dead_letter",
    "activate",
    "select_active",
    "acquire_lease",
    "renew_lease",
    "release_lease",
    "record_processed",
    "prune_processed",
];

#[derive(Debug)]
struct Statements([String; 14]);

impl Statements {
    fn get(&self, name: &str) -> &str {
        let i = NAMES.iter().position(|n| *n == name).unwrap_or(0);
        &self.0[i]
    }
}

/// A [`ProjectionTarget`] in an SQLite store's file: handlers get the batch's
/// `&mut SqliteConnection` and write their tables in the transaction that moves the
/// checkpoint, so each event takes effect exactly once. Cloning shares the connections.
///
/// Get one with [`SqliteStore::projection_target`](super::SqliteStore::projection_target).
/// Leases are rows that expire unless renewed, so a standby (in this or another process on
/// the same file) takes over a runner that died once its lease expired.
#[derive(Debug, Clone)]
pub struct SqliteTarget {
    pool: SqlitePool,
    statements: Arc<Statements>,
}

/// The lease of an [`SqliteTarget`].
#[derive(Debug)]
pub struct SqliteLease {
    projection: ProjectionId,
    owner: Uuid,
    ttl: Duration,
}

impl SqliteTarget {
    pub(super) fn new(options: SqliteConnectOptions, tables: &Tables) -> Self {
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_lazy_with(options);
        let statements = named_queries(include_str!("projections.sql"), NAMES, |sql| {
            tables.render(sql)
        });
        SqliteTarget {
            pool,
            statements: Arc::new(Statements(statements)),
        }
    }

    /// The pool of write connections, to query read models kept in the same file.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn sql(&self, name: &str) -> &str {
        self.statements.get(name)
    }
}

fn key(projection: ProjectionId) -> (&'static str, i64) {
    (projection.name, i64::from(projection.version))
}

fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

fn position_of(txn: i64, position: i64) -> Result<LogPosition, StoreError> {
    match (u64::try_from(txn), u64::try_from(position)) {
        (Ok(transaction), Ok(event)) => Ok(LogPosition { transaction, event }),
        _ => Err(StoreError::Corrupt(format!(
            "a projection checkpoint is at a negative position ({txn}, {position})"
        ))),
    }
}

impl ProjectionTarget for SqliteTarget {
    type Connection = SqliteConnection;
    type Transaction = Transaction<'static, Sqlite>;
    type Lease = SqliteLease;
    const ATOMIC: bool = true;

    fn connection(tx: &mut Self::Transaction) -> &mut SqliteConnection {
        tx
    }

    async fn begin(&self) -> Result<Self::Transaction, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::backend)
    }

    async fn commit(
        &self,
        mut tx: Self::Transaction,
        advance: Option<Advance>,
    ) -> Result<(), CommitError> {
        if let Some(advance) = advance {
            let (name, version) = key(advance.projection);
            let to = advance.to;
            let query = match advance.from {
                None => sqlx::query(self.sql("insert_checkpoint"))
                    .bind(name)
                    .bind(version)
                    .bind(to_i64(to.transaction, "position")?)
                    .bind(to_i64(to.event, "position")?)
                    .bind(now_micros()),
                Some(from) => sqlx::query(self.sql("advance_checkpoint"))
                    .bind(name)
                    .bind(version)
                    .bind(to_i64(to.transaction, "position")?)
                    .bind(to_i64(to.event, "position")?)
                    .bind(now_micros())
                    .bind(to_i64(from.transaction, "position")?)
                    .bind(to_i64(from.event, "position")?),
            };
            let moved = query
                .execute(&mut *tx)
                .await
                .map_err(StoreError::backend)?
                .rows_affected();
            if moved != 1 {
                // Dropping the transaction rolls it back.
                return Err(CommitError::Moved(advance.projection));
            }
        }
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(())
    }

    async fn rollback(&self, tx: Self::Transaction) {
        if let Err(error) = tx.rollback().await {
            tracing::debug!(%error, "rolling back a projection transaction failed; the connection discards it");
        }
    }

    async fn checkpoint(
        &self,
        projection: ProjectionId,
    ) -> Result<Option<LogPosition>, StoreError> {
        let (name, version) = key(projection);
        let row = sqlx::query(self.sql("select_checkpoint"))
            .bind(name)
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        row.map(|row| {
            let txn: i64 = row.try_get(0).map_err(StoreError::backend)?;
            let position: i64 = row.try_get(1).map_err(StoreError::backend)?;
            position_of(txn, position)
        })
        .transpose()
    }

    async fn clear_checkpoint(
        &self,
        tx: &mut Self::Transaction,
        projection: ProjectionId,
    ) -> Result<(), StoreError> {
        let (name, version) = key(projection);
        sqlx::query(self.sql("delete_checkpoint"))
            .bind(name)
            .bind(version)
            .execute(&mut **tx)
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    async fn park(
        &self,
        tx: &mut Self::Transaction,
        projection: ProjectionId,
        parked: &ParkedEvent,
    ) -> Result<(), StoreError> {
        let (name, version) = key(projection);
        let e = &parked.event;
        sqlx::query(self.sql("insert_dead_letter"))
            .bind(name)
            .bind(version)
            .bind(e.event_id.as_bytes().as_slice())
            .bind(to_i64(e.position.transaction, "position")?)
            .bind(to_i64(e.position.event, "position")?)
            .bind(&e.aggregate_type)
            .bind(&e.aggregate_id)
            .bind(to_i64(e.sequence, "sequence")?)
            .bind(&e.event_type)
            .bind(i64::from(e.event_version))
            .bind(&e.event)
            .bind(encode_metadata(&e.metadata))
            .bind(e.recorded_at.timestamp_micros())
            .bind(&parked.error)
            .bind(i64::from(parked.attempts))
            .bind(parked.parked_at.timestamp_micros())
            .execute(&mut **tx)
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    async fn parked(&self, projection: ProjectionId) -> Result<Vec<ParkedEvent>, StoreError> {
        let (name, version) = key(projection);
        let rows = sqlx::query(self.sql("select_dead_letters"))
            .bind(name)
            .bind(version)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        rows.iter().map(parked_from_row).collect()
    }

    async fn unpark(
        &self,
        tx: &mut Self::Transaction,
        projection: ProjectionId,
        event_id: Uuid,
    ) -> Result<bool, StoreError> {
        let (name, version) = key(projection);
        let removed = sqlx::query(self.sql("delete_dead_letter"))
            .bind(name)
            .bind(version)
            .bind(event_id.as_bytes().as_slice())
            .execute(&mut **tx)
            .await
            .map_err(StoreError::backend)?
            .rows_affected();
        Ok(removed == 1)
    }

    async fn activate(
        &self,
        tx: &mut Self::Transaction,
        projection: ProjectionId,
    ) -> Result<(), StoreError> {
        let (name, version) = key(projection);
        sqlx::query(self.sql("activate"))
            .bind(name)
            .bind(version)
            .execute(&mut **tx)
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    async fn active_version(&self, name: &str) -> Result<Option<u32>, StoreError> {
        let version: Option<i64> = sqlx::query_scalar(self.sql("select_active"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        version
            .map(|v| {
                u32::try_from(v).map_err(|_| {
                    StoreError::Corrupt(format!("projection `{name}` has active version {v}"))
                })
            })
            .transpose()
    }

    async fn acquire(
        &self,
        projection: ProjectionId,
        owner: Uuid,
        ttl: Duration,
    ) -> Result<Option<SqliteLease>, StoreError> {
        let (name, version) = key(projection);
        let now = now_micros();
        let taken = sqlx::query(self.sql("acquire_lease"))
            .bind(name)
            .bind(version)
            .bind(owner.as_bytes().as_slice())
            .bind(now.saturating_add(micros(ttl)))
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(StoreError::backend)?
            .rows_affected();
        Ok((taken == 1).then_some(SqliteLease {
            projection,
            owner,
            ttl,
        }))
    }

    async fn renew(&self, lease: &mut SqliteLease) -> Result<bool, StoreError> {
        let (name, version) = key(lease.projection);
        let renewed = sqlx::query(self.sql("renew_lease"))
            .bind(name)
            .bind(version)
            .bind(lease.owner.as_bytes().as_slice())
            .bind(now_micros().saturating_add(micros(lease.ttl)))
            .execute(&self.pool)
            .await
            .map_err(StoreError::backend)?
            .rows_affected();
        Ok(renewed == 1)
    }

    async fn release(&self, lease: SqliteLease) {
        let (name, version) = key(lease.projection);
        let released = sqlx::query(self.sql("release_lease"))
            .bind(name)
            .bind(version)
            .bind(lease.owner.as_bytes().as_slice())
            .execute(&self.pool)
            .await;
        if let Err(error) = released {
            tracing::warn!(%error, projection = %lease.projection, "releasing a projection lease failed; it expires by itself");
        }
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

fn parked_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ParkedEvent, StoreError> {
    let get = |i: usize| -> Result<i64, StoreError> { row.try_get(i).map_err(StoreError::backend) };
    let text =
        |i: usize| -> Result<String, StoreError> { row.try_get(i).map_err(StoreError::backend) };
    let id: Vec<u8> = row.try_get(5).map_err(StoreError::backend)?;
    let event_id = Uuid::from_slice(&id).map_err(|_| {
        StoreError::Corrupt(format!("a dead letter's event id has {} bytes", id.len()))
    })?;
    let micros_to_time = |m: i64| {
        DateTime::<Utc>::from_timestamp_micros(m)
            .ok_or_else(|| StoreError::Corrupt(format!("a dead letter's time {m} is out of range")))
    };
    let event = EventRow {
        transaction: Some(get(0)?),
        position: get(1)?,
        aggregate_type: text(2)?,
        aggregate_id: text(3)?,
        sequence: get(4)?,
        event_id,
        event_type: text(6)?,
        event_version: get(7)?,
        payload: text(8)?,
        metadata: text(9)?,
        recorded_at: micros_to_time(get(10)?)?,
    }
    .into_stored()?;
    Ok(ParkedEvent {
        event,
        error: text(11)?,
        attempts: u32::try_from(get(12)?).unwrap_or(u32::MAX),
        parked_at: micros_to_time(get(13)?)?,
    })
}

impl crate::bus::Inbox for SqliteTarget {
    async fn record(
        &self,
        tx: &mut Self::Transaction,
        consumer: &str,
        event_id: Uuid,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(self.sql("record_processed"))
            .bind(consumer)
            .bind(event_id.as_bytes().as_slice())
            .bind(Utc::now().timestamp_micros())
            .execute(&mut **tx)
            .await
            .map_err(StoreError::backend)?
            .rows_affected();
        Ok(inserted == 1)
    }

    async fn prune(&self, consumer: &str, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let deleted = sqlx::query(self.sql("prune_processed"))
            .bind(consumer)
            .bind(before.timestamp_micros())
            .execute(&self.pool)
            .await
            .map_err(StoreError::backend)?
            .rows_affected();
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_is_in_the_file() {
        let tables = Tables::with_prefix("t_").unwrap();
        let statements = named_queries(include_str!("projections.sql"), NAMES, |sql| {
            tables.render(sql)
        });
        for (name, sql) in NAMES.iter().zip(&statements) {
            assert!(!sql.is_empty(), "no statement named {name}");
            assert!(
                !sql.contains('{'),
                "{name} has an unrendered placeholder: {sql}"
            );
        }
    }
}
