//! The store's hot paths through rusqlite: appends on the thread of the caller that finds the
//! write connection free (`Combiner`), and stream, log and snapshot reads on tokio's blocking
//! threads. Each statement is a call into SQLite on the
//! calling thread, where sqlx's SQLite driver hands every statement to a worker thread and
//! waits for its answer: measured on one writer with relaxed durability, an append took about
//! 8 times as long through sqlx as the same transaction through rusqlite (BENCHMARKS.md).
//!
//! Both drivers link the same SQLite library (rusqlite 0.32 and sqlx 0.9 share
//! `libsqlite3-sys` 0.30), and migrations, projection targets and leases keep sqlx.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::time::Duration;

use futures::FutureExt;
use rusqlite::types::ValueRef;
use rusqlite::{CachedStatement, Connection, OpenFlags};
use uuid::Uuid;

use super::writer::{self, WriteConnection};
use super::{Durability, Statements, open_error};
use crate::contract::error::StoreError;
use crate::contract::event::{LogPosition, StoredEvent, StoredEventRef};
use crate::contract::store::{CommandRecord, Snapshot};
use crate::stores::sql::dialect::{Cell, Param, Row};
use crate::stores::sql::store::StoreSql;
use crate::stores::sql::{decode_metadata, i64_to_u64, to_i64, u64_to_i64};

/// Distinct statements a connection keeps prepared: the reads, and the writer's inserts of 1 to
/// 256 rows (one statement per row count).
const PREPARED: usize = 300;

/// How a connection of the store is opened.
#[derive(Debug, Clone)]
pub(super) struct Opener {
    pub(super) path: PathBuf,
    pub(super) durability: Durability,
    pub(super) busy_timeout: Duration,
}

impl Opener {
    /// A connection with the store's pragmas; the file exists and is in WAL mode (the
    /// migrations ran first).
    fn open(&self, read_only: bool) -> Result<Connection, StoreError> {
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let opened = Connection::open_with_flags(&self.path, flags).and_then(|conn| {
            conn.busy_timeout(self.busy_timeout)?;
            conn.set_prepared_statement_cache_capacity(PREPARED);
            if !read_only {
                let synchronous = match self.durability {
                    Durability::Full => "FULL",
                    Durability::Relaxed => "NORMAL",
                };
                conn.pragma_update(None, "synchronous", synchronous)?;
                conn.pragma_update(None, "foreign_keys", "OFF")?;
            }
            Ok(conn)
        });
        opened.map_err(|e| open_error(&self.path, e))
    }
}

/// The write connection, used by whichever caller finds it free: group commit without a
/// writer thread.
///
/// A caller queues its request, then tries to take the connection. If it gets it, it commits
/// every queued request (its own and those of callers that came while the connection was busy)
/// in one transaction, answers them all, and looks again, until the queue is empty. If the
/// connection is busy, its holder will find the request there, and the caller waits for its
/// answer. An uncontended append is then one SQLite transaction on the caller's thread with no
/// thread wake-up at all; contended appends share commits as they did with a writer thread.
///
/// The holder blocks its thread for the commit (with `Durability::Full`, for the fsync too),
/// as any synchronous SQLite call does. A holder that has committed a few rounds for others
/// hands the rest to a blocking thread, so that no caller waits long on other callers' work.
#[derive(Debug)]
pub(super) struct Combiner {
    queue: Mutex<Vec<writer::Request>>,
    conn: Mutex<NativeWriter>,
    statements: Arc<Statements>,
    max_batch: usize,
    appended: Arc<tokio::sync::watch::Sender<()>>,
    runtime: tokio::runtime::Handle,
}

/// Rounds a caller commits before it hands what is left to a blocking thread.
const ROUNDS: usize = 4;

