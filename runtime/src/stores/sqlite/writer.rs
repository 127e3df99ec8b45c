//! The writer: group commit. It owns the only write connection of the store; every append and
//! snapshot waits in its queue, and each round commits everything queued so far in one
//! transaction, so that one fsync serves many writers.
//!
//! The rounds are written once, over [`WriteConnection`]. A store without inline projections
//! runs them on a thread of its own with a rusqlite connection (`super::native`): each statement
//! is a call into SQLite, with no hop to another thread. A store with inline projections runs
//! them as a tokio task on a sqlx connection, the connection type its projections' handlers
//! take.

use std::future::Future;
use std::sync::Arc;

use sqlx::{Executor, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::Statements;
use super::dialect::{bind, cells};
use crate::contract::error::{AppendError, Conflict, StoreError};
use crate::contract::event::{LogPosition, StoredEvent};
use crate::contract::store::{CommandRecord, NewEvent, Snapshot};
use crate::projection::InlineProjections;
use crate::stores::sql::dialect::{Param, Row};
use crate::stores::sql::store::{StoreSql, snapshot_params};
use crate::stores::sql::{encode_metadata, to_i64};

mod sql;

pub(super) use sql::Inserts;

/// What the writer's rounds need of a connection. Transactions are plain statements (`BEGIN
/// IMMEDIATE`, `SAVEPOINT`, ...), so both drivers run the same ones.
pub(super) trait WriteConnection: Send + 'static {
    /// Runs statements without parameters or results.
    fn script(&mut self, sql: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Runs one statement and returns its rows (`what` names them in errors).
    fn rows(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        what: &'static str,
    ) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send;

    /// Whether inline projections are registered.
    fn has_inline(&self) -> bool;

    /// Applies the inline projections to one append's events, in the open transaction.
    fn inline(
        &mut self,
        events: &[StoredEvent],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The sqlx connection of a store with inline projections.
pub(super) struct SqlxWriter {
    pub(super) conn: SqliteConnection,
    pub(super) inline: InlineProjections<SqliteConnection>,
}

impl WriteConnection for SqlxWriter {
    async fn script(&mut self, sql: &str) -> Result<(), StoreError> {
        self.conn
            .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())))
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    async fn rows(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        what: &'static str,
    ) -> Result<Vec<Row>, StoreError> {
        let rows = bind(sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())), params)
            .fetch_all(&mut self.conn)
            .await
            .map_err(StoreError::backend)?;
        rows.iter().map(|row| cells(row, what)).collect()
    }

    fn has_inline(&self) -> bool {
        !self.inline.is_empty()
    }

    async fn inline(&mut self, events: &[StoredEvent]) -> Result<(), StoreError> {
        self.inline.apply(events, &mut self.conn).await
    }
}

/// Rows per multi-row `INSERT` of one append: 6 parameters each.
const ROWS_PER_INSERT: usize = 64;

/// Rows per grouped `INSERT` of several appends: 10 parameters each stays far below SQLite's
/// limit of 32,766.
const ROWS_PER_GROUP: usize = 256;

/// One command's events, to append at an expected version.
#[derive(Debug)]
pub(super) struct Append {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub expected_version: i64,
    pub events: Vec<NewEvent>,
    /// The command id to record with the events, if they carry one.
    pub command: Option<CommandRecord>,
}

#[derive(Debug)]
pub(super) enum Request {
    Append(
        Append,
        oneshot::Sender<Result<Vec<LogPosition>, AppendError>>,
    ),
    Snapshot(Snapshot, oneshot::Sender<Result<(), StoreError>>),
}

/// What one request of a batch came to, before the commit decides.
pub(super) enum Outcome {
    Appended(Vec<LogPosition>),
    Snapshot,
    Failed(AppendError),
}

