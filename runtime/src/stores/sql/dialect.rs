//! The seam between the SQL stores' shared code and a database driver: statements are run
//! with the store's own parameter and cell types, so that the shared code never names a
//! driver's types, and a backend may change its driver without touching it.

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::contract::error::StoreError;

/// A statement parameter. Each dialect stores it its own way: an id as a UUID column or 16
/// bytes, a time as a timestamp column or microseconds since the epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    Int(i64),
    Text(&'a str),
    Id(Uuid),
    Time(DateTime<Utc>),
}

/// A column of a result row, as the driver decoded it.
#[derive(Debug)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
    /// Only SQLite stores UUIDs as blobs.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Bytes(Vec<u8>),
    /// Only PostgreSQL has native UUID and timestamp columns.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Id(Uuid),
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Time(DateTime<Utc>),
}

impl Cell {
    fn kind(&self) -> &'static str {
        match self {
            Cell::Null => "NULL",
            Cell::Int(_) => "an integer",
            Cell::Text(_) => "text",
            Cell::Bytes(_) => "bytes",
            Cell::Id(_) => "a UUID",
            Cell::Time(_) => "a timestamp",
        }
    }
}

/// A result row; each getter checks the cell's type and names the column when it is wrong.
#[derive(Debug)]
pub(crate) struct Row {
    cells: Vec<Cell>,
    /// What the row is, for errors (e.g. "a dead letter").
    what: &'static str,
}

impl Row {
    pub(crate) fn new(cells: Vec<Cell>, what: &'static str) -> Self {
        Row { cells, what }
    }

    fn cell(&self, i: usize) -> &Cell {
        self.cells.get(i).unwrap_or(&Cell::Null)
    }

    fn wrong(&self, i: usize, expected: &str) -> StoreError {
        StoreError::Corrupt(format!(
            "column {i} of {} holds {}, expected {expected}",
            self.what,
            self.cell(i).kind()
        ))
    }

    pub(crate) fn int(&self, i: usize) -> Result<i64, StoreError> {
        match self.cell(i) {
            Cell::Int(n) => Ok(*n),
            _ => Err(self.wrong(i, "an integer")),
        }
    }

    /// An integer that must fit `T` (a version, a count): out of range is
    /// [`StoreError::Corrupt`] naming `field`.
    pub(crate) fn int_as<T: TryFrom<i64>>(&self, i: usize, field: &str) -> Result<T, StoreError> {
        let n = self.int(i)?;
        T::try_from(n).map_err(|_| {
            StoreError::Corrupt(format!("{} has {field} {n}, out of range", self.what))
        })
    }

    pub(crate) fn text(&mut self, i: usize) -> Result<String, StoreError> {
        match self.cells.get_mut(i) {
            Some(Cell::Text(text)) => Ok(std::mem::take(text)),
            _ => Err(self.wrong(i, "text")),
        }
    }

    pub(crate) fn id(&self, i: usize) -> Result<Uuid, StoreError> {
        match self.cell(i) {
            Cell::Id(id) => Ok(*id),
            Cell::Bytes(bytes) => Uuid::from_slice(bytes).map_err(|_| {
                StoreError::Corrupt(format!(
                    "column {i} of {} holds an id of {} bytes, expected 16",
                    self.what,
                    bytes.len()
                ))
            }),
            _ => Err(self.wrong(i, "an id")),
        }
    }

    pub(crate) fn time(&self, i: usize) -> Result<DateTime<Utc>, StoreError> {
        match self.cell(i) {
            Cell::Time(time) => Ok(*time),
            Cell::Int(micros) => DateTime::from_timestamp_micros(*micros).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "column {i} of {} holds the time {micros}, out of range",
                    self.what
                ))
            }),
            _ => Err(self.wrong(i, "a time")),
        }
    }
}

/// Where a statement runs: on a connection of the dialect's pool, or in an open transaction.
#[derive(Debug)]
pub(crate) enum On<'a, Tx> {
    Pool,
    Tx(&'a mut Tx),
}

