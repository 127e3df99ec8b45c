//! The PostgreSQL event store: many service instances on many machines sharing one database.
//!
//! - Appends are one statement each: a conditional insert that checks the stream's version, and
//!   the unique `(aggregate_type, aggregate_id, sequence)` constraint makes two racing writers
//!   resolve in the database itself: the loser gets the typed conflict, never a lost update.
//! - The global log is read in `(transaction id, position)` order and only up to the oldest
//!   transaction still running (`pg_snapshot_xmin(pg_current_snapshot())`): an event whose
//!   transaction commits after later ones is delivered when it commits, never skipped. Appends
//!   take no lock shared by all streams; the cost is one `xid8` column and one index.
//! - After its appends commit, each store instance notifies `LISTEN`ers from a background task,
//!   coalescing notifications while one is in flight. Not in the append's own transaction:
//!   PostgreSQL serializes the commits of notifying transactions on its notification queue,
//!   which measured as a lock across all appends. [`LogWaker`] waits for a notification, or for
//!   a poll interval (the fallback, which also covers an instance that died before notifying).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, PgConnection, Row};
use uuid::Uuid;

use crate::error::{AppendError, Conflict, StoreError};
use crate::event::{LogPosition, StoredEvent};
use crate::projection::InlineProjections;
use crate::sql::{
    EventRow, check_identifier, encode_metadata, snapshot_from_row, to_i64, tokio_handle,
    u64_to_i64,
};
pub use crate::store::Wake;
use crate::store::{EventStore, LogWatch, NewEvent, Snapshot};

mod projections;

pub use projections::{PostgresLease, PostgresTarget};

/// PostgreSQL's longest identifier, in bytes.
const MAX_IDENTIFIER: usize = 63;

/// Every migration, in order. Never edit a released one: add the next.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        include_str!("postgres/migrations/0001_events_and_snapshots.sql"),
    ),
    (2, include_str!("postgres/migrations/0002_projections.sql")),
    (3, include_str!("postgres/migrations/0003_inbox.sql")),
];

/// Where and how to connect a PostgreSQL store.
///
/// ```no_run
/// use cqrs_runtime::postgres::{PostgresConfig, PostgresStore};
///
/// # async fn connect() -> Result<(), cqrs_runtime::StoreError> {
/// let store = PostgresStore::connect(
///     PostgresConfig::new("postgres://app@db.internal/bank")
///         .schema("bank")
///         .max_connections(32),
/// )
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresConfig {
    url: String,
    schema: String,
    table_prefix: String,
    max_connections: u32,
    connect_timeout: Duration,
    migrate: bool,
}

impl std::fmt::Debug for PostgresConfig {
    // The URL may hold a password: show where it points, not who connects.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact(&self.url))
            .field("schema", &self.schema)
            .field("table_prefix", &self.table_prefix)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("migrate", &self.migrate)
            .finish()
    }
}