/// The sqlx writer's task: serves the queue until every sender is gone, then closes the
/// connection.
pub(super) async fn run(
    mut conn: SqlxWriter,
    mut queue: mpsc::Receiver<Request>,
    statements: Arc<Statements>,
    max_batch: usize,
    appended: Arc<tokio::sync::watch::Sender<()>>,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while queue.recv_many(&mut batch, max_batch).await > 0 {
        let result = commit(&mut conn, &statements, &batch).await;
        settle(batch.drain(..), result, &appended);
    }
    if let Err(error) = sqlx::Connection::close(conn.conn).await {
        tracing::warn!(%error, "closing the SQLite write connection failed");
    }
}

/// Answers every request of a committed (or failed) batch, and announces new events.
pub(super) fn settle(
    batch: impl Iterator<Item = Request>,
    result: Result<Vec<Outcome>, StoreError>,
    appended: &tokio::sync::watch::Sender<()>,
) {
    match result {
        Ok(outcomes) => {
            let grew = outcomes
                .iter()
                .any(|o| matches!(o, Outcome::Appended(p) if !p.is_empty()));
            if grew {
                appended.send_replace(());
            }
            for (request, outcome) in batch.zip(outcomes) {
                answer(request, outcome);
            }
        }
        Err(error) => {
            // Nothing of the batch was written; every caller learns why.
            // The cause alone: a backend error's own prefix would be said twice.
            let cause = match &error {
                StoreError::Backend(inner) => inner.to_string(),
                other => other.to_string(),
            };
            let message = format!("SQLite commit failed, nothing was written: {cause}");
            for request in batch {
                let error = StoreError::Backend(message.clone().into());
                answer(request, Outcome::Failed(error.into()));
            }
        }
    }
}

/// Sends a request its outcome. A caller that went away (cancelled) just misses its answer.
fn answer(request: Request, outcome: Outcome) {
    match (request, outcome) {
        (Request::Append(_, reply), Outcome::Appended(positions)) => {
            let _ = reply.send(Ok(positions));
        }
        (Request::Append(_, reply), Outcome::Failed(error)) => {
            let _ = reply.send(Err(error));
        }
        (Request::Append(_, reply), Outcome::Snapshot) => {
            // Every append gets its own outcome; if one never did, say so rather than succeed.
            let _ = reply.send(Err(StoreError::Backend(
                "the SQLite writer lost track of an append; nothing is known to be written".into(),
            )
            .into()));
        }
        (Request::Snapshot(_, reply), Outcome::Failed(AppendError::Store(error))) => {
            let _ = reply.send(Err(error));
        }
        (Request::Snapshot(_, reply), _) => {
            let _ = reply.send(Ok(()));
        }
    }
}

/// Runs a batch in one transaction. `Err` means nothing of the batch was committed; otherwise
/// each request has its own outcome (a conflict leaves the others committed).
///
/// The fast path inserts the appends of a batch with as few statements as it can (see
/// [`insert_group`]) and no savepoint. If an insert fails (a duplicate event id, a full disk),
/// the transaction is rolled back and the batch runs again with a savepoint per append, so that
/// only the failing one fails.
pub(super) async fn commit<C: WriteConnection>(
    conn: &mut C,
    statements: &Statements,
    batch: &[Request],
) -> Result<Vec<Outcome>, StoreError> {
    match run_batch(conn, statements, batch, false).await? {
        Some(outcomes) => Ok(outcomes),
        // With savepoints a failing insert fails only its append, so the run never gives up.
        None => run_batch(conn, statements, batch, true)
            .await?
            .ok_or_else(|| {
                StoreError::Backend("a batch failed even with a savepoint per append".into())
            }),
    }
}

/// `Ok(None)`: an insert failed without savepoints, and the transaction was rolled back.
async fn run_batch<C: WriteConnection>(
    conn: &mut C,
    statements: &Statements,
    batch: &[Request],
    savepoints: bool,
) -> Result<Option<Vec<Outcome>>, StoreError> {
    conn.script("BEGIN IMMEDIATE").await?;
    match batch_in_transaction(conn, statements, batch, savepoints).await {
        Ok(Some(outcomes)) => match conn.script("COMMIT").await {
            Ok(()) => Ok(Some(outcomes)),
            Err(error) => {
                rollback(conn).await;
                Err(error)
            }
        },
        Ok(None) => {
            rollback(conn).await;
            Ok(None)
        }
        Err(error) => {
            rollback(conn).await;
            Err(error)
        }
    }
}

