//! The SQLite projection target: read models, checkpoints, dead letters and leases in the
//! store's own file, each batch in one `BEGIN IMMEDIATE` transaction of a separate write
//! connection (SQLite's write lock is shared with the store's writer and waited for with the
//! busy timeout). Everything but the leases is the shared SQL target.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use uuid::Uuid;

use super::dialect::SqliteDialect;
use crate::contract::error::StoreError;
use crate::projection::{FollowerId, Leases};
use crate::stores::sql::dialect::{Dialect, On, Param};
use crate::stores::sql::target::{SqlTarget, sql_target_traits};
use crate::stores::sql::{Statements, Tables, named_statements};

named_statements! {
    /// The lease statements of `projections.sql`: rows that expire unless renewed.
    enum LeaseSql {
        Acquire = "acquire_lease",
        Renew = "renew_lease",
        Release = "release_lease",
    }
}

/// A [`ProjectionTarget`](crate::ProjectionTarget) in an SQLite store's file: handlers get the
/// batch's `&mut SqliteConnection` and write their tables in the transaction that moves the
/// checkpoint, so each event takes effect exactly once. Cloning shares the connections.
///
/// Get one with [`SqliteStore::projection_target`](super::SqliteStore::projection_target).
/// Leases are rows that expire unless renewed, so a standby (in this or another process on
/// the same file) takes over a runner that died once its lease expired.
#[derive(Debug, Clone)]
pub struct SqliteTarget {
    sql: SqlTarget<SqliteDialect>,
    leases: Arc<Statements<LeaseSql>>,
}

/// The lease of an [`SqliteTarget`].
#[derive(Debug)]
pub struct SqliteLease {
    follower: FollowerId,
    owner: Uuid,
    ttl: Duration,
}

impl SqliteTarget {
    pub(super) fn new(options: SqliteConnectOptions, tables: &Tables) -> Self {
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_lazy_with(options);
        let file = include_str!("projections.sql");
        let render = |sql: &str| tables.render(sql);
        SqliteTarget {
            sql: SqlTarget::new(SqliteDialect { pool }, file, render),
            leases: Arc::new(Statements::new(file, render)),
        }
    }

    /// The pool of write connections, to query read models kept in the same file.
    pub fn pool(&self) -> &SqlitePool {
        &self.sql.db.pool
    }

    async fn lease_statement(
        &self,
        statement: LeaseSql,
        params: &[Param<'_>],
    ) -> Result<bool, StoreError> {
        let sql = self.leases.get(statement);
        Ok(self.sql.db.execute(On::Pool, sql, params).await? == 1)
    }
}

sql_target_traits!(
    SqliteTarget,
    connection = sqlx::SqliteConnection,
    transaction = sqlx::Transaction<'static, sqlx::Sqlite>
);

fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

impl Leases for SqliteTarget {
    type Lease = SqliteLease;

    async fn acquire(
        &self,
        follower: FollowerId,
        owner: Uuid,
        ttl: Duration,
    ) -> Result<Option<SqliteLease>, StoreError> {
        let (name, version) = follower.key();
        let now = now_micros();
        let params = [
            Param::Text(name),
            Param::Int(i64::from(version)),
            Param::Id(owner),
            Param::Int(now.saturating_add(micros(ttl))),
            Param::Int(now),
        ];
        let taken = self.lease_statement(LeaseSql::Acquire, &params).await?;
        Ok(taken.then_some(SqliteLease {
            follower,
            owner,
            ttl,
        }))
    }

    async fn renew(&self, lease: &mut SqliteLease) -> Result<bool, StoreError> {
        let (name, version) = lease.follower.key();
        let params = [
            Param::Text(name),
            Param::Int(i64::from(version)),
            Param::Id(lease.owner),
            Param::Int(now_micros().saturating_add(micros(lease.ttl))),
        ];
        self.lease_statement(LeaseSql::Renew, &params).await
    }

    async fn release(&self, lease: SqliteLease) {
        let (name, version) = lease.follower.key();
        let params = [
            Param::Text(name),
            Param::Int(i64::from(version)),
            Param::Id(lease.owner),
        ];
        if let Err(error) = self.lease_statement(LeaseSql::Release, &params).await {
            tracing::warn!(%error, follower = %lease.follower, "releasing a lease failed; it expires by itself");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stores::sql::target::TargetSql;

    #[test]
    fn every_statement_is_in_the_file() {
        let tables = Tables::with_prefix("t_").unwrap();
        let file = include_str!("projections.sql");
        let render = |sql: &str| tables.render(sql);
        let mut problems = Statements::<TargetSql>::check(file, render);
        problems.extend(Statements::<LeaseSql>::check(file, render));
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn every_store_statement_is_in_the_file() {
        let tables = Tables::with_prefix("t_").unwrap();
        let render = |sql: &str| tables.render(sql);
        let file = include_str!("store.sql");
        let problems = Statements::<crate::stores::sql::store::StoreSql>::check(file, render);
        assert!(problems.is_empty(), "{problems:?}");
    }
}
