//! The writer task: group commit. It owns the only write connection of the store; every
//! append and snapshot waits in its queue, and each round commits everything queued so far in
//! one transaction, so that one fsync serves many writers.

use std::sync::Arc;

use sqlx::{Connection, Row, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::Statements;
use super::dialect::bind;
use crate::contract::error::{AppendError, Conflict, StoreError};
use crate::contract::event::{LogPosition, StoredEvent};
use crate::contract::store::{NewEvent, Snapshot};
use crate::projection::InlineProjections;
use crate::stores::sql::store::{StoreSql, snapshot_params};

mod sql;

use sql::{bind_event, group_insert_sql, insert_sql};

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
enum Outcome {
    Appended(Vec<LogPosition>),
    Snapshot,
    Failed(AppendError),
}

pub(super) async fn run(
    mut conn: SqliteConnection,
    mut queue: mpsc::Receiver<Request>,
    statements: Arc<Statements>,
    max_batch: usize,
    appended: Arc<tokio::sync::watch::Sender<()>>,
    mut inline: InlineProjections<SqliteConnection>,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while queue.recv_many(&mut batch, max_batch).await > 0 {
        match commit(&mut conn, &statements, &mut inline, &batch).await {
            Ok(outcomes) => {
                let grew = outcomes
                    .iter()
                    .any(|o| matches!(o, Outcome::Appended(p) if !p.is_empty()));
                if grew {
                    appended.send_replace(());
                }
                for (request, outcome) in batch.drain(..).zip(outcomes) {
                    answer(request, outcome);
                }
            }
            Err(error) => {
                // Nothing of the batch was written; every caller learns why.
                let message = format!("SQLite commit failed, nothing was written: {error}");
                for request in batch.drain(..) {
                    let error = StoreError::Backend(message.clone().into());
                    answer(request, Outcome::Failed(error.into()));
                }
            }
        }
    }
    if let Err(error) = conn.close().await {
        tracing::warn!(%error, "closing the SQLite write connection failed");
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
async fn commit(
    conn: &mut SqliteConnection,
    statements: &Statements,
    inline: &mut InlineProjections<SqliteConnection>,
    batch: &[Request],
) -> Result<Vec<Outcome>, StoreError> {
    match run_batch(conn, statements, inline, batch, false).await? {
        Some(outcomes) => Ok(outcomes),
        // With savepoints a failing insert fails only its append, so the run never gives up.
        None => run_batch(conn, statements, inline, batch, true)
            .await?
            .ok_or_else(|| {
                StoreError::Backend("a batch failed even with a savepoint per append".into())
            }),
    }
}

/// `Ok(None)`: an insert failed without savepoints, and the transaction was rolled back.
async fn run_batch(
    conn: &mut SqliteConnection,
    statements: &Statements,
    inline: &mut InlineProjections<SqliteConnection>,
    batch: &[Request],
    savepoints: bool,
) -> Result<Option<Vec<Outcome>>, StoreError> {
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(StoreError::backend)?;
    let mut outcomes: Vec<Option<Outcome>> = batch.iter().map(|_| None).collect();
    if savepoints {
        for (i, request) in batch.iter().enumerate() {
            if let Request::Append(append, _) = request {
                outcomes[i] = Some(append_isolated(&mut tx, statements, inline, append).await);
            }
        }
    } else {
        for group in groups(batch) {
            match insert_group(&mut tx, statements, batch, &group).await {
                Ok(results) => {
                    for (i, outcome) in group.into_iter().zip(results) {
                        outcomes[i] = Some(outcome);
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "an insert failed in a group commit; retrying the batch with savepoints");
                    tx.rollback().await.map_err(StoreError::backend)?;
                    return Ok(None);
                }
            }
        }
        if !inline.is_empty() {
            for (i, request) in batch.iter().enumerate() {
                let (Request::Append(append, _), Some(Outcome::Appended(positions))) =
                    (request, &outcomes[i])
                else {
                    continue;
                };
                let events = stored_events(append, positions);
                if let Err(error) = inline.apply(&events, &mut tx).await {
                    tracing::debug!(%error, "an inline projection failed in a group commit; retrying the batch with savepoints");
                    tx.rollback().await.map_err(StoreError::backend)?;
                    return Ok(None);
                }
            }
        }
    }
    for (i, request) in batch.iter().enumerate() {
        if let Request::Snapshot(snapshot, _) = request {
            outcomes[i] = Some(snapshot_one(&mut tx, statements, snapshot).await);
        }
    }
    tx.commit().await.map_err(StoreError::backend)?;
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
async fn insert_group(
    conn: &mut SqliteConnection,
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
    if let [append] = appends[..] {
        if append.events.len() > ROWS_PER_GROUP {
            return Ok(vec![append_one(conn, statements, append).await?]);
        }
    }
    let rows: usize = appends.iter().map(|a| a.events.len()).sum();
    let sql = group_insert_sql(&statements.events_table, rows);
    let mut query = sqlx::query(&sql);
    for append in &appends {
        for (offset, event) in append.events.iter().enumerate() {
            query = bind_event(
                query
                    .bind(&append.aggregate_type)
                    .bind(&append.aggregate_id)
                    .bind(append.expected_version)
                    .bind(offset as i64 + 1),
                event,
            );
        }
    }
    let returned = query
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::backend)?;
    let mut inserted: std::collections::HashMap<(String, String), Vec<(i64, i64)>> =
        std::collections::HashMap::new();
    for row in &returned {
        let key = (
            row.try_get(0).map_err(StoreError::backend)?,
            row.try_get(1).map_err(StoreError::backend)?,
        );
        let value = (
            row.try_get(2).map_err(StoreError::backend)?,
            row.try_get(3).map_err(StoreError::backend)?,
        );
        inserted.entry(key).or_default().push(value);
    }
    let mut outcomes = Vec::with_capacity(appends.len());
    for append in appends {
        let key = (append.aggregate_type.clone(), append.aggregate_id.clone());
        match inserted.remove(&key) {
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
async fn append_isolated(
    conn: &mut SqliteConnection,
    statements: &Statements,
    inline: &mut InlineProjections<SqliteConnection>,
    append: &Append,
) -> Outcome {
    let mut savepoint = match conn.begin().await {
        Ok(savepoint) => savepoint,
        Err(error) => return Outcome::Failed(StoreError::backend(error).into()),
    };
    let mut result = append_one(&mut savepoint, statements, append).await;
    if let Ok(Outcome::Appended(positions)) = &result {
        if !inline.is_empty() {
            let events = stored_events(append, positions);
            if let Err(error) = inline.apply(&events, &mut savepoint).await {
                result = Err(error);
            }
        }
    }
    match result {
        Ok(outcome) => match savepoint.commit().await {
            Ok(()) => outcome,
            Err(error) => Outcome::Failed(StoreError::backend(error).into()),
        },
        Err(error) => {
            if let Err(rollback) = savepoint.rollback().await {
                tracing::warn!(%rollback, "rolling back a failed append");
            }
            Outcome::Failed(error.into())
        }
    }
}

/// Inserts the events only if the stream is at the expected version, in one statement per
/// chunk: SQLite's write lock is held, so nobody can append between the check and the insert.
/// `Ok(Failed(Conflict))` when the stream moved on; `Err` when the database refused the insert.
async fn append_one(
    conn: &mut SqliteConnection,
    statements: &Statements,
    append: &Append,
) -> Result<Outcome, StoreError> {
    let mut positions = Vec::with_capacity(append.events.len());
    for (chunk_index, chunk) in append.events.chunks(ROWS_PER_INSERT).enumerate() {
        let expected = append.expected_version + (chunk_index * ROWS_PER_INSERT) as i64;
        let sql = insert_sql(&statements.events_table, chunk.len());
        let mut query = sqlx::query(&sql)
            .bind(&append.aggregate_type)
            .bind(&append.aggregate_id)
            .bind(expected);
        for event in chunk {
            query = bind_event(query, event);
        }
        let rows = query
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::backend)?;
        if rows.is_empty() {
            // Only the first chunk can find the stream moved: the lock is held.
            return conflict(conn, statements, append).await;
        }
        let inserted = rows
            .iter()
            .map(|row| Ok((row.try_get::<i64, _>(0)?, row.try_get::<i64, _>(1)?)))
            .collect::<Result<Vec<(i64, i64)>, sqlx::Error>>()
            .map_err(StoreError::backend)?;
        positions.extend(self::positions(append, chunk.len(), inserted)?);
    }
    Ok(Outcome::Appended(positions))
}

/// The conflict, with the version the stream is actually at.
async fn conflict(
    conn: &mut SqliteConnection,
    statements: &Statements,
    append: &Append,
) -> Result<Outcome, StoreError> {
    let actual: i64 = sqlx::query(statements.get(StoreSql::SelectVersion))
        .bind(&append.aggregate_type)
        .bind(&append.aggregate_id)
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(StoreError::backend)?;
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

async fn snapshot_one(
    conn: &mut SqliteConnection,
    statements: &Statements,
    snapshot: &Snapshot,
) -> Outcome {
    let params = match snapshot_params(snapshot) {
        Ok(params) => params,
        Err(error) => return Outcome::Failed(error.into()),
    };
    let result = bind(
        sqlx::query(statements.get(StoreSql::UpsertSnapshot)),
        &params,
    )
    .execute(&mut *conn)
    .await;
    match result {
        Ok(_) => Outcome::Snapshot,
        Err(error) => Outcome::Failed(StoreError::backend(error).into()),
    }
}