impl Combiner {
    pub(super) fn new(
        opener: &Opener,
        statements: Arc<Statements>,
        max_batch: usize,
        appended: Arc<tokio::sync::watch::Sender<()>>,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, StoreError> {
        Ok(Combiner {
            queue: Mutex::new(Vec::new()),
            conn: Mutex::new(NativeWriter {
                conn: opener.open(false)?,
            }),
            statements,
            max_batch,
            appended,
            runtime,
        })
    }

    /// Queues a request and commits the queue if the connection is free. The request is
    /// answered through its own reply channel, by this call or by the connection's holder.
    pub(super) fn submit(self: &Arc<Self>, request: writer::Request) {
        lock(&self.queue).push(request);
        self.drain(ROUNDS);
    }

    /// Commits queued requests while the connection is free and the queue is not empty, for at
    /// most `rounds` rounds; then a blocking thread takes over what is left.
    fn drain(self: &Arc<Self>, mut rounds: usize) {
        loop {
            let mut conn = match self.conn.try_lock() {
                Ok(conn) => conn,
                // A panic elsewhere cannot leave the connection inside a transaction: every
                // round ends with `COMMIT` or `ROLLBACK`, and the next `BEGIN` fails otherwise.
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                // Busy: its holder looks at the queue again before it lets go.
                Err(TryLockError::WouldBlock) => return,
            };
            loop {
                if rounds == 0 {
                    drop(conn);
                    let combiner = Arc::clone(self);
                    self.runtime
                        .spawn_blocking(move || combiner.drain(usize::MAX));
                    return;
                }
                let batch: Vec<writer::Request> = {
                    let mut queue = lock(&self.queue);
                    let take = queue.len().min(self.max_batch);
                    queue.drain(..take).collect()
                };
                if batch.is_empty() {
                    break;
                }
                rounds -= 1;
                let result = writer::commit(&mut *conn, &self.statements, &batch)
                    .now_or_never()
                    .unwrap_or_else(|| {
                        Err(StoreError::Backend(
                            "the SQLite writer waited on its own connection".into(),
                        ))
                    });
                writer::settle(batch.into_iter(), result, &self.appended);
            }
            drop(conn);
            // A request queued after the last look, while the connection was still taken, was
            // left for this holder: look once more.
            if lock(&self.queue).is_empty() {
                return;
            }
        }
    }
}

/// A lock that a panic elsewhere left poisoned still guards a consistent value here: every
/// critical section is a single push, drain or commit round.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The writer's rusqlite connection. Its futures never wait: each completes on its first poll.
#[derive(Debug)]
struct NativeWriter {
    conn: Connection,
}

impl WriteConnection for NativeWriter {
    async fn script(&mut self, sql: &str) -> Result<(), StoreError> {
        self.conn.execute_batch(sql).map_err(StoreError::backend)
    }

    async fn rows(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        what: &'static str,
    ) -> Result<Vec<Row>, StoreError> {
        let mut statement = self.conn.prepare_cached(sql).map_err(StoreError::backend)?;
        bind(&mut statement, params)?;
        let columns = statement.column_count();
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(StoreError::backend)? {
            let cells = (0..columns)
                .map(|i| cell(row, i, what))
                .collect::<Result<_, _>>()?;
            out.push(Row::new(cells, what));
        }
        Ok(out)
    }

    fn has_inline(&self) -> bool {
        false
    }

    async fn inline(&mut self, _: &[StoredEvent]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Binds the shared parameters the way the sqlx dialect does: ids as 16 bytes, times as
/// microseconds since the epoch.
fn bind(statement: &mut CachedStatement<'_>, params: &[Param<'_>]) -> Result<(), StoreError> {
    for (i, param) in params.iter().enumerate() {
        let at = i + 1;
        let bound = match param {
            Param::Int(n) => statement.raw_bind_parameter(at, n),
            Param::Text(text) => statement.raw_bind_parameter(at, text),
            Param::Id(id) => statement.raw_bind_parameter(at, id.as_bytes().as_slice()),
            Param::Time(time) => statement.raw_bind_parameter(at, time.timestamp_micros()),
        };
        bound.map_err(StoreError::backend)?;
    }
    Ok(())
}

fn cell(row: &rusqlite::Row<'_>, i: usize, what: &str) -> Result<Cell, StoreError> {
    Ok(match row.get_ref(i).map_err(StoreError::backend)? {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(n) => Cell::Int(n),
        ValueRef::Text(bytes) => Cell::Text(
            String::from_utf8(bytes.to_vec())
                .map_err(|_| StoreError::Corrupt(format!("column {i} of {what} is not UTF-8")))?,
        ),
        ValueRef::Blob(bytes) => Cell::Bytes(bytes.to_vec()),
        ValueRef::Real(_) => {
            return Err(StoreError::Corrupt(format!(
                "column {i} of {what} holds a value of SQLite type REAL"
            )));
        }
    })
}

/// Read-only connections, used one at a time on tokio's blocking threads and kept for reuse.
#[derive(Debug)]
pub(super) struct Readers {
    opener: Opener,
    statements: Arc<Statements>,
    idle: Mutex<Vec<Connection>>,
    /// How many idle connections are kept; more are opened under load and closed after.
    keep: usize,
}

impl Readers {
    pub(super) fn new(opener: Opener, statements: Arc<Statements>, keep: usize) -> Self {
        Readers {
            opener,
            statements,
            idle: Mutex::new(Vec::new()),
            keep,
        }
    }