/// Ends a failed transaction. If even that fails, the next `BEGIN` fails and says why.
async fn rollback<C: WriteConnection>(conn: &mut C) {
    if let Err(error) = conn.script("ROLLBACK").await {
        tracing::warn!(%error, "rolling back an SQLite write transaction failed");
    }
}

/// The batch inside its transaction; `Ok(None)` when an insert failed without savepoints.
async fn batch_in_transaction<C: WriteConnection>(
    conn: &mut C,
    statements: &Statements,
    batch: &[Request],
    savepoints: bool,
) -> Result<Option<Vec<Outcome>>, StoreError> {
    let mut outcomes: Vec<Option<Outcome>> = batch.iter().map(|_| None).collect();
    if savepoints {
        for (i, request) in batch.iter().enumerate() {
            if let Request::Append(append, _) = request {
                outcomes[i] = Some(append_isolated(conn, statements, append).await);
            }
        }
    } else {
        for group in groups(batch) {
            match insert_group(conn, statements, batch, &group).await {
                Ok(results) => {
                    for (i, outcome) in group.into_iter().zip(results) {
                        outcomes[i] = Some(outcome);
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "an insert failed in a group commit; retrying the batch with savepoints");
                    return Ok(None);
                }
            }
        }
        for (i, request) in batch.iter().enumerate() {
            let (Request::Append(append, _), Some(Outcome::Appended(_))) = (request, &outcomes[i])
            else {
                continue;
            };
            if let Some(record) = &append.command {
                // A command id recorded already fails the insert: the savepoint run finds it.
                if let Err(error) = record_command(conn, statements, record).await {
                    tracing::debug!(%error, "recording a command id failed in a group commit; retrying the batch with savepoints");
                    return Ok(None);
                }
            }
        }
        if conn.has_inline() {
            for (i, request) in batch.iter().enumerate() {
                let (Request::Append(append, _), Some(Outcome::Appended(positions))) =
                    (request, &outcomes[i])
                else {
                    continue;
                };
                let events = stored_events(append, positions);
                if let Err(error) = conn.inline(&events).await {
                    tracing::debug!(%error, "an inline projection failed in a group commit; retrying the batch with savepoints");
                    return Ok(None);
                }
            }
        }
    }
    for (i, request) in batch.iter().enumerate() {
        if let Request::Snapshot(snapshot, _) = request {
            outcomes[i] = Some(snapshot_one(conn, statements, snapshot).await);
        }
    }
    let records = batch
        .iter()
        .any(|r| matches!(r, Request::Append(a, _) if a.command.is_some()));
    if records && let Some(cutoff) = statements.retention.due() {
        let sql = statements.get(StoreSql::PruneCommands);
        conn.rows(sql, &[Param::Time(cutoff)], "pruned command ids")
            .await?;
    }
    Ok(Some(
        outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    Outcome::Failed(
                        StoreError::Backend(
                            "the SQLite writer lost track of a request in a batch".into(),
                        )
                        .into(),
                    )
                })
            })
            .collect(),
    ))
}

/// An append's events as the log holds them once committed, for inline projections.
fn stored_events(append: &Append, positions: &[LogPosition]) -> Vec<StoredEvent> {
    NewEvent::stored(
        &append.events,
        &append.aggregate_type,
        &append.aggregate_id,
        append.expected_version.unsigned_abs(),
        positions,
    )
}

