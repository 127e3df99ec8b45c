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

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::contract::error::StoreError;
use crate::contract::store::Retention;
pub use crate::contract::store::Wake;
use crate::projection::InlineProjections;
use crate::stores::sql::store::{Migrations, StoreSql, migrate};
use crate::stores::sql::{Statements as SqlStatements, named_statements, tokio_handle};

mod config;
mod dialect;
mod events;
mod projections;
mod waker;

pub use config::PostgresConfig;
pub use projections::{PostgresLease, PostgresTarget};
pub use waker::LogWaker;

use config::{Names, redact};
use dialect::PgDialect;
use waker::notifier;

/// Every migration, in order. Never edit a released one: add the next.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        include_str!("postgres/migrations/0001_events_and_snapshots.sql"),
    ),
    (2, include_str!("postgres/migrations/0002_projections.sql")),
    (3, include_str!("postgres/migrations/0003_inbox.sql")),
    (4, include_str!("postgres/migrations/0004_log_by_type.sql")),
    (5, include_str!("postgres/migrations/0005_commands.sql")),
    (
        6,
        include_str!("postgres/migrations/0006_process_managers.sql"),
    ),
];

named_statements! {
    /// PostgreSQL's own statement of `store.sql`: the append is one conditional insert.
    enum AppendSql {
        Append = "append",
        AppendCommand = "append_command",
    }
}

/// The SQL of one store, rendered once with its object names.
#[derive(Debug)]
struct Statements {
    store: SqlStatements<StoreSql>,
    append: SqlStatements<AppendSql>,
}

impl Statements {
    fn new(names: &Names) -> Self {
        let file = include_str!("postgres/store.sql");
        let render = |sql: &str| names.render(sql);
        Statements {
            store: SqlStatements::new(file, render),
            append: SqlStatements::new(file, render),
        }
    }

    fn get(&self, statement: StoreSql) -> &str {
        self.store.get(statement)
    }

    fn query(&self, statement: StoreSql) -> sqlx::SqlStr {
        self.store.query(statement)
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
    /// When appends delete old command ids.
    retention: Retention,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Ends the notifier task (it holds only a weak interest: see `notifier`).
        self.appended.notify_one();
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
        let cannot = |why: String| {
            StoreError::Backend(
                format!(
                    "cannot connect to PostgreSQL at {}: {why}",
                    redact(&config.url)
                )
                .into(),
            )
        };
        // The pool retries a failing connection until its timeout and then says only that it
        // timed out: one direct attempt first says what is wrong (refused, an unknown host, a
        // wrong password).
        match tokio::time::timeout(
            config.connect_timeout,
            <PgConnection as sqlx::Connection>::connect_with(&options),
        )
        .await
        {
            Ok(Ok(connection)) => {
                let _ = sqlx::Connection::close(connection).await;
            }
            Ok(Err(error)) => return Err(cannot(error.to_string())),
            Err(_) => {
                return Err(cannot(format!(
                    "no answer within {:?}",
                    config.connect_timeout
                )));
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.connect_timeout)
            .connect_with(options.clone())
            .await
            .map_err(|e| cannot(e.to_string()))?;
        let appended = Arc::new(tokio::sync::Notify::new());
        let inner = Arc::new(Inner {
            statements: Statements::new(&names),
            names,
            pool,
            appended: Arc::clone(&appended),
            options,
            inline: (!inline.is_empty()).then(|| tokio::sync::Mutex::new(inline)),
            retention: Retention::new(config.command_retention),
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
        let render = |sql: &str| names.render(sql);
        let migrations = Migrations {
            files: MIGRATIONS,
            // Identifiers only (validated): safe inside the lock key's literal.
            setup: format!(
                "SELECT pg_advisory_xact_lock(hashtextextended('{migrations}', 0)); \
                 CREATE SCHEMA IF NOT EXISTS {schema}; \
                 CREATE TABLE IF NOT EXISTS {migrations} (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                migrations = names.migrations,
                schema = names.schema,
            ),
            select_version: format!("SELECT COALESCE(MAX(version), 0) FROM {}", names.migrations),
            insert_version: format!(
                "INSERT INTO {} (version, applied_at) VALUES ($1, $2)",
                names.migrations
            ),
            render: &render,
            what: format!("the database schema {}", names.schema),
        };
        migrate(&self.db(), &migrations).await
    }

    /// The shared statement runner on the store's pool.
    fn db(&self) -> PgDialect {
        PgDialect {
            pool: self.inner.pool.clone(),
        }
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
}