    /// Runs `read` on a connection, on a blocking thread.
    async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Connection, &Statements) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = Arc::clone(self);
        let task = tokio::task::spawn_blocking(move || {
            let idle = lock(&readers.idle).pop();
            let conn = match idle {
                Some(conn) => conn,
                None => readers.opener.open(true)?,
            };
            let result = read(&conn, &readers.statements);
            let mut idle = lock(&readers.idle);
            // A connection left inside a transaction (a failed `COMMIT`) is closed, not kept.
            if idle.len() < readers.keep && conn.is_autocommit() {
                idle.push(conn);
            }
            result
        });
        task.await.map_err(|e| {
            StoreError::Backend(format!("an SQLite read did not finish: {e}").into())
        })?
    }

    /// Up to `limit` events of a stream after sequence `after`.
    pub(super) async fn stream(
        self: &Arc<Self>,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let events = Vec::with_capacity(limit.min(256));
        self.fold(
            aggregate_type,
            aggregate_id,
            after,
            limit,
            events,
            |events, event| {
                events.push(event.to_stored());
                Ok(())
            },
        )
        .await
    }

    /// Folds the events of a stream after sequence `after` (at most `limit`) into `state` on a
    /// blocking thread, lending each to `f` borrowed from its row.
    pub(super) async fn fold<T, F>(
        self: &Arc<Self>,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: usize,
        mut state: T,
        mut f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut T, StoredEventRef<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        let (aggregate_type, aggregate_id) = (aggregate_type.to_owned(), aggregate_id.to_owned());
        let after = to_i64(after, "sequence")?;
        self.read(move |conn, statements| {
            let stream = (aggregate_type.as_str(), aggregate_id.as_str());
            fold_rows(conn, statements, stream, (after, limit), &mut state, &mut f)?;
            Ok(state)
        })
        .await
    }

    /// [`EventStore::fold_aggregate`](crate::EventStore::fold_aggregate): the snapshot (when
    /// `fingerprint` is given), then the stream from where it says, in one read on one
    /// connection.
    pub(super) async fn aggregate<T, S, F>(
        self: &Arc<Self>,
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
        let (aggregate_type, aggregate_id) = (aggregate_type.to_owned(), aggregate_id.to_owned());
        let fingerprint = fingerprint.map(u64_to_i64);
        self.read(move |conn, statements| {
            let stream = (aggregate_type.as_str(), aggregate_id.as_str());
            let sql = statements.get(StoreSql::SelectAggregate);
            let mut statement = conn.prepare_cached(sql).map_err(StoreError::backend)?;
            let params = (stream.0, stream.1, fingerprint);
            let mut rows = statement.query(params).map_err(StoreError::backend)?;
            let first = rows.next().map_err(StoreError::backend)?;
            let (mut state, first) = match first {
                Some(row) if matches!(row.get_ref(1), Ok(ValueRef::Integer(0))) => {
                    (start(Some(snapshot_row(row, stream, [4, 0, 5])?)), None)
                }
                first => (start(None), first),
            };
            if let Some(row) = first {
                lend_row(row, stream, |event| f(&mut state, event))?;
            }
            while let Some(row) = rows.next().map_err(StoreError::backend)? {
                lend_row(row, stream, |event| f(&mut state, event))?;
            }
            Ok(state)
        })
        .await
    }

    /// Up to `limit` events of the log after `position`.
    pub(super) async fn log(
        self: &Arc<Self>,
        position: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let position = to_i64(position, "position")?;
        self.read(move |conn, statements| {
            let sql = statements.get(StoreSql::SelectLog);
            read_log(conn, sql, (position, sql_limit(limit)), limit)
        })
        .await
    }

    /// Up to `limit` events of the aggregate types `types` in the log after `position`: the
    /// first `limit` of each type, read in one read transaction (one snapshot of the file, so
    /// that no type's range is cut later than another's), merged in position order.
    pub(super) async fn log_of(
        self: &Arc<Self>,
        types: &[&str],
        position: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let position = to_i64(position, "position")?;
        let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        self.read(move |conn, statements| {
            let sql = statements.get(StoreSql::SelectLogOf);
            let read = || {
                let mut events = Vec::new();
                for aggregate_type in &types {
                    let params = (aggregate_type, position, sql_limit(limit));
                    events.extend(read_log(conn, sql, params, limit)?);
                }
                events.sort_unstable_by_key(|e| e.position);
                events.truncate(limit);
                Ok(events)
            };
            if types.len() < 2 {
                return read();
            }
            conn.execute_batch("BEGIN").map_err(StoreError::backend)?;
            let events = read();
            // A read transaction has nothing to keep: ending it cannot lose anything.
            let _ = conn.execute_batch("COMMIT");
            events
        })
        .await
    }

