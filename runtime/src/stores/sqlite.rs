//! The SQLite event store: the embedded default. One file, durable by default, safe with many
//! writers in one process (group commit on one write connection) and with several processes on
//! one file (SQLite's write lock, waited for with a busy timeout).
//!
//! - Appends go through one write connection, used by the caller that finds it free (or, with
//!   inline projections, by a writer task). Each round takes every append queued so far into
//!   one `BEGIN IMMEDIATE` transaction: the appends of different streams go in as one
//!   conditional insert that checks each expected version (a savepoint per append only when
//!   that insert fails, to find the ones that conflict), and one `COMMIT` (one fsync) makes
//!   them all durable before any caller is answered.
//! - Reads use separate read-only connections; in WAL mode they never wait for the writer.
//! - That connection (without inline projections) and the reads of events and snapshots call
//!   SQLite through rusqlite; schema migrations, the projection target and leases go through
//!   sqlx (see `sqlite/native.rs`).
//! - Writes are serialized by SQLite, so global positions become visible in order: a reader of
//!   the log never sees a later position before an earlier one has committed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::contract::error::{AppendError, StoreError};
use crate::contract::event::{LogPosition, StoredEvent, StoredEventRef};
use crate::contract::store::{
    CommandRecord, DEFAULT_COMMAND_RETENTION, EventStore, LogWatch, NewEvent, Retention, Snapshot,
};
use crate::projection::InlineProjections;
use crate::stores::sql::store::{StoreSql, select_count};
use crate::stores::sql::{Statements as SqlStatements, Tables, to_i64, tokio_handle};

mod dialect;
mod migrations;
mod native;
mod projections;
mod writer;

use dialect::SqliteDialect;

pub use projections::{SqliteLease, SqliteTarget};

/// How durable a returned append is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A commit that returned survives power loss (`synchronous = FULL`). The default.
    #[default]
    Full,
    /// A commit that returned survives a crash of the process, but the last ones may be lost
    /// on power loss or an OS crash (`synchronous = NORMAL`). Never corrupts the file. Several
    /// times faster on disks with slow fsync.
    Relaxed,
}

/// Where and how to open an SQLite store.
///
/// ```no_run
/// use std::time::Duration;
/// use cqrs_runtime::sqlite::{Durability, SqliteConfig, SqliteStore};
///
/// # async fn open() -> Result<(), cqrs_runtime::StoreError> {
/// let store = SqliteStore::open(
///     SqliteConfig::new("bank.db")
///         .durability(Durability::Relaxed)
///         .table_prefix("bank_")
///         .busy_timeout(Duration::from_secs(10)),
/// )
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    path: PathBuf,
    durability: Durability,
    table_prefix: String,
    busy_timeout: Duration,
    readers: u32,
    max_batch: usize,
    command_retention: Duration,
}

impl SqliteConfig {
    /// A store in the file at `path`, created if missing, with the defaults: full durability,
    /// tables prefixed `cqrs_`, a 5 s busy timeout, 4 reader connections.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            path: path.into(),
            durability: Durability::Full,
            table_prefix: "cqrs_".to_owned(),
            busy_timeout: Duration::from_secs(5),
            readers: 4,
            max_batch: 512,
            command_retention: DEFAULT_COMMAND_RETENTION,
        }
    }

    /// How long command ids ([`Metadata::command_id`](crate::Metadata::command_id)) are kept:
    /// a command sent again after that runs again. A week by default.
    pub fn command_retention(mut self, retention: Duration) -> Self {
        self.command_retention = retention;
        self
    }

    /// Sets the durability of appends.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the prefix of the store's table names: letters, digits and underscores, starting
    /// with a letter or an underscore, not empty (`events` alone could be an application's
    /// table).
    pub fn table_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.table_prefix = prefix.into();
        self
    }

    /// How long a write waits for another process holding the file's write lock.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// How many connections serve reads.
    pub fn readers(mut self, readers: u32) -> Self {
        self.readers = readers.max(1);
        self
    }

    /// The most appends one commit may group.
    pub fn max_batch(mut self, appends: usize) -> Self {
        self.max_batch = appends.max(1);
        self
    }

    fn validate(&self) -> Result<Tables, StoreError> {
        let path = &self.path;
        let text = path.to_string_lossy();
        if text.is_empty() || text.contains('\0') {
            return Err(StoreError::Config(format!(
                "SQLite path {path:?} is not a file name; give a path such as \"data/events.db\""
            )));
        }
        if text == ":memory:" || text.starts_with("file:") {
            return Err(StoreError::Config(format!(
                "SQLite path {text:?} is not a file; the SQLite store keeps events on disk (use InMemoryStore for memory only)"
            )));
        }
        if path.is_dir() {
            return Err(StoreError::Config(format!(
                "SQLite path {path:?} is a directory; name a file inside it, e.g. {:?}",
                path.join("events.db")
            )));
        }
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(parent) = parent
            && !parent.is_dir()
        {
            return Err(StoreError::Config(format!(
                "the directory {parent:?} of SQLite path {path:?} does not exist; create it first"
            )));
        }
        Tables::with_prefix(&self.table_prefix)
    }

    fn connect_options(&self) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(&self.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match self.durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Relaxed => SqliteSynchronous::Normal,
            })
            .busy_timeout(self.busy_timeout)
            .foreign_keys(false)
            .disable_statement_logging()
    }
}