impl PostgresConfig {
    /// A store at the database `url` (`postgres://user:password@host:port/database`), with the
    /// defaults: schema `public`, tables prefixed `cqrs_`, 16 connections, 30 s to get a
    /// connection, schema migrations applied on connect.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            schema: "public".to_owned(),
            table_prefix: "cqrs_".to_owned(),
            max_connections: 16,
            connect_timeout: Duration::from_secs(30),
            migrate: true,
        }
    }

    /// How long connecting, or waiting for a free pooled connection, may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The schema holding the store's tables (created if missing): lowercase letters, digits
    /// and underscores.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The prefix of the store's table names: lowercase letters, digits and underscores.
    pub fn table_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.table_prefix = prefix.into();
        self
    }

    /// The size of the connection pool.
    pub fn max_connections(mut self, connections: u32) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// Whether [`PostgresStore::connect`] applies pending schema migrations (the default), or
    /// leaves them to an explicit [`PostgresStore::migrate`] (for deployments that migrate in
    /// a separate step, with other database rights).
    pub fn migrate_on_connect(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    fn names(&self) -> Result<Names, StoreError> {
        check_identifier(&self.schema, "schema name", true, false, MAX_IDENTIFIER)?;
        check_identifier(&self.table_prefix, "table prefix", true, true, 40)?;
        Ok(Names::new(&self.schema, &self.table_prefix))
    }

    fn connect_options(&self) -> Result<PgConnectOptions, StoreError> {
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err(StoreError::Config(format!(
                "invalid PostgreSQL URL {}: it must start with postgres:// or postgresql://",
                redact(&self.url)
            )));
        }
        PgConnectOptions::from_str(&self.url)
            .map(|o| o.disable_statement_logging())
            .map_err(|e| {
                StoreError::Config(format!(
                    "invalid PostgreSQL URL {}: {e}; expected postgres://user:password@host:port/database",
                    redact(&self.url)
                ))
            })
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// The store's object names, all derived from a validated schema and prefix.
#[derive(Debug, Clone)]
struct Names {
    schema: String,
    events: String,
    snapshots: String,
    migrations: String,
    channel: String,
    replacements: Vec<(&'static str, String)>,
}

impl Names {
    fn new(schema: &str, prefix: &str) -> Self {
        let events = format!("{schema}.{prefix}events");
        let channel = format!("{schema}_{prefix}events");
        let replacements = vec![
            ("{events}", events.clone()),
            ("{snapshots}", format!("{schema}.{prefix}snapshots")),
            (
                "{migrations}",
                format!("{schema}.{prefix}schema_migrations"),
            ),
            (
                "{events_stream_sequence}",
                format!("{prefix}events_stream_sequence"),
            ),
            ("{events_log}", format!("{prefix}events_log")),
            (
                "{checkpoints}",
                format!("{schema}.{prefix}projection_checkpoints"),
            ),
            (
                "{dead_letters}",
                format!("{schema}.{prefix}projection_dead_letters"),
            ),
            (
                "{projection_versions}",
                format!("{schema}.{prefix}projection_versions"),
            ),
            ("{inbox}", format!("{schema}.{prefix}bus_inbox")),
        ];
        Names {
            schema: schema.to_owned(),
            snapshots: format!("{schema}.{prefix}snapshots"),
            migrations: format!("{schema}.{prefix}schema_migrations"),
            events,
            channel,
            replacements,
        }
    }

    fn render(&self, template: &str) -> String {
        self.replacements
            .iter()
            .fold(template.to_owned(), |sql, (from, to)| sql.replace(from, to))
    }

    fn stream_sequence_constraint(&self) -> &str {
        &self.replacements[3].1
    }
}

#[derive(Debug)]
struct Statements {
    append: String,
    select_version: String,
    select_stream: String,
    select_log: String,
    select_snapshot: String,
    upsert_snapshot: String,
}

impl Statements {
    fn new(names: &Names) -> Self {
        Statements {
            append: names.render(include_str!("postgres/append.sql")),
            select_version: names.render(include_str!("postgres/select_version.sql")),
            select_stream: names.render(include_str!("postgres/select_stream.sql")),
            select_log: names.render(include_str!("postgres/select_log.sql")),
            select_snapshot: names.render(include_str!("postgres/select_snapshot.sql")),
            upsert_snapshot: names.render(include_str!("postgres/upsert_snapshot.sql")),
        }
    }
}

/// An event store in a PostgreSQL database. Cloning shares the connection pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    names: Names,
    statements: Statements,
    /// Wakes the notifier task after a commit.
    appended: Arc<tokio::sync::Notify>,
    /// For connections outside the pool (projection leases).
    options: PgConnectOptions,
    /// Applied in each append's transaction; `None` when there are none.
    inline: Option<tokio::sync::Mutex<InlineProjections<PgConnection>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Ends the notifier task (it holds only a weak interest: see `notifier`).
        self.appended.notify_one();
    }
}

/// At most one notification per this interval per store instance: followers re-read the log
/// from their checkpoint on every wake, so one notification covers any number of commits, and
/// a busy writer does not pay a notification per append.
const NOTIFY_INTERVAL: Duration = Duration::from_millis(5);

