//! Appending to a PostgreSQL store: one conditional insert per append, whose unique
//! `(aggregate_type, aggregate_id, sequence)` constraint resolves racing writers in the
//! database; inline projections run in the append's transaction.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::PostgresStore;
use crate::contract::error::{AppendError, Conflict, StoreError};
use crate::contract::event::LogPosition;
use crate::contract::store::NewEvent;
use crate::stores::sql::{encode_metadata, to_i64};

impl PostgresStore {
    async fn conflict(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        expected: u64,
    ) -> AppendError {
        let actual = sqlx::query(&self.inner.statements.select_version)
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

    pub(super) async fn append_events(
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
        let query = sqlx::query(&self.inner.statements.append)
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
}