    /// The snapshot of an aggregate, if any.
    pub(super) async fn snapshot(
        self: &Arc<Self>,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        let (aggregate_type, aggregate_id) = (aggregate_type.to_owned(), aggregate_id.to_owned());
        self.read(move |conn, statements| {
            read_snapshot(conn, statements, (&aggregate_type, &aggregate_id))
        })
        .await
    }
}

impl Readers {
    /// The record of a command id on a stream, unless the retention forgot it.
    pub(super) async fn command(
        self: &Arc<Self>,
        aggregate_type: &str,
        aggregate_id: &str,
        command_id: &str,
    ) -> Result<Option<CommandRecord>, StoreError> {
        let key = (
            aggregate_type.to_owned(),
            aggregate_id.to_owned(),
            command_id.to_owned(),
        );
        self.read(move |conn, statements| {
            let (aggregate_type, aggregate_id, command_id) = key;
            let cutoff = statements
                .retention
                .cutoff()
                .map_or(i64::MIN, |at| at.timestamp_micros());
            let sql = statements.get(StoreSql::SelectCommand);
            let mut statement = conn.prepare_cached(sql).map_err(StoreError::backend)?;
            let mut rows = statement
                .query((&aggregate_type, &aggregate_id, &command_id, cutoff))
                .map_err(StoreError::backend)?;
            let Some(row) = rows.next().map_err(StoreError::backend)? else {
                return Ok(None);
            };
            let column = |i: usize| -> Result<i64, StoreError> {
                row.get(i).map_err(|e| {
                    StoreError::Corrupt(format!(
                        "the record of command `{command_id}` on {aggregate_type} `{aggregate_id}`: {e}"
                    ))
                })
            };
            let (first, last, at) = (column(0)?, column(1)?, column(2)?);
            Ok(Some(CommandRecord {
                first_sequence: first.unsigned_abs(),
                last_sequence: last.unsigned_abs(),
                recorded_at: chrono::DateTime::from_timestamp_micros(at).unwrap_or_default(),
                aggregate_type,
                aggregate_id,
                command_id,
            }))
        })
        .await
    }
}