/// Splits a batch's appends into groups that one statement can insert: at most one append per
/// stream (a later append of the same stream must see the earlier one's rows, so it goes in a
/// later group), and at most [`ROWS_PER_GROUP`] rows. Groups keep the batch's order.
fn groups(batch: &[Request]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut streams = std::collections::HashSet::new();
    let mut rows = 0;
    for (i, request) in batch.iter().enumerate() {
        let Request::Append(append, _) = request else {
            continue;
        };
        let key = (append.aggregate_type.as_str(), append.aggregate_id.as_str());
        let fits = rows + append.events.len() <= ROWS_PER_GROUP && !streams.contains(&key);
        if groups.is_empty() || !fits {
            groups.push(Vec::new());
            streams.clear();
            rows = 0;
        }
        streams.insert(key);
        rows += append.events.len();
        if let Some(group) = groups.last_mut() {
            group.push(i);
        }
    }
    groups
}

/// Inserts a group of appends (one per stream) in one statement: each row carries its stream's
/// expected version, and goes in only if the stream is at it. SQLite evaluates the whole
/// `SELECT` before inserting (it reads the target table), so every row is checked against the
/// state before the statement: an append's rows go in all together or not at all. An append
/// too large for one statement goes alone through [`append_one`].
async fn insert_group<C: WriteConnection>(
    conn: &mut C,
    statements: &Statements,
    batch: &[Request],
    group: &[usize],
) -> Result<Vec<Outcome>, StoreError> {
    let appends: Vec<&Append> = group
        .iter()
        .filter_map(|&i| match &batch[i] {
            Request::Append(append, _) => Some(append),
            Request::Snapshot(..) => None,
        })
        .collect();
    if let [append] = appends[..]
        && append.events.len() > ROWS_PER_GROUP
    {
        return Ok(vec![append_one(conn, statements, append).await?]);
    }
    let rows: usize = appends.iter().map(|a| a.events.len()).sum();
    let sql = statements.inserts.group(rows);
    let metadata: Vec<Vec<String>> = appends.iter().map(|a| encoded_metadata(a)).collect();
    let mut params = Vec::with_capacity(rows * 10);
    for (append, metadata) in appends.iter().zip(&metadata) {
        for (offset, (event, metadata)) in append.events.iter().zip(metadata).enumerate() {
            params.extend([
                Param::Text(&append.aggregate_type),
                Param::Text(&append.aggregate_id),
                Param::Int(append.expected_version),
                Param::Int(offset as i64 + 1),
            ]);
            params.extend(event_params(event, metadata));
        }
    }
    let returned = conn.rows(&sql, &params, "an inserted event").await?;
    // The inserted rows by the index of their append in the group (one append per stream).
    let index: std::collections::HashMap<(&str, &str), usize> = appends
        .iter()
        .enumerate()
        .map(|(i, a)| ((a.aggregate_type.as_str(), a.aggregate_id.as_str()), i))
        .collect();
    let mut inserted: Vec<Vec<(i64, i64)>> = vec![Vec::new(); appends.len()];
    for mut row in returned {
        let key = (row.text(0)?, row.text(1)?);
        let at = *index
            .get(&(key.0.as_str(), key.1.as_str()))
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "SQLite returned a row of {} `{}`, which the insert did not write",
                    key.0, key.1
                ))
            })?;
        inserted[at].push((row.int(2)?, row.int(3)?));
    }
    let mut outcomes = Vec::with_capacity(appends.len());
    for (append, rows) in appends.into_iter().zip(inserted) {
        match Some(rows).filter(|rows| !rows.is_empty()) {
            Some(rows) => outcomes.push(Outcome::Appended(positions(
                append,
                append.events.len(),
                rows,
            )?)),
            None => outcomes.push(conflict(conn, statements, append).await?),
        }
    }
    Ok(outcomes)
}

