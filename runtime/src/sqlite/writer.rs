//! The writer task: group commit. It owns the only write connection of the store; every
//! append and snapshot waits in its queue, and each round commits everything queued so far in
//! one transaction, so that one fsync serves many writers.

use std::sync::Arc;

use chrono::Utc;
use sqlx::{Connection, Row, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::Statements;
use crate::error::{AppendError, Conflict, StoreError};
use crate::sql::{encode_metadata, to_i64, u64_to_i64};
use crate::store::{NewEvent, Snapshot};

/// Rows per multi-row `INSERT`: 10 parameters each stays far below SQLite's parameter limit.
const ROWS_PER_INSERT: usize = 64;

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
    Append(Append, oneshot::Sender<Result<Vec<u64>, AppendError>>),
    Snapshot(Snapshot, oneshot::Sender<Result<(), StoreError>>),
}

/// What one request of a batch came to, before the commit decides.
enum Outcome {
    Appended(Vec<u64>),
    Snapshot,
    Failed(AppendError),
}

pub(super) async fn run(
    mut conn: SqliteConnection,
    mut queue: mpsc::Receiver<Request>,
    statements: Arc<Statements>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while queue.recv_many(&mut batch, max_batch).await > 0 {
        match commit(&mut conn, &statements, &batch).await {
            Ok(outcomes) => {
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
            let _ = reply.send(Ok(Vec::new()));
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
async fn commit(
    conn: &mut SqliteConnection,
    statements: &Statements,
    batch: &[Request],
) -> Result<Vec<Outcome>, StoreError> {
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(StoreError::backend)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for request in batch {
        let outcome = match request {
            Request::Append(append, _) => append_one(&mut tx, statements, append).await,
            Request::Snapshot(snapshot, _) => snapshot_one(&mut tx, statements, snapshot).await,
        };
        outcomes.push(outcome);
    }
    tx.commit().await.map_err(StoreError::backend)?;
    Ok(outcomes)
}

/// Checks the stream's version, then inserts under a savepoint so that a failure undoes only
/// this append. SQLite's write lock is held: nobody can append between the check and the insert.
async fn append_one(
    conn: &mut SqliteConnection,
    statements: &Statements,
    append: &Append,
) -> Outcome {
    let actual: i64 = match sqlx::query(&statements.select_version)
        .bind(&append.aggregate_type)
        .bind(&append.aggregate_id)
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get(0))
    {
        Ok(version) => version,
        Err(error) => return Outcome::Failed(StoreError::backend(error).into()),
    };
    if actual != append.expected_version {
        return Outcome::Failed(
            Conflict {
                aggregate_type: append.aggregate_type.clone(),
                aggregate_id: append.aggregate_id.clone(),
                expected: append.expected_version.unsigned_abs(),
                actual: actual.unsigned_abs(),
            }
            .into(),
        );
    }
    let mut savepoint = match conn.begin().await {
        Ok(savepoint) => savepoint,
        Err(error) => return Outcome::Failed(StoreError::backend(error).into()),
    };
    match insert(&mut savepoint, statements, append).await {
        Ok(positions) => match savepoint.commit().await {
            Ok(()) => Outcome::Appended(positions),
            Err(error) => Outcome::Failed(StoreError::backend(error).into()),
        },
        Err(error) => {
            // Dropping the savepoint rolls it back; say so explicitly to surface its error.
            if let Err(rollback) = savepoint.rollback().await {
                tracing::warn!(%rollback, "rolling back a failed append");
            }
            Outcome::Failed(error.into())
        }
    }
}

/// Multi-row inserts returning the positions, in event order.
async fn insert(
    conn: &mut SqliteConnection,
    statements: &Statements,
    append: &Append,
) -> Result<Vec<u64>, StoreError> {
    let mut positions = Vec::with_capacity(append.events.len());
    for (chunk_index, chunk) in append.events.chunks(ROWS_PER_INSERT).enumerate() {
        let sql = insert_sql(&statements.events_table, chunk.len());
        let mut query = sqlx::query(&sql);
        let first = append.expected_version + (chunk_index * ROWS_PER_INSERT) as i64 + 1;
        for (offset, event) in chunk.iter().enumerate() {
            query = query
                .bind(&append.aggregate_type)
                .bind(&append.aggregate_id)
                .bind(first + offset as i64)
                .bind(event.event_id.as_bytes().as_slice())
                .bind(event.event_type)
                .bind(i64::from(event.event_version))
                .bind(&event.payload)
                .bind(encode_metadata(&event.metadata))
                .bind(event.recorded_at.timestamp_micros());
        }
        let rows = query
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::backend)?;
        for row in rows {
            let position: i64 = row.try_get(0).map_err(StoreError::backend)?;
            positions.push(position.unsigned_abs());
        }
    }
    Ok(positions)
}

/// `INSERT ... VALUES (...), (...) RETURNING position` for `rows` events. SQLite returns the
/// rows of a multi-row insert in insertion order.
fn insert_sql(table: &str, rows: usize) -> String {
    let mut sql = format!(
        "INSERT INTO {table} (aggregate_type, aggregate_id, sequence, event_id, event_type, \
         event_version, payload, metadata, recorded_at) VALUES "
    );
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        let p = row * 9;
        sql.push_str(&format!(
            "(?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{})",
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5,
            p + 6,
            p + 7,
            p + 8,
            p + 9
        ));
    }
    sql.push_str(" RETURNING position");
    sql
}

async fn snapshot_one(
    conn: &mut SqliteConnection,
    statements: &Statements,
    snapshot: &Snapshot,
) -> Outcome {
    let version = match to_i64(snapshot.version, "snapshot version") {
        Ok(v) => v,
        Err(error) => return Outcome::Failed(error.into()),
    };
    let result = sqlx::query(&statements.upsert_snapshot)
        .bind(&snapshot.aggregate_type)
        .bind(&snapshot.aggregate_id)
        .bind(version)
        .bind(u64_to_i64(snapshot.fingerprint))
        .bind(&snapshot.state)
        .bind(Utc::now().timestamp_micros())
        .execute(&mut *conn)
        .await;
    match result {
        Ok(_) => Outcome::Snapshot,
        Err(error) => Outcome::Failed(StoreError::backend(error).into()),
    }
}
