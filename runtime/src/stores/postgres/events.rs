//! The event store operations of PostgreSQL: appends are one conditional insert each, whose
//! unique `(aggregate_type, aggregate_id, sequence)` constraint resolves racing writers in the
//! database (inline projections run in the append's transaction); reads follow the log in
//! `(transaction id, position)` order below the oldest running transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::{AppendSql, PostgresStore};
use crate::contract::error::{AppendError, Conflict, StoreError};
use crate::contract::event::{LogPosition, StoredEvent};
use crate::contract::store::{EventStore, LogWatch, NewEvent, Snapshot};
use crate::stores::sql::store::{StoreSql, count_events, load_snapshot, save_snapshot};
use crate::stores::sql::{EventRow, encode_metadata, to_i64};

impl PostgresStore {
    async fn conflict(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        expected: u64,
    ) -> AppendError {
        let actual = sqlx::query(self.inner.statements.get(StoreSql::SelectVersion))
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_one(&self.inner.pool)
            .await
            .and_then(|row| row.try_get::<i64, _>(0));
        match actual {
            Ok(actual) => Conflict {
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id: aggregate_id.to_owned(),
                expected,
                actual: actual.unsigned_abs(),
            }
            .into(),
            Err(error) => StoreError::backend(error).into(),
        }
    }

    fn decode_events(
        rows: Result<Vec<PgRow>, sqlx::Error>,
        stream: Option<(&str, &str)>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        rows.map_err(StoreError::backend)?
            .iter()
            .map(|row| decode_row(row, stream)?.into_stored())
            .collect()
    }
}

fn decode_row(row: &PgRow, stream: Option<(&str, &str)>) -> Result<EventRow, StoreError> {
    fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
        row: &'r PgRow,
        i: usize,
    ) -> Result<T, StoreError> {
        row.try_get(i).map_err(StoreError::backend)
    }
    let (aggregate_type, aggregate_id) = match stream {
        Some((t, i)) => (t.to_owned(), i.to_owned()),
        None => (get(row, 9)?, get(row, 10)?),
    };
    Ok(EventRow {
        position: get(row, 0)?,
        transaction: Some(get(row, 1)?),
        sequence: get(row, 2)?,
        event_id: get::<Uuid>(row, 3)?,
        event_type: get(row, 4)?,
        event_version: i64::from(get::<i32>(row, 5)?),
        payload: get(row, 6)?,
        metadata: get(row, 7)?,
        recorded_at: get::<DateTime<Utc>>(row, 8)?,
        aggregate_type,
        aggregate_id,
    })
}

impl EventStore for PostgresStore {
    async fn append(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> Result<Vec<LogPosition>, AppendError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let version = to_i64(expected_version, "expected version")?;
        let mut versions = Vec::with_capacity(events.len());
        for event in events {
            versions.push(i32::try_from(event.event_version).map_err(|_| {
                StoreError::Config(format!(
                    "event version {} does not fit PostgreSQL's integer",
                    event.event_version
                ))
            })?);
        }
        let query = sqlx::query(self.inner.statements.append.get(AppendSql::Append))
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(version)
            .bind(events.iter().map(|e| e.event_id).collect::<Vec<Uuid>>())
            .bind(events.iter().map(|e| e.event_type).collect::<Vec<&str>>())
            .bind(versions)
            .bind(
                events
                    .iter()
                    .map(|e| e.payload.as_str())
                    .collect::<Vec<&str>>(),
            )
            .bind(
                events
                    .iter()
                    .map(|e| encode_metadata(&e.metadata))
                    .collect::<Vec<String>>(),
            )
            .bind(
                events
                    .iter()
                    .map(|e| e.recorded_at)
                    .collect::<Vec<DateTime<Utc>>>(),
            );
        let mut inline_tx = None;
        let rows = match &self.inner.inline {
            None => query.fetch_all(&self.inner.pool).await,
            Some(_) => match self.inner.pool.begin().await {
                Ok(mut tx) => {
                    let rows = query.fetch_all(&mut *tx).await;
                    inline_tx = Some(tx);
                    rows
                }
                Err(error) => Err(error),
            },
        };
        let rows = match rows {
            Ok(rows) => rows,
            Err(sqlx::Error::Database(db))
                if db.code().as_deref() == Some("23505")
                    && db.constraint() == Some(self.inner.names.stream_sequence_constraint()) =>
            {
                // Another writer appended the same sequence first.
                return Err(self
                    .conflict(aggregate_type, aggregate_id, expected_version)
                    .await);
            }
            Err(error) => return Err(StoreError::backend(error).into()),
        };
        if rows.is_empty() {
            return Err(self
                .conflict(aggregate_type, aggregate_id, expected_version)
                .await);
        }
        let mut positions = rows
            .iter()
            .map(|row| {
                Ok((
                    row.try_get::<i64, _>(0)?,
                    LogPosition {
                        event: row.try_get::<i64, _>(1)?.unsigned_abs(),
                        transaction: row.try_get::<i64, _>(2)?.unsigned_abs(),
                    },
                ))
            })
            .collect::<Result<Vec<(i64, LogPosition)>, sqlx::Error>>()
            .map_err(StoreError::backend)?;
        if positions.len() != events.len() {
            return Err(StoreError::Corrupt(format!(
                "PostgreSQL inserted {} of {} events of {aggregate_type} `{aggregate_id}`",
                positions.len(),
                events.len()
            ))
            .into());
        }
        // RETURNING does not promise an order: put the positions in sequence order.
        positions.sort_unstable_by_key(|(sequence, _)| *sequence);
        let positions: Vec<LogPosition> = positions.into_iter().map(|(_, p)| p).collect();
        if let (Some(inline), Some(mut tx)) = (&self.inner.inline, inline_tx) {
            let stored = NewEvent::stored(
                events,
                aggregate_type,
                aggregate_id,
                expected_version,
                &positions,
            );
            // Dropping the transaction on an error rolls the append back.
            inline.lock().await.apply(&stored, &mut tx).await?;
            tx.commit().await.map_err(StoreError::backend)?;
        }
        self.inner.appended.notify_one();
        Ok(positions)
    }

    async fn read_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(self.inner.statements.get(StoreSql::SelectStream))
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(to_i64(after, "sequence")?)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.inner.pool)
            .await;
        Self::decode_events(rows, Some((aggregate_type, aggregate_id)))
    }

    async fn read_all(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(self.inner.statements.get(StoreSql::SelectLog))
            .bind(after.transaction.to_string())
            .bind(to_i64(after.event, "position")?)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.inner.pool)
            .await;
        Self::decode_events(rows, None)
    }

    async fn read_all_of(
        &self,
        aggregate_types: &[&str],
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        if aggregate_types.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(self.inner.statements.get(StoreSql::SelectLogOf))
            .bind(after.transaction.to_string())
            .bind(to_i64(after.event, "position")?)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(aggregate_types)
            .fetch_all(&self.inner.pool)
            .await;
        Self::decode_events(rows, None)
    }

    async fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        let sql = self.inner.statements.get(StoreSql::SelectSnapshot);
        load_snapshot(&self.db(), sql, aggregate_type, aggregate_id).await
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let sql = self.inner.statements.get(StoreSql::UpsertSnapshot);
        save_snapshot(&self.db(), sql, snapshot).await
    }

    async fn count_events(&self) -> Result<u64, StoreError> {
        let sql = self.inner.statements.get(StoreSql::CountEvents);
        count_events(&self.db(), sql).await
    }

    fn watch(&self, poll: Duration) -> LogWatch {
        LogWatch::with_waker(self.waker(poll), poll)
    }
}