/// Lends the events of a stream after sequence `after` (at most `limit`) to `f`.
fn fold_rows<T>(
    conn: &Connection,
    statements: &Statements,
    stream: (&str, &str),
    (after, limit): (i64, usize),
    state: &mut T,
    f: &mut impl FnMut(&mut T, StoredEventRef<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let sql = statements.get(StoreSql::SelectStream);
    let mut statement = conn.prepare_cached(sql).map_err(StoreError::backend)?;
    let params = (stream.0, stream.1, after, sql_limit(limit));
    let mut rows = statement.query(params).map_err(StoreError::backend)?;
    while let Some(row) = rows.next().map_err(StoreError::backend)? {
        lend_row(row, stream, |event| f(state, event))?;
    }
    Ok(())
}

/// The stored snapshot of an aggregate, if any.
fn read_snapshot(
    conn: &Connection,
    statements: &Statements,
    stream: (&str, &str),
) -> Result<Option<Snapshot>, StoreError> {
    let sql = statements.get(StoreSql::SelectSnapshot);
    let mut statement = conn.prepare_cached(sql).map_err(StoreError::backend)?;
    let mut rows = statement.query(stream).map_err(StoreError::backend)?;
    match rows.next().map_err(StoreError::backend)? {
        Some(row) => snapshot_row(row, stream, [0, 1, 2]).map(Some),
        None => Ok(None),
    }
}

/// A snapshot from the columns `[version, fingerprint, state]` of a row.
fn snapshot_row(
    row: &rusqlite::Row<'_>,
    (aggregate_type, aggregate_id): (&str, &str),
    [version, fingerprint, state]: [usize; 3],
) -> Result<Snapshot, StoreError> {
    let corrupt = |what: &str| {
        StoreError::Corrupt(format!(
            "the snapshot of {aggregate_type} `{aggregate_id}`: {what}"
        ))
    };
    let version: i64 = row.get(version).map_err(|e| corrupt(&e.to_string()))?;
    let fingerprint: i64 = row.get(fingerprint).map_err(|e| corrupt(&e.to_string()))?;
    let state = text(row, state, "state")
        .map_err(|why| corrupt(&why))?
        .to_owned();
    let version =
        u64::try_from(version).map_err(|_| corrupt(&format!("version {version} is negative")))?;
    Ok(Snapshot {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        version,
        fingerprint: i64_to_u64(fingerprint),
        state,
    })
}

/// Reads rows of `select_log` or `select_log_of` (whose last two columns are the aggregate type
/// and id) as owned events.
fn read_log(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(StoreError::backend)?;
    let mut rows = statement.query(params).map_err(StoreError::backend)?;
    let mut events = Vec::with_capacity(limit.min(256));
    while let Some(row) = rows.next().map_err(StoreError::backend)? {
        let named = |i, what| {
            text(row, i, what).map_err(|why| {
                let position = row.get_ref(0).ok().and_then(|v| v.as_i64().ok());
                let position = position.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
                StoreError::Corrupt(format!("the event at position {position}: {why}"))
            })
        };
        let stream = (named(8, "aggregate type")?, named(9, "aggregate id")?);
        lend_row(row, stream, |event| {
            events.push(event.to_stored());
            Ok(())
        })?;
    }
    Ok(events)
}

/// A page size as an SQL integer.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A text column, borrowed from the row; anything else is corrupt data: what is wrong with
/// the column `what`, for the caller to say which row it is in.
fn text<'r>(row: &'r rusqlite::Row<'_>, i: usize, what: &str) -> Result<&'r str, String> {
    match row.get_ref(i) {
        Ok(ValueRef::Text(bytes)) => {
            std::str::from_utf8(bytes).map_err(|_| format!("its {what} is not UTF-8"))
        }
        Ok(other) => {
            let kind = match other.data_type() {
                rusqlite::types::Type::Null => "NULL",
                rusqlite::types::Type::Integer => "an INTEGER",
                rusqlite::types::Type::Real => "a REAL",
                rusqlite::types::Type::Blob => "a BLOB",
                rusqlite::types::Type::Text => "TEXT",
            };
            Err(format!("its {what} is {kind}, expected TEXT"))
        }
        Err(error) => Err(format!("its {what} cannot be read: {error}")),
    }
}

/// Lends one row of `select_stream` or `select_log` to `lend`: position, sequence, event id,
/// type, version, payload, metadata, time (then, in the log, aggregate type and id). Every
/// column is checked; a bad one is [`StoreError::Corrupt`] naming the row.
fn lend_row(
    row: &rusqlite::Row<'_>,
    (aggregate_type, aggregate_id): (&str, &str),
    lend: impl FnOnce(StoredEventRef<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let int = |i: usize, what: &str| -> Result<i64, StoreError> {
        match row.get_ref(i) {
            Ok(ValueRef::Integer(n)) => Ok(n),
            other => Err(StoreError::Corrupt(format!(
                "an event of {aggregate_type} `{aggregate_id}`: its {what} is not an integer ({:?})",
                other.map(|value| value.data_type())
            ))),
        }
    };
    let position = int(0, "position")?;
    let sequence = int(1, "sequence")?;
    let corrupt = |what: String| {
        StoreError::Corrupt(format!(
            "{aggregate_type} `{aggregate_id}` sequence {sequence} (position {position}): {what}"
        ))
    };
    let event_id = match row.get_ref(2) {
        Ok(ValueRef::Blob(bytes)) => Uuid::from_slice(bytes).ok(),
        _ => None,
    }
    .ok_or_else(|| corrupt("event id is not 16 bytes".into()))?;
    let version = int(4, "event version")?;
    let micros = int(7, "time")?;
    let column = |i, what| text(row, i, what).map_err(&corrupt);
    let metadata = decode_metadata(column(6, "metadata")?)
        .map_err(|e| corrupt(format!("metadata is not valid: {e}")))?;
    lend(StoredEventRef {
        aggregate_type,
        aggregate_id,
        sequence: u64::try_from(sequence)
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| corrupt("sequence below 1".into()))?,
        position: LogPosition::serial(
            u64::try_from(position)
                .map_err(|_| corrupt(format!("negative position {position}")))?,
        ),
        event_id,
        event_type: column(3, "type")?,
        event_version: u32::try_from(version)
            .map_err(|_| corrupt(format!("event version {version} out of range")))?,
        recorded_at: chrono::DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| corrupt("timestamp out of range".into()))?,
        metadata,
        event: column(5, "payload")?,
    })
}