/// The SQL of one store, rendered once with its table names.
#[derive(Debug)]
struct Statements {
    sql: SqlStatements<StoreSql>,
    inserts: writer::Inserts,
    /// Records a command id, in the writer's transaction.
    insert_command: String,
    /// When the writer deletes old command ids.
    retention: Retention,
}

impl Statements {
    fn new(tables: &Tables, retention: Duration) -> Self {
        Statements {
            sql: SqlStatements::new(include_str!("sqlite/store.sql"), |sql| tables.render(sql)),
            inserts: writer::Inserts::new(&tables.events),
            insert_command: tables.render(
                "INSERT INTO {commands} (aggregate_type, aggregate_id, command_id, first_sequence, last_sequence, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            ),
            retention: Retention::new(retention),
        }
    }

    fn get(&self, statement: StoreSql) -> &str {
        self.sql.get(statement)
    }
}

/// Who commits appends and snapshots.
#[derive(Debug)]
enum Writer {
    /// The caller that finds the rusqlite connection free (see `native::Combiner`).
    Native(Arc<native::Combiner>),
    /// A tokio task with a sqlx connection, for inline projections.
    Task(mpsc::Sender<writer::Request>),
}

/// An event store in an SQLite file. Cloning shares the store (one writer, one reader pool).
///
/// Needs a tokio runtime: reads run on its blocking threads (and, with inline projections, the
/// writer is a task).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// For read models kept in the same file, and the event count.
    readers: SqlitePool,
    /// Streams, the log and snapshots.
    native: Arc<native::Readers>,
    writer: Writer,
    statements: Arc<Statements>,
    path: PathBuf,
    /// Signalled by the writer after each commit that appended events.
    appended: Arc<tokio::sync::watch::Sender<()>>,
    /// For the projection target's own connections.
    options: SqliteConnectOptions,
    tables: Tables,
}

impl SqliteStore {
    /// Opens (creating if needed) the store, applying pending schema migrations.
    pub async fn open(config: SqliteConfig) -> Result<Self, StoreError> {
        SqliteStore::open_with_inline(config, InlineProjections::new()).await
    }