/// The positions of `expected` inserted rows of an append, in event order; anything but all of
/// them is refused.
fn positions(
    append: &Append,
    expected: usize,
    mut rows: Vec<(i64, i64)>,
) -> Result<Vec<LogPosition>, StoreError> {
    if rows.len() != expected {
        // Never seen: it would mean SQLite checked rows against a state that included earlier
        // rows of the same statement. Failing here rolls the whole batch back.
        return Err(StoreError::Corrupt(format!(
            "SQLite inserted {} of {} events of {} `{}`; the append was rolled back",
            rows.len(),
            expected,
            append.aggregate_type,
            append.aggregate_id
        )));
    }
    // RETURNING does not promise an order: put the positions in sequence order.
    rows.sort_unstable();
    Ok(rows
        .into_iter()
        .map(|(_, position)| LogPosition::serial(position.unsigned_abs()))
        .collect())
}

/// One append under its own savepoint: a failure undoes only this append.
async fn append_isolated<C: WriteConnection>(
    conn: &mut C,
    statements: &Statements,
    append: &Append,
) -> Outcome {
    if let Err(error) = conn.script("SAVEPOINT cqrs_append").await {
        return Outcome::Failed(error.into());
    }
    let mut result = match &append.command {
        Some(record) => match recorded_command(conn, statements, record).await {
            Ok(Some(first)) => Ok(Outcome::Failed(
                StoreError::DuplicateCommand(Box::new(first)).into(),
            )),
            Ok(None) => append_one(conn, statements, append).await,
            Err(error) => Err(error),
        },
        None => append_one(conn, statements, append).await,
    };
    if let (Ok(Outcome::Appended(_)), Some(record)) = (&result, &append.command)
        && let Err(error) = record_command(conn, statements, record).await
    {
        result = Err(error);
    }
    if let Ok(Outcome::Appended(positions)) = &result
        && conn.has_inline()
    {
        let events = stored_events(append, positions);
        if let Err(error) = conn.inline(&events).await {
            result = Err(error);
        }
    }
    match result {
        Ok(outcome) => match conn.script("RELEASE cqrs_append").await {
            Ok(()) => outcome,
            Err(error) => Outcome::Failed(error.into()),
        },
        Err(error) => {
            let undo = "ROLLBACK TO cqrs_append; RELEASE cqrs_append";
            if let Err(rollback) = conn.script(undo).await {
                tracing::warn!(%rollback, "rolling back a failed append");
            }
            Outcome::Failed(error.into())
        }
    }
}

/// Inserts the events only if the stream is at the expected version, in one statement per
/// chunk: SQLite's write lock is held, so nobody can append between the check and the insert.
/// `Ok(Failed(Conflict))` when the stream moved on; `Err` when the database refused the insert.
async fn append_one<C: WriteConnection>(
    conn: &mut C,
    statements: &Statements,
    append: &Append,
) -> Result<Outcome, StoreError> {
    let metadata = encoded_metadata(append);
    let mut positions = Vec::with_capacity(append.events.len());
    let chunks = append
        .events
        .chunks(ROWS_PER_INSERT)
        .zip(metadata.chunks(ROWS_PER_INSERT));
    for (chunk_index, (chunk, metadata)) in chunks.enumerate() {
        let expected = append.expected_version + (chunk_index * ROWS_PER_INSERT) as i64;
        let sql = statements.inserts.single(chunk.len());
        let mut params = Vec::with_capacity(3 + chunk.len() * 6);
        params.extend([
            Param::Text(&append.aggregate_type),
            Param::Text(&append.aggregate_id),
            Param::Int(expected),
        ]);
        for (event, metadata) in chunk.iter().zip(metadata) {
            params.extend(event_params(event, metadata));
        }
        let rows = conn.rows(&sql, &params, "an inserted event").await?;
        if rows.is_empty() {
            // Only the first chunk can find the stream moved: the lock is held.
            return conflict(conn, statements, append).await;
        }
        let inserted = rows
            .iter()
            .map(|row| Ok((row.int(0)?, row.int(1)?)))
            .collect::<Result<Vec<(i64, i64)>, StoreError>>()?;
        positions.extend(self::positions(append, chunk.len(), inserted)?);
    }
    Ok(Outcome::Appended(positions))
}