/// Sends one `pg_notify` per wake-up, then rests for [`NOTIFY_INTERVAL`]; wake-ups meanwhile
/// fold into the next one. Stops when the store is dropped.
async fn notifier(
    pool: PgPool,
    channel: String,
    appended: Arc<tokio::sync::Notify>,
    store: std::sync::Weak<Inner>,
) {
    loop {
        appended.notified().await;
        if store.strong_count() == 0 {
            return;
        }
        if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(&channel)
            .execute(&pool)
            .await
        {
            tracing::debug!(%error, %channel, "cannot notify followers; they will poll");
        }
        tokio::time::sleep(NOTIFY_INTERVAL).await;
    }
}

impl PostgresStore {
    /// Connects, and applies pending schema migrations unless configured not to.
    pub async fn connect(config: PostgresConfig) -> Result<Self, StoreError> {
        PostgresStore::connect_with_inline(config, InlineProjections::new()).await
    }

    /// Connects with inline projections: each append applies them to its events in its own
    /// transaction, so their tables are up to date when the append returns; a failing handler
    /// fails the append. Appends with inline projections take turns through their handlers
    /// (one `&mut` projection), so keep the handlers short. See [`InlineProjections`].
    pub async fn connect_with_inline(
        config: PostgresConfig,
        inline: InlineProjections<PgConnection>,
    ) -> Result<Self, StoreError> {
        let runtime = tokio_handle("PostgreSQL")?;
        let names = config.names()?;
        let options = config.connect_options()?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.connect_timeout)
            .connect_with(options.clone())
            .await
            .map_err(|e| {
                StoreError::Backend(
                    format!(
                        "cannot connect to PostgreSQL at {}: {e}",
                        redact(&config.url)
                    )
                    .into(),
                )
            })?;
        let appended = Arc::new(tokio::sync::Notify::new());
        let inner = Arc::new(Inner {
            statements: Statements::new(&names),
            names,
            pool,
            appended: Arc::clone(&appended),
            options,
            inline: (!inline.is_empty()).then(|| tokio::sync::Mutex::new(inline)),
        });
        runtime.spawn(notifier(
            inner.pool.clone(),
            inner.names.channel.clone(),
            appended,
            Arc::downgrade(&inner),
        ));
        let store = PostgresStore { inner };
        if config.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Brings the schema to the newest version this code knows, in one transaction that holds
    /// an advisory lock, so that instances starting together migrate once. A database whose
    /// schema is newer than this code is refused.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let names = &self.inner.names;
        let mut tx = self.inner.pool.begin().await.map_err(StoreError::backend)?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(&names.migrations)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        let setup = format!(
            "CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE IF NOT EXISTS {} (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            names.schema, names.migrations
        );
        sqlx::raw_sql(&setup)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        let current: i64 = sqlx::query(&format!(
            "SELECT COALESCE(MAX(version), 0) FROM {}",
            names.migrations
        ))
        .fetch_one(&mut *tx)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(StoreError::backend)?;
        let newest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
        if current > newest {
            return Err(StoreError::Config(format!(
                "the database schema {} is at version {current}, newer than this code knows ({newest}); run a newer release of the service",
                names.schema
            )));
        }
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            sqlx::raw_sql(&names.render(sql))
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    StoreError::Backend(format!("schema migration {version} failed: {e}").into())
                })?;
            sqlx::query(&format!(
                "INSERT INTO {} (version) VALUES ($1)",
                names.migrations
            ))
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        }
        tx.commit().await.map_err(StoreError::backend)
    }

    /// The connection pool, for read models kept in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The `LISTEN` channel notified when events are appended.
    pub fn channel(&self) -> &str {
        &self.inner.names.channel
    }

    /// The qualified name of the events table, e.g. `public.cqrs_events`.
    pub fn events_table(&self) -> &str {
        &self.inner.names.events
    }

    /// The qualified name of the snapshots table.
    pub fn snapshots_table(&self) -> &str {
        &self.inner.names.snapshots
    }

    /// A projection target in this store's database: read models, checkpoints and dead letters
    /// share the events' database, so each event applies exactly once.
    pub fn projection_target(&self) -> PostgresTarget {
        PostgresTarget::new(
            self.inner.pool.clone(),
            self.inner.options.clone(),
            &self.inner.names,
        )
    }

    /// A waker for followers of the log: woken by a notification, or after `poll` at the
    /// latest (the fallback, and the only path while the listening connection is down).
    pub fn waker(&self, poll: Duration) -> LogWaker {
        LogWaker {
            pool: self.inner.pool.clone(),
            channel: self.inner.names.channel.clone(),
            listener: None,
            poll,
        }
    }

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

    async fn read_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(&self.inner.statements.select_stream)
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
        let rows = sqlx::query(&self.inner.statements.select_log)
            .bind(after.transaction.to_string())
            .bind(to_i64(after.event, "position")?)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.inner.pool)
            .await;
        Self::decode_events(rows, None)
    }

    async fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        let row = sqlx::query(&self.inner.statements.select_snapshot)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(StoreError::backend)?;
        row.map(|row| snapshot_from_row(aggregate_type, aggregate_id, &row))
            .transpose()
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        sqlx::query(&self.inner.statements.upsert_snapshot)
            .bind(&snapshot.aggregate_type)
            .bind(&snapshot.aggregate_id)
            .bind(to_i64(snapshot.version, "snapshot version")?)
            .bind(u64_to_i64(snapshot.fingerprint))
            .bind(&snapshot.state)
            .execute(&self.inner.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    async fn count_events(&self) -> Result<u64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM {}", self.inner.names.events);
        let count: i64 = sqlx::query_scalar(&sql)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(count.unsigned_abs())
    }

    fn watch(&self, poll: Duration) -> LogWatch {
        LogWatch::postgres(self.waker(poll), poll)
    }
}