    /// Opens the store with inline projections: each append applies them to its events in its
    /// own transaction, so their tables are up to date when the append returns; a failing
    /// handler fails that append only. See [`InlineProjections`].
    pub async fn open_with_inline(
        config: SqliteConfig,
        inline: InlineProjections<SqliteConnection>,
    ) -> Result<Self, StoreError> {
        let runtime = tokio_handle("SQLite")?;
        let tables = config.validate()?;
        let options = config.connect_options();
        // Migrations run on a connection of their own, closed once the schema is current.
        let migrator = SqliteDialect {
            pool: SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await
                .map_err(|e| open_error(&config.path, e))?,
        };
        let migrated = migrations::apply(&migrator, &tables).await;
        migrator.pool.close().await;
        migrated?;
        let readers = SqlitePoolOptions::new()
            .max_connections(config.readers)
            .min_connections(1)
            .connect_with(options.clone().read_only(true))
            .await
            .map_err(|e| open_error(&config.path, e))?;
        let statements = Arc::new(Statements::new(&tables, config.command_retention));
        let appended = Arc::new(tokio::sync::watch::Sender::new(()));
        let opener = native::Opener {
            path: config.path.clone(),
            durability: config.durability,
            busy_timeout: config.busy_timeout,
        };
        let writer = if inline.is_empty() {
            Writer::Native(Arc::new(native::Combiner::new(
                &opener,
                Arc::clone(&statements),
                config.max_batch,
                Arc::clone(&appended),
                runtime,
            )?))
        } else {
            // Inline projections write through the sqlx connection their handlers take, on a
            // writer task.
            let conn = options
                .connect()
                .await
                .map_err(|e| open_error(&config.path, e))?;
            let (sender, receiver) = mpsc::channel(config.max_batch * 4);
            runtime.spawn(writer::run(
                writer::SqlxWriter { conn, inline },
                receiver,
                Arc::clone(&statements),
                config.max_batch,
                Arc::clone(&appended),
            ));
            Writer::Task(sender)
        };
        let native = native::Readers::new(opener, Arc::clone(&statements), config.readers as usize);
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                readers,
                native: Arc::new(native),
                writer,
                statements,
                path: config.path,
                appended,
                options,
                tables,
            }),
        })
    }

    /// The file the store is in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A projection target in this store's file: read models, checkpoints, dead letters and
    /// leases share the events' database, so each event applies exactly once.
    pub fn projection_target(&self) -> SqliteTarget {
        SqliteTarget::new(self.inner.options.clone(), &self.inner.tables)
    }

    /// Hands a request to the writer and waits for its answer.
    async fn ask_writer<T>(
        &self,
        request: writer::Request,
        answer: oneshot::Receiver<T>,
    ) -> Result<T, StoreError> {
        let stopped = || StoreError::Backend("the SQLite writer has stopped".into());
        match &self.inner.writer {
            Writer::Native(combiner) => combiner.submit(request),
            Writer::Task(queue) => queue.send(request).await.map_err(|_| stopped())?,
        }
        answer.await.map_err(|_| stopped())
    }

    /// The shared statement runner on the reader pool.
    fn readers(&self) -> SqliteDialect {
        SqliteDialect {
            pool: self.inner.readers.clone(),
        }
    }

    /// The pool serving reads, for read models kept in the same file.
    pub fn read_pool(&self) -> &SqlitePool {
        &self.inner.readers
    }
}

fn open_error(path: &Path, error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("cannot open SQLite store {path:?}: {error}").into())
}

impl EventStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

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
        let (reply, answer) = oneshot::channel();
        let request = writer::Request::Append(
            writer::Append {
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id: aggregate_id.to_owned(),
                expected_version: to_i64(expected_version, "expected version")?,
                events: events.to_vec(),
                command: CommandRecord::of_append(
                    aggregate_type,
                    aggregate_id,
                    expected_version,
                    events,
                ),
            },
            reply,
        );
        self.ask_writer(request, answer).await?
    }

    async fn read_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        max: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner
            .native
            .stream(aggregate_type, aggregate_id, after, max)
            .await
    }

    /// The whole stream in one read on a blocking thread, each row lent as it steps.
    async fn fold_stream<T, F>(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        state: T,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut T, StoredEventRef<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        let all = usize::MAX;
        self.inner
            .native
            .fold(aggregate_type, aggregate_id, after, all, state, f)
            .await
    }

    /// The snapshot and the stream in one read on a blocking thread.
    async fn fold_aggregate<T, S, F>(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        fingerprint: Option<u64>,
        start: S,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        S: FnOnce(Option<Snapshot>) -> T + Send + 'static,
        F: FnMut(&mut T, StoredEventRef<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        self.inner
            .native
            .aggregate(aggregate_type, aggregate_id, fingerprint, start, f)
            .await
    }

    async fn read_all(
        &self,
        after: LogPosition,
        max: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.native.log(after.event, max).await
    }

    async fn read_all_of(
        &self,
        aggregate_types: &[&str],
        after: LogPosition,
        max: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner
            .native
            .log_of(aggregate_types, after.event, max)
            .await
    }

    async fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        self.inner
            .native
            .snapshot(aggregate_type, aggregate_id)
            .await
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        // Through the writer too: SQLite has one writer per file. The snapshot joins the next
        // group commit; it costs one upsert in it.
        let (reply, answer) = oneshot::channel();
        let request = writer::Request::Snapshot(snapshot.clone(), reply);
        self.ask_writer(request, answer).await?
    }

    async fn find_command(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        command_id: &str,
    ) -> Result<Option<CommandRecord>, StoreError> {
        self.inner
            .native
            .command(aggregate_type, aggregate_id, command_id)
            .await
    }

    async fn count_events(&self) -> Result<u64, StoreError> {
        let sql = self.inner.statements.get(StoreSql::CountEvents);
        select_count(&self.readers(), sql, "the event count").await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        let sql = self.inner.statements.get(StoreSql::SelectHead);
        select_count(&self.readers(), sql, "the log's head").await
    }

    /// Woken by this store's commits; commits of other processes on the same file are seen at
    /// the next poll.
    fn watch(&self, poll: Duration) -> LogWatch {
        LogWatch::local(self.inner.appended.subscribe(), poll)
    }
}
