//! PostgreSQL's side of the SQL seam, through sqlx: ids as `uuid`, times as `timestamptz`,
//! integers read from `integer` and `bigint` columns alike.

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgPool, PgRow};
use sqlx::{Column, Postgres, Row as _, TypeInfo, ValueRef};
use uuid::Uuid;

use crate::contract::error::StoreError;
use crate::stores::sql::dialect::{Cell, Param, Row, sqlx_dialect};

/// Runs the shared statements on the store's pool.
#[derive(Debug, Clone)]
pub(crate) struct PgDialect {
    pub(crate) pool: PgPool,
}

type Query = sqlx::query::Query<'static, Postgres, PgArguments>;

fn bind(mut query: Query, params: &[Param<'_>]) -> Query {
    for param in params {
        query = match param {
            Param::Int(n) => query.bind(*n),
            Param::Text(text) => query.bind(text.to_string()),
            Param::Id(id) => query.bind(*id),
            Param::Time(time) => query.bind(*time),
        };
    }
    query
}

fn cells(row: &PgRow, what: &'static str) -> Result<Row, StoreError> {
    let mut cells = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i).map_err(StoreError::backend)?;
        let cell = if raw.is_null() {
            Cell::Null
        } else {
            let get = StoreError::backend;
            match column.type_info().name() {
                "INT8" => Cell::Int(row.try_get(i).map_err(get)?),
                "INT4" => Cell::Int(i64::from(row.try_get::<i32, _>(i).map_err(get)?)),
                "INT2" => Cell::Int(i64::from(row.try_get::<i16, _>(i).map_err(get)?)),
                "TEXT" | "VARCHAR" => Cell::Text(row.try_get(i).map_err(get)?),
                "UUID" => Cell::Id(row.try_get::<Uuid, _>(i).map_err(get)?),
                "TIMESTAMPTZ" => Cell::Time(row.try_get::<DateTime<Utc>, _>(i).map_err(get)?),
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "column {i} of {what} holds a value of PostgreSQL type {other}"
                    )));
                }
            }
        };
        cells.push(cell);
    }
    Ok(Row::new(cells, what))
}

sqlx_dialect!(PgDialect, Postgres, bind = bind, cells = cells, |pool| pool
    .begin());
