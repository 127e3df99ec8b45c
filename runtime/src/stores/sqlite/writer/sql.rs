//! The insert statements the writer builds for a number of rows, and how an event's columns
//! are bound to them.

use crate::contract::store::NewEvent;
use crate::stores::sql::encode_metadata;

pub(super) type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Binds an event's own six columns, in the order of the insert statements' `VALUES`.
pub(super) fn bind_event<'q>(query: Query<'q>, event: &'q NewEvent) -> Query<'q> {
    query
        .bind(event.event_id.as_bytes().as_slice())
        .bind(event.event_type)
        .bind(i64::from(event.event_version))
        .bind(&event.payload)
        .bind(encode_metadata(&event.metadata))
        .bind(event.recorded_at.timestamp_micros())
}

/// `INSERT ... SELECT ... FROM (VALUES ...)` of `rows` rows of 10 parameters each: aggregate
/// type, id, expected version, offset in the append (from 1), then the event's columns.
pub(super) fn group_insert_sql(table: &str, rows: usize) -> String {
    let mut values = String::with_capacity(rows * 64);
    for row in 0..rows {
        let p = row * 10;
        if row > 0 {
            values.push_str(", ");
        }
        values.push('(');
        for column in 1..=10 {
            if column > 1 {
                values.push_str(", ");
            }
            values.push_str(&format!("?{}", p + column));
        }
        values.push(')');
    }
    format!(
        "INSERT INTO {table} (aggregate_type, aggregate_id, sequence, event_id, event_type, \
         event_version, payload, metadata, recorded_at) \
         SELECT v.column1, v.column2, v.column3 + v.column4, v.column5, v.column6, v.column7, \
                v.column8, v.column9, v.column10 \
         FROM (VALUES {values}) AS v \
         WHERE (SELECT COALESCE(MAX(e.sequence), 0) FROM {table} AS e \
                WHERE e.aggregate_type = v.column1 AND e.aggregate_id = v.column2) = v.column3 \
         RETURNING aggregate_type, aggregate_id, sequence, position"
    )
}

/// A conditional multi-row insert: the rows go in only if the stream's last sequence is `?3`.
/// Parameters: `?1` aggregate type, `?2` id, `?3` expected version, then 6 per event.
pub(super) fn insert_sql(table: &str, rows: usize) -> String {
    let mut values = String::new();
    for row in 0..rows {
        let p = 4 + row * 6;
        if row > 0 {
            values.push_str(", ");
        }
        values.push_str(&format!(
            "({}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{})",
            row + 1,
            p,
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5
        ));
    }
    format!(
        "INSERT INTO {table} (aggregate_type, aggregate_id, sequence, event_id, event_type, \
         event_version, payload, metadata, recorded_at) \
         SELECT ?1, ?2, ?3 + column1, column2, column3, column4, column5, column6, column7 \
         FROM (VALUES {values}) \
         WHERE (SELECT COALESCE(MAX(sequence), 0) FROM {table} \
                WHERE aggregate_type = ?1 AND aggregate_id = ?2) = ?3 \
         RETURNING sequence, position"
    )
}
