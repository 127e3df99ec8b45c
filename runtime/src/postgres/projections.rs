//! The PostgreSQL projection target: read models, checkpoints and dead letters in the store's
//! database, each batch in one transaction of the store's pool; leases are session advisory
//! locks held by a dedicated connection, so a runner that dies (or loses its connection)
//! releases its projection at once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgRow};
use sqlx::{Connection, PgConnection, Postgres, Row, Transaction};
use uuid::Uuid;

use super::Names;
use crate::error::StoreError;
use crate::event::LogPosition;
use crate::projection::{Advance, CommitError, ParkedEvent, ProjectionId, ProjectionTarget};
use crate::sql::{EventRow, encode_metadata, named_queries, to_i64};

const NAMES: [&str; 13] = [
    "select_checkpoint",
    "insert_checkpoint",
    "advance_checkpoint",
    "delete_checkpoint",
    "insert_dead_letter",
    "select_dead_letters",
    "delete_dead_letter",
    "activate",
    "select_active",
    "try_lock",
    "unlock",
    "record_processed",
    "prune_processed",
];

#[derive(Debug)]
struct Statements([String; 13]);

impl Statements {
    fn get(&self, name: &str) -> &str {
        let i = NAMES.iter().position(|n| *n == name).unwrap_or(0);
        &self.0[i]
    }
}

/// A [`ProjectionTarget`] in a PostgreSQL store's database: handlers get the batch's
/// `&mut PgConnection` and write their tables in the transaction that moves the checkpoint,
/// so each event takes effect exactly once. Cloning shares the pool.
///
/// Get one with [`PostgresStore::projection_target`](super::PostgresStore::projection_target).
#[derive(Debug, Clone)]
pub struct PostgresTarget {
    pool: PgPool,
    options: PgConnectOptions,
    statements: Arc<Statements>,
    /// Prefixes lock keys, so that stores in other schemas or with other prefixes on the
    /// same server do not share leases.
    lock_scope: String,
}

/// The lease of a [`PostgresTarget`]: an advisory lock held by its own connection.
#[derive(Debug)]
pub struct PostgresLease {
    conn: PgConnection,
    key: String,
}

impl PostgresTarget {
    pub(super) fn new(pool: PgPool, options: PgConnectOptions, names: &Names) -> Self {
        let statements = named_queries(include_str!("projections.sql"), NAMES, |sql| {
            names.render(sql)
        });
        PostgresTarget {
            pool,
            options,
            statements: Arc::new(Statements(statements)),
            lock_scope: names.render("{checkpoints}"),
        }
    }

    /// The pool, to query read models kept in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn sql(&self, name: &str) -> &str {
        self.statements.get(name)
    }
}

fn key(projection: ProjectionId) -> (&'static str, i32) {
    (
        projection.name,
        i32::try_from(projection.version).unwrap_or(i32::MAX),
    )
}

impl ProjectionTarget for PostgresTarget {
    type Connection = PgConnection;
    type Transaction = Transaction<'static, Postgres>;
    type Lease = PostgresLease;
    const ATOMIC: bool = true;

    fn connection(tx: &mut Self::Transaction) -> &mut PgConnection {
        tx
    }

