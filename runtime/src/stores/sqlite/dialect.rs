//! SQLite's side of the SQL seam, through sqlx: ids as 16-byte blobs, times as microseconds
//! since the epoch, write transactions as `BEGIN IMMEDIATE` (SQLite's write lock is taken at
//! once, and waited for with the busy timeout, instead of failing at the first write).

use sqlx::sqlite::{SqliteArguments, SqlitePool, SqliteRow};
use sqlx::{Row as _, Sqlite, TypeInfo, ValueRef};

use crate::contract::error::StoreError;
use crate::stores::sql::dialect::{Cell, Param, Row, sqlx_dialect};

/// Runs the shared statements on a pool of SQLite connections.
#[derive(Debug, Clone)]
pub(crate) struct SqliteDialect {
    pub(crate) pool: SqlitePool,
}

type Query = sqlx::query::Query<'static, Sqlite, SqliteArguments>;

/// Binds the shared parameters the SQLite way; the writer binds its own statements with it.
pub(crate) fn bind(mut query: Query, params: &[Param<'_>]) -> Query {
    for param in params {
        query = match param {
            Param::Int(n) => query.bind(*n),
            Param::Text(text) => query.bind(text.to_string()),
            Param::Id(id) => query.bind(id.as_bytes().to_vec()),
            Param::Time(time) => query.bind(time.timestamp_micros()),
        };
    }
    query
}

pub(super) fn cells(row: &SqliteRow, what: &'static str) -> Result<Row, StoreError> {
    let mut cells = Vec::with_capacity(row.len());
    for i in 0..row.len() {
        let raw = row.try_get_raw(i).map_err(StoreError::backend)?;
        let cell = if raw.is_null() {
            Cell::Null
        } else {
            match raw.type_info().name() {
                "INTEGER" => Cell::Int(row.try_get(i).map_err(StoreError::backend)?),
                "BLOB" => Cell::Bytes(row.try_get(i).map_err(StoreError::backend)?),
                "TEXT" => Cell::Text(row.try_get(i).map_err(StoreError::backend)?),
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "column {i} of {what} holds a value of SQLite type {other}"
                    )));
                }
            }
        };
        cells.push(cell);
    }
    Ok(Row::new(cells, what))
}

sqlx_dialect!(SqliteDialect, Sqlite, bind = bind, cells = cells, |pool| {
    pool.begin_with("BEGIN IMMEDIATE")
});
