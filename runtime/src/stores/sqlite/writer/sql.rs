//! The insert statements the writer builds for a number of rows, each built once per store.

use std::borrow::Cow;
use std::sync::OnceLock;

use super::{ROWS_PER_GROUP, ROWS_PER_INSERT};

/// The insert statements of one events table, by row count, built on first use.
#[derive(Debug)]
pub(in crate::stores::sqlite) struct Inserts {
    table: String,
    group: Vec<OnceLock<String>>,
    single: Vec<OnceLock<String>>,
}

impl Inserts {
    pub(in crate::stores::sqlite) fn new(table: &str) -> Self {
        Inserts {
            table: table.to_owned(),
            group: (0..=ROWS_PER_GROUP).map(|_| OnceLock::new()).collect(),
            single: (0..=ROWS_PER_INSERT).map(|_| OnceLock::new()).collect(),
        }
    }

    /// [`group_insert_sql`] of `rows` rows; kept up to [`ROWS_PER_GROUP`] rows.
    pub(super) fn group(&self, rows: usize) -> Cow<'_, str> {
        match self.group.get(rows) {
            Some(sql) => Cow::Borrowed(sql.get_or_init(|| group_insert_sql(&self.table, rows))),
            None => Cow::Owned(group_insert_sql(&self.table, rows)),
        }
    }

    /// [`insert_sql`] of `rows` rows; kept up to [`ROWS_PER_INSERT`] rows.
    pub(super) fn single(&self, rows: usize) -> Cow<'_, str> {
        match self.single.get(rows) {
            Some(sql) => Cow::Borrowed(sql.get_or_init(|| insert_sql(&self.table, rows))),
            None => Cow::Owned(insert_sql(&self.table, rows)),
        }
    }
}

/// `INSERT ... SELECT ... FROM (VALUES ...)` of `rows` rows of 10 parameters each: aggregate
/// type, id, expected version, offset in the append (from 1), then the event's columns.
fn group_insert_sql(table: &str, rows: usize) -> String {
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
fn insert_sql(table: &str, rows: usize) -> String {
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
