//! The event store operations of PostgreSQL: appends are one conditional insert each, whose
//! unique `(aggregate_type, aggregate_id, sequence)` constraint resolves racing writers in the
//! database (inline projections run in the append's transaction); reads follow the log in
//! `(transaction id, position)` order below the oldest running transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::{AppendSql, PostgresStore};
use crate::contract::error::{AppendError, Conflict, StoreError};
use crate::contract::event::{LogPosition, StoredEvent, StoredEventRef};
use crate::contract::store::{CommandRecord, EventStore, LogWatch, NewEvent, PAGE_SIZE, Snapshot};
use crate::stores::sql::store::{StoreSql, load_snapshot, save_snapshot, select_count};
use crate::stores::sql::{EventRow, encode_metadata, i64_to_u64, to_i64, u64_to_i64};

impl PostgresStore {
    /// The record of a command id on a stream; `fresh` leaves out records older than the
    /// retention (which a later append deletes or replaces).
    async fn command(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        command_id: &str,
        fresh: bool,
    ) -> Result<Option<CommandRecord>, StoreError> {
        let cutoff = fresh.then(|| self.inner.retention.cutoff()).flatten();
        let row = sqlx::query(self.inner.statements.query(StoreSql::SelectCommand))
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(command_id)
            .bind(cutoff)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(StoreError::backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(CommandRecord {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            command_id: command_id.to_owned(),
            first_sequence: get::<i64>(&row, 0)?.unsigned_abs(),
            last_sequence: get::<i64>(&row, 1)?.unsigned_abs(),
            recorded_at: get(&row, 2)?,
        }))
    }

    /// Deletes command ids older than the retention, when due. The append already committed:
    /// a failure here is logged and retried by a later append.
    async fn prune_commands(&self) {
        let Some(cutoff) = self.inner.retention.due() else {
            return;
        };
        let pruned = sqlx::query(self.inner.statements.query(StoreSql::PruneCommands))
            .bind(cutoff)
            .execute(&self.inner.pool)
            .await;
        if let Err(error) = pruned {
            tracing::warn!(%error, "deleting old command ids failed; a later append retries");
        }
    }