/// Records a command id with its append's sequences.
async fn record_command<C: WriteConnection>(
    conn: &mut C,
    statements: &Statements,
    record: &CommandRecord,
) -> Result<(), StoreError> {
    let params = [
        Param::Text(&record.aggregate_type),
        Param::Text(&record.aggregate_id),
        Param::Text(&record.command_id),
        Param::Int(to_i64(record.first_sequence, "sequence")?),
        Param::Int(to_i64(record.last_sequence, "sequence")?),
        Param::Time(record.recorded_at),
    ];
    conn.rows(&statements.insert_command, &params, "a command id")
        .await?;
    Ok(())
}

/// The record of a command id the stream holds already, if any. A record older than the
/// retention, not deleted yet, is deleted now: the id is free again.
async fn recorded_command<C: WriteConnection>(
    conn: &mut C,
    statements: &Statements,
    record: &CommandRecord,
) -> Result<Option<CommandRecord>, StoreError> {
    let cutoff = statements
        .retention
        .cutoff()
        .map_or(i64::MIN, |at| at.timestamp_micros());
    let params = [
        Param::Text(&record.aggregate_type),
        Param::Text(&record.aggregate_id),
        Param::Text(&record.command_id),
        Param::Int(cutoff),
    ];
    let forget = statements.get(StoreSql::ForgetCommand);
    conn.rows(forget, &params, "an expired command id").await?;
    let sql = statements.get(StoreSql::SelectCommand);
    let rows = conn.rows(sql, &params, "a command id").await?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    Ok(Some(CommandRecord {
        first_sequence: row.int(0)?.unsigned_abs(),
        last_sequence: row.int(1)?.unsigned_abs(),
        recorded_at: chrono::DateTime::from_timestamp_micros(row.int(2)?).unwrap_or_default(),
        ..record.clone()
    }))
}

/// Each event's metadata as stored, for the statements to borrow.
fn encoded_metadata(append: &Append) -> Vec<String> {
    append
        .events
        .iter()
        .map(|event| encode_metadata(&event.metadata))
        .collect()
}

/// An event's own six columns, in the order of the insert statements' `VALUES`.
fn event_params<'a>(event: &'a NewEvent, metadata: &'a str) -> [Param<'a>; 6] {
    [
        Param::Id(event.event_id),
        Param::Text(event.event_type),
        Param::Int(i64::from(event.event_version)),
        Param::Text(&event.payload),
        Param::Text(metadata),
        Param::Time(event.recorded_at),
    ]
}

/// The conflict, with the version the stream is actually at.
async fn conflict<C: WriteConnection>(
    conn: &mut C,
    statements: &Statements,
    append: &Append,
) -> Result<Outcome, StoreError> {
    let params = [
        Param::Text(&append.aggregate_type),
        Param::Text(&append.aggregate_id),
    ];
    let sql = statements.get(StoreSql::SelectVersion);
    let rows = conn.rows(sql, &params, "a stream's version").await?;
    let actual = rows.first().map_or(Ok(0), |row| row.int(0))?;
    Ok(Outcome::Failed(
        Conflict {
            aggregate_type: append.aggregate_type.clone(),
            aggregate_id: append.aggregate_id.clone(),
            expected: append.expected_version.unsigned_abs(),
            actual: actual.unsigned_abs(),
        }
        .into(),
    ))
}

async fn snapshot_one<C: WriteConnection>(
    conn: &mut C,
    statements: &Statements,
    snapshot: &Snapshot,
) -> Outcome {
    let params = match snapshot_params(snapshot) {
        Ok(params) => params,
        Err(error) => return Outcome::Failed(error.into()),
    };
    let sql = statements.get(StoreSql::UpsertSnapshot);
    match conn.rows(sql, &params, "a snapshot").await {
        Ok(_) => Outcome::Snapshot,
        Err(error) => Outcome::Failed(error.into()),
    }
}