/// One database's way of running the shared statements.
pub(crate) trait Dialect: Send + Sync + 'static {
    /// An open transaction.
    type Tx: Send;

    /// Opens a write transaction.
    fn begin(&self) -> impl Future<Output = Result<Self::Tx, StoreError>> + Send;

    /// Commits.
    fn commit(tx: Self::Tx) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Rolls back.
    fn rollback(tx: Self::Tx) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Runs one statement; returns the rows it changed.
    fn execute<'a>(
        &'a self,
        on: On<'a, Self::Tx>,
        sql: &'a str,
        params: &'a [Param<'a>],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send + 'a;

    /// Runs one query; returns its rows, described as `what` in errors.
    fn fetch<'a>(
        &'a self,
        on: On<'a, Self::Tx>,
        sql: &'a str,
        params: &'a [Param<'a>],
        what: &'static str,
    ) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send + 'a;

    /// Runs a query of at most one row; returns it, described as `what` in errors. (Cheaper
    /// than [`fetch`](Self::fetch) where the driver can stop at the first row.)
    fn fetch_optional<'a>(
        &'a self,
        on: On<'a, Self::Tx>,
        sql: &'a str,
        params: &'a [Param<'a>],
        what: &'static str,
    ) -> impl Future<Output = Result<Option<Row>, StoreError>> + Send + 'a;

    /// Runs a script of several statements without parameters (a migration), in `tx`.
    fn script<'a>(
        tx: &'a mut Self::Tx,
        sql: &'a str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'a;
}

/// The [`Dialect`] of an sqlx driver, for a struct with a `pool` field: `$bind` binds the
/// parameters the driver's way, `$cells` decodes a row, and `$begin` opens a write
/// transaction on `$pool`.
macro_rules! sqlx_dialect {
    ($dialect:ty, $db:ty, bind = $bind:path, cells = $cells:path, |$pool:ident| $begin:expr) => {
        impl $crate::stores::sql::dialect::Dialect for $dialect {
            type Tx = sqlx::Transaction<'static, $db>;

            async fn begin(&self) -> Result<Self::Tx, StoreError> {
                let $pool = &self.pool;
                $begin.await.map_err(StoreError::backend)
            }

            async fn commit(tx: Self::Tx) -> Result<(), StoreError> {
                tx.commit().await.map_err(StoreError::backend)
            }

            async fn rollback(tx: Self::Tx) -> Result<(), StoreError> {
                tx.rollback().await.map_err(StoreError::backend)
            }

            async fn execute<'a>(
                &'a self,
                on: $crate::stores::sql::dialect::On<'a, Self::Tx>,
                sql: &'a str,
                params: &'a [$crate::stores::sql::dialect::Param<'a>],
            ) -> Result<u64, StoreError> {
                use $crate::stores::sql::dialect::On;
                let query = $bind(sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())), params);
                let done = match on {
                    On::Pool => query.execute(&self.pool).await,
                    On::Tx(tx) => query.execute(&mut **tx).await,
                };
                Ok(done.map_err(StoreError::backend)?.rows_affected())
            }

            async fn fetch<'a>(
                &'a self,
                on: $crate::stores::sql::dialect::On<'a, Self::Tx>,
                sql: &'a str,
                params: &'a [$crate::stores::sql::dialect::Param<'a>],
                what: &'static str,
            ) -> Result<Vec<$crate::stores::sql::dialect::Row>, StoreError> {
                use $crate::stores::sql::dialect::On;
                let query = $bind(sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())), params);
                let rows = match on {
                    On::Pool => query.fetch_all(&self.pool).await,
                    On::Tx(tx) => query.fetch_all(&mut **tx).await,
                };
                let rows = rows.map_err(StoreError::backend)?;
                rows.iter().map(|row| $cells(row, what)).collect()
            }

            async fn fetch_optional<'a>(
                &'a self,
                on: $crate::stores::sql::dialect::On<'a, Self::Tx>,
                sql: &'a str,
                params: &'a [$crate::stores::sql::dialect::Param<'a>],
                what: &'static str,
            ) -> Result<Option<$crate::stores::sql::dialect::Row>, StoreError> {
                use $crate::stores::sql::dialect::On;
                let query = $bind(sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())), params);
                let row = match on {
                    On::Pool => query.fetch_optional(&self.pool).await,
                    On::Tx(tx) => query.fetch_optional(&mut **tx).await,
                };
                let row = row.map_err(StoreError::backend)?;
                row.map(|row| $cells(&row, what)).transpose()
            }

            async fn script<'a>(tx: &'a mut Self::Tx, sql: &'a str) -> Result<(), StoreError> {
                // A plain string runs as one unprepared script of several statements.
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut **tx)
                    .await
                    .map_err(StoreError::backend)?;
                Ok(())
            }
        }
    };
}
pub(crate) use sqlx_dialect;
