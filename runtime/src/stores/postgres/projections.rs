//! The PostgreSQL projection target: read models, checkpoints and dead letters in the store's
//! database, each batch in one transaction of the store's pool (the shared SQL target);
//! leases are session advisory locks held by a dedicated connection, so a runner that dies
//! (or loses its connection) releases its projection at once.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::config::Names;
use super::dialect::PgDialect;
use crate::contract::error::StoreError;
use crate::projection::{FollowerId, Leases};
use crate::stores::sql::target::{SqlTarget, sql_target_traits};
use crate::stores::sql::{Statements, named_statements};

named_statements! {
    /// The lease statements of `projections.sql`: session advisory locks.
    enum LeaseSql {
        TryLock = "try_lock",
        Unlock = "unlock",
    }
}

/// A [`ProjectionTarget`](crate::ProjectionTarget) in a PostgreSQL store's database: handlers
/// get the batch's `&mut PgConnection` and write their tables in the transaction that moves
/// the checkpoint, so each event takes effect exactly once. Cloning shares the pool.
///
/// Get one with [`PostgresStore::projection_target`](super::PostgresStore::projection_target).
#[derive(Debug, Clone)]
pub struct PostgresTarget {
    sql: SqlTarget<PgDialect>,
    leases: Arc<Statements<LeaseSql>>,
    options: PgConnectOptions,
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
        let file = include_str!("projections.sql");
        let render = |sql: &str| names.render(sql);
        PostgresTarget {
            sql: SqlTarget::new(PgDialect { pool }, file, render),
            leases: Arc::new(Statements::new(file, render)),
            options,
            lock_scope: names.render("{checkpoints}"),
        }
    }

    /// The pool, to query read models kept in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.sql.db.pool
    }
}

sql_target_traits!(
    PostgresTarget,
    connection = PgConnection,
    transaction = sqlx::Transaction<'static, sqlx::Postgres>
);

impl Leases for PostgresTarget {
    type Lease = PostgresLease;

    async fn acquire(
        &self,
        follower: FollowerId,
        _owner: Uuid,
        _ttl: Duration,
    ) -> Result<Option<PostgresLease>, StoreError> {
        let (name, version) = follower.key();
        let key = format!("{}:{name}:{version}", self.lock_scope);
        let mut conn = PgConnection::connect_with(&self.options)
            .await
            .map_err(StoreError::backend)?;
        let locked: bool = sqlx::query_scalar(self.leases.query(LeaseSql::TryLock))
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
        let unlocked = sqlx::query(self.leases.query(LeaseSql::Unlock))
            .bind(&lease.key)
            .execute(&mut lease.conn)
            .await;
        if let Err(error) = unlocked {
            tracing::debug!(%error, "unlocking a lease failed; closing its session ends it");
        }
        if let Err(error) = lease.conn.close().await {
            tracing::debug!(%error, "closing a lease connection failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stores::sql::target::TargetSql;

    #[test]
    fn every_statement_is_in_the_file() {
        let names = Names::new("s", "p_");
        let file = include_str!("projections.sql");
        let render = |sql: &str| names.render(sql);
        let mut problems = Statements::<TargetSql>::check(file, render);
        problems.extend(Statements::<LeaseSql>::check(file, render));
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn every_store_statement_is_in_the_file() {
        let names = Names::new("s", "p_");
        let render = |sql: &str| names.render(sql);
        let file = include_str!("store.sql");
        let mut problems = Statements::<crate::stores::sql::store::StoreSql>::check(file, render);
        problems.extend(Statements::<super::super::AppendSql>::check(file, render));
        assert!(problems.is_empty(), "{problems:?}");
    }
}