    async fn begin(&self) -> Result<Self::Transaction, StoreError> {
        self.pool.begin().await.map_err(StoreError::backend)
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
                    .bind(to_i64(to.event, "position")?),
                Some(from) => sqlx::query(self.sql("advance_checkpoint"))
                    .bind(name)
                    .bind(version)
                    .bind(to_i64(to.transaction, "position")?)
                    .bind(to_i64(to.event, "position")?)
                    .bind(to_i64(from.transaction, "position")?)
                    .bind(to_i64(from.event, "position")?),
            };
            let moved = query
                .execute(&mut *tx)
                .await
                .map_err(StoreError::backend)?
                .rows_affected();
            if moved != 1 {
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
            match (u64::try_from(txn), u64::try_from(position)) {
                (Ok(transaction), Ok(event)) => Ok(LogPosition { transaction, event }),
                _ => Err(StoreError::Corrupt(format!(
                    "the checkpoint of projection `{projection}` is negative ({txn}, {position})"
                ))),
            }
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
            .bind(e.event_id)
            .bind(to_i64(e.position.transaction, "position")?)
            .bind(to_i64(e.position.event, "position")?)
            .bind(&e.aggregate_type)
            .bind(&e.aggregate_id)
            .bind(to_i64(e.sequence, "sequence")?)
            .bind(&e.event_type)
            .bind(i32::try_from(e.event_version).unwrap_or(i32::MAX))
            .bind(&e.event)
            .bind(encode_metadata(&e.metadata))
            .bind(e.recorded_at)
            .bind(&parked.error)
            .bind(i32::try_from(parked.attempts).unwrap_or(i32::MAX))
            .bind(parked.parked_at)
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
            .bind(event_id)
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
        let version: Option<i32> = sqlx::query_scalar(self.sql("select_active"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(version.map(i32::unsigned_abs))
    }

    async fn acquire(
        &self,
        projection: ProjectionId,
        _owner: Uuid,
        _ttl: Duration,
    ) -> Result<Option<PostgresLease>, StoreError> {
        let key = format!(
            "{}:{}:{}",
            self.lock_scope, projection.name, projection.version
        );
        let mut conn = PgConnection::connect_with(&self.options)
            .await
            .map_err(StoreError::backend)?;
        let locked: bool = sqlx::query_scalar(self.sql("try_lock"))
            .bind(&key)
            .fetch_one(&mut conn)
            .await
            .map_err(StoreError::backend)?;
        if locked {
            Ok(Some(PostgresLease { conn, key }))
        } else {
            if let Err(error) = conn.close().await {
                tracing::debug!(%error, "closing a lease connection failed");
            }
            Ok(None)
        }
    }

    async fn renew(&self, lease: &mut PostgresLease) -> Result<bool, StoreError> {
        // The lock lives as long as its session: a working connection still holds it.
        Ok(lease.conn.ping().await.is_ok())
    }

    async fn release(&self, mut lease: PostgresLease) {
        let unlocked = sqlx::query(self.sql("unlock"))
            .bind(&lease.key)
            .execute(&mut lease.conn)
            .await;
        if let Err(error) = unlocked {
            tracing::debug!(%error, "unlocking a projection lease failed; closing its session ends it");
        }
        if let Err(error) = lease.conn.close().await {
            tracing::debug!(%error, "closing a lease connection failed");
        }
    }
}

fn parked_from_row(row: &PgRow) -> Result<ParkedEvent, StoreError> {
    fn get<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
        row: &'r PgRow,
        i: usize,
    ) -> Result<T, StoreError> {
        row.try_get(i).map_err(StoreError::backend)
    }
    let event = EventRow {
        transaction: Some(get(row, 0)?),
        position: get(row, 1)?,
        aggregate_type: get(row, 2)?,
        aggregate_id: get(row, 3)?,
        sequence: get(row, 4)?,
        event_id: get(row, 5)?,
        event_type: get(row, 6)?,
        event_version: i64::from(get::<i32>(row, 7)?),
        payload: get(row, 8)?,
        metadata: get(row, 9)?,
        recorded_at: get::<DateTime<Utc>>(row, 10)?,
    }
    .into_stored()?;
    Ok(ParkedEvent {
        event,
        error: get(row, 11)?,
        attempts: get::<i32>(row, 12)?.unsigned_abs(),
        parked_at: get::<DateTime<Utc>>(row, 13)?,
    })
}

impl crate::bus::Inbox for PostgresTarget {
    async fn record(
        &self,
        tx: &mut Self::Transaction,
        consumer: &str,
        event_id: Uuid,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(self.sql("record_processed"))
            .bind(consumer)
            .bind(event_id)
            .execute(&mut **tx)
            .await
            .map_err(StoreError::backend)?
            .rows_affected();
        Ok(inserted == 1)
    }

    async fn prune(&self, consumer: &str, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let deleted = sqlx::query(self.sql("prune_processed"))
            .bind(consumer)
            .bind(before)
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
        let names = Names::new("s", "p_");
        let statements = named_queries(include_str!("projections.sql"), NAMES, |sql| {
            names.render(sql)
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