/// Waits until new events may be in the log: a `LISTEN` notification, or the poll interval.
///
/// Notifications are hints, not data: a follower re-reads the log from its checkpoint after
/// every wake, so a lost notification only delays it to the next poll.
pub struct LogWaker {
    pool: PgPool,
    channel: String,
    listener: Option<PgListener>,
    poll: Duration,
}

impl std::fmt::Debug for LogWaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWaker")
            .field("channel", &self.channel)
            .field("listening", &self.listener.is_some())
            .field("poll", &self.poll)
            .finish()
    }
}

impl LogWaker {
    /// Starts listening now, so that appends made from here on wake the next [`wait`](Self::wait).
    pub async fn listen(&mut self) -> Result<(), StoreError> {
        if self.listener.is_none() {
            let mut listener = PgListener::connect_with(&self.pool)
                .await
                .map_err(StoreError::backend)?;
            listener
                .listen(&self.channel)
                .await
                .map_err(StoreError::backend)?;
            self.listener = Some(listener);
        }
        Ok(())
    }

    /// Waits for a notification, or for the poll interval at most.
    pub async fn wait(&mut self) -> Wake {
        if let Err(error) = self.listen().await {
            tracing::warn!(%error, channel = %self.channel, "cannot listen for new events; polling");
            tokio::time::sleep(self.poll).await;
            return Wake::Polled;
        }
        let Some(listener) = self.listener.as_mut() else {
            tokio::time::sleep(self.poll).await;
            return Wake::Polled;
        };
        match tokio::time::timeout(self.poll, listener.try_recv()).await {
            Err(_elapsed) => Wake::Polled,
            Ok(Ok(Some(_))) => {
                // Several commits may have notified: one re-read covers them all.
                while listener.next_buffered().is_some() {}
                Wake::Notified
            }
            // The connection dropped (notifications may be lost): read the log now; the
            // listener reconnects on the next wait.
            Ok(Ok(None)) => Wake::Polled,
            Ok(Err(error)) => {
                tracing::warn!(%error, channel = %self.channel, "the listening connection failed; polling");
                self.listener = None;
                Wake::Polled
            }
        }
    }
}