    /// One attempt at an append; `Ok(None)` when it found an expired record of its command
    /// id, deleted it, and must run again.
    async fn try_append(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> Result<Option<Vec<LogPosition>>, AppendError> {
        if events.is_empty() {
            return Ok(Some(Vec::new()));
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
        let record =
            CommandRecord::of_append(aggregate_type, aggregate_id, expected_version, events);
        let statement = match record {
            Some(_) => AppendSql::AppendCommand,
            None => AppendSql::Append,
        };
        let query = sqlx::query(self.inner.statements.append.query(statement))
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
        let query = match &record {
            Some(record) => query.bind(record.command_id.as_str()),
            None => query,
        };
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
            Err(sqlx::Error::Database(db))
                if db.code().as_deref() == Some("23505")
                    && db.constraint() == Some(self.inner.names.commands_key()) =>
            {
                // The stream holds this command id already: nothing was written.
                let Some(record) = record else {
                    return Err(StoreError::backend(sqlx::Error::Database(db)).into());
                };
                let command_id = record.command_id.as_str();
                if let Some(first) = self
                    .command(aggregate_type, aggregate_id, command_id, true)
                    .await?
                {
                    return Err(StoreError::DuplicateCommand(Box::new(first)).into());
                }
                // A record older than the retention, not deleted yet: the id is free again.
                if let Some(cutoff) = self.inner.retention.cutoff() {
                    sqlx::query(self.inner.statements.query(StoreSql::ForgetCommand))
                        .bind(aggregate_type)
                        .bind(aggregate_id)
                        .bind(command_id)
                        .bind(cutoff)
                        .execute(&self.inner.pool)
                        .await
                        .map_err(StoreError::backend)?;
                }
                return Ok(None);
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
        if record.is_some() {
            self.prune_commands().await;
        }
        Ok(Some(positions))
    }

    async fn conflict(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        expected: u64,
    ) -> AppendError {
        let actual = sqlx::query(self.inner.statements.query(StoreSql::SelectVersion))
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

    /// Runs a read of events, decoding each row as it arrives (while the server sends the
    /// next), into owned events.
    async fn read_events(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
        stream: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut rows = query.fetch(&self.inner.pool);
        let mut events = Vec::with_capacity(limit.min(PAGE_SIZE));
        while let Some(row) = rows.try_next().await.map_err(StoreError::backend)? {
            events.push(event_row(&row, stream)?.into_stored()?);
        }
        Ok(events)
    }
}

/// One column of a row; a column of the wrong type is a backend error.
fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    row: &'r PgRow,
    i: usize,
) -> Result<T, StoreError> {
    row.try_get(i).map_err(StoreError::backend)
}

/// A row of `select_stream`, `select_aggregate` or `select_log`, borrowed: position,
/// transaction, sequence, event id, type, version, payload, metadata, time (then, in the log,
/// aggregate type and id).
fn event_row<'r>(
    row: &'r PgRow,
    stream: Option<(&'r str, &'r str)>,
) -> Result<EventRow<'r>, StoreError> {
    let (aggregate_type, aggregate_id) = match stream {
        Some(stream) => stream,
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

/// The snapshot row of `select_aggregate` (sequence 0): its fingerprint in the position
/// column, its version in the transaction column, its state in the payload column.
fn snapshot_row(
    row: &PgRow,
    (aggregate_type, aggregate_id): (&str, &str),
) -> Result<Snapshot, StoreError> {
    let version: i64 = get(row, 1)?;
    Ok(Snapshot {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        version: u64::try_from(version).map_err(|_| {
            StoreError::Corrupt(format!(
                "snapshot of {aggregate_type} `{aggregate_id}` has version {version}"
            ))
        })?,
        fingerprint: i64_to_u64(get(row, 0)?),
        state: get::<String>(row, 6)?,
    })
}

impl EventStore for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgresql"
    }

    async fn find_command(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        command_id: &str,
    ) -> Result<Option<CommandRecord>, StoreError> {
        self.command(aggregate_type, aggregate_id, command_id, true)
            .await
    }

    async fn append(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> Result<Vec<LogPosition>, AppendError> {
        loop {
            let attempt = self
                .try_append(aggregate_type, aggregate_id, expected_version, events)
                .await?;
            if let Some(positions) = attempt {
                return Ok(positions);
            }
        }
    }

    async fn read_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let query = sqlx::query(self.inner.statements.query(StoreSql::SelectStream))
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(to_i64(after, "sequence")?)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        self.read_events(query, Some((aggregate_type, aggregate_id)), limit)
            .await
    }

    /// The stream in one statement, each row lent as it arrives.
    async fn fold_stream<T, F>(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        mut state: T,
        mut f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut T, StoredEventRef<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        let query = sqlx::query(self.inner.statements.query(StoreSql::SelectStream))
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(to_i64(after, "sequence")?)
            .bind(i64::MAX);
        let mut rows = query.fetch(&self.inner.pool);
        let stream = (aggregate_type, aggregate_id);
        while let Some(row) = rows.try_next().await.map_err(StoreError::backend)? {
            f(&mut state, event_row(&row, Some(stream))?.lend()?)?;
        }
        Ok(state)
    }

    /// The snapshot and the stream in one statement (one round trip): the snapshot's row
    /// first, then the events, each lent as it arrives.
    async fn fold_aggregate<T, S, F>(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        fingerprint: Option<u64>,
        start: S,
        mut f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        S: FnOnce(Option<Snapshot>) -> T + Send + 'static,
        F: FnMut(&mut T, StoredEventRef<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        let query = sqlx::query(self.inner.statements.query(StoreSql::SelectAggregate))
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(fingerprint.map(u64_to_i64));
        let mut rows = query.fetch(&self.inner.pool);
        let stream = (aggregate_type, aggregate_id);
        let first = rows.try_next().await.map_err(StoreError::backend)?;
        let (mut state, first) = match first {
            Some(row) if get::<i64>(&row, 2)? == 0 => {
                (start(Some(snapshot_row(&row, stream)?)), None)
            }
            first => (start(None), first),
        };
        if let Some(row) = first {
            f(&mut state, event_row(&row, Some(stream))?.lend()?)?;
        }
        while let Some(row) = rows.try_next().await.map_err(StoreError::backend)? {
            f(&mut state, event_row(&row, Some(stream))?.lend()?)?;
        }
        Ok(state)
    }

    async fn read_all(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let query = sqlx::query(self.inner.statements.query(StoreSql::SelectLog))
            .bind(after.transaction.to_string())
            .bind(to_i64(after.event, "position")?)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        self.read_events(query, None, limit).await
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
        let query = sqlx::query(self.inner.statements.query(StoreSql::SelectLogOf))
            .bind(after.transaction.to_string())
            .bind(to_i64(after.event, "position")?)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(aggregate_types);
        self.read_events(query, None, limit).await
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
        select_count(&self.db(), sql, "the event count").await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        let sql = self.inner.statements.get(StoreSql::SelectHead);
        select_count(&self.db(), sql, "the log's head").await
    }

    fn watch(&self, poll: Duration) -> LogWatch {
        LogWatch::with_waker(self.waker(poll), poll)
    }
}
