//! Where and how to connect a PostgreSQL store, and the object names derived from it.

use std::str::FromStr;
use std::time::Duration;

use crate::contract::store::DEFAULT_COMMAND_RETENTION;

use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

use crate::contract::error::StoreError;
use crate::stores::sql::check_identifier;

/// PostgreSQL's longest identifier, in bytes.
const MAX_IDENTIFIER: usize = 63;

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
    pub(super) url: String,
    pub(super) schema: String,
    pub(super) table_prefix: String,
    pub(super) max_connections: u32,
    pub(super) connect_timeout: Duration,
    pub(super) migrate: bool,
    pub(super) command_retention: Duration,
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
            .field("command_retention", &self.command_retention)
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
            command_retention: DEFAULT_COMMAND_RETENTION,
        }
    }

    /// How long command ids ([`Metadata::command_id`](crate::Metadata::command_id)) are kept:
    /// a command sent again after that runs again. A week by default.
    pub fn command_retention(mut self, retention: Duration) -> Self {
        self.command_retention = retention;
        self
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

    /// Whether [`PostgresStore::connect`](super::PostgresStore::connect) applies pending schema migrations (the default), or
    /// leaves them to an explicit [`PostgresStore::migrate`](super::PostgresStore::migrate) (for deployments that migrate in
    /// a separate step, with other database rights).
    pub fn migrate_on_connect(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    pub(super) fn names(&self) -> Result<Names, StoreError> {
        check_identifier(&self.schema, "schema name", true, false, MAX_IDENTIFIER)?;
        check_identifier(&self.table_prefix, "table prefix", true, true, 40)?;
        Ok(Names::new(&self.schema, &self.table_prefix))
    }

    pub(super) fn connect_options(&self) -> Result<PgConnectOptions, StoreError> {
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
pub(super) fn redact(url: &str) -> String {
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
pub(super) struct Names {
    pub(super) schema: String,
    pub(super) events: String,
    pub(super) snapshots: String,
    pub(super) migrations: String,
    pub(super) channel: String,
    replacements: Vec<(&'static str, String)>,
}

impl Names {
    pub(super) fn new(schema: &str, prefix: &str) -> Self {
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
                "{events_log_by_type}",
                format!("{prefix}events_log_by_type"),
            ),
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
            ("{commands_key}", format!("{prefix}commands_key")),
            ("{commands_by_time}", format!("{prefix}commands_by_time")),
            ("{commands}", format!("{schema}.{prefix}commands")),
            (
                "{process_instances}",
                format!("{schema}.{prefix}process_instances"),
            ),
            (
                "{process_deadlines_due}",
                format!("{prefix}process_deadlines_due"),
            ),
            (
                "{process_deadlines}",
                format!("{schema}.{prefix}process_deadlines"),
            ),
            (
                "{process_archive}",
                format!("{schema}.{prefix}process_archive"),
            ),
            (
                "{process_refusals_by_instance}",
                format!("{prefix}process_refusals_by_instance"),
            ),
            (
                "{process_refusals}",
                format!("{schema}.{prefix}process_refusals"),
            ),
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

    pub(super) fn render(&self, template: &str) -> String {
        self.replacements
            .iter()
            .fold(template.to_owned(), |sql, (from, to)| sql.replace(from, to))
    }

    pub(super) fn stream_sequence_constraint(&self) -> &str {
        &self.replacements[3].1
    }

    /// The primary key of the command ids: violated by an append whose command id the stream
    /// has recorded already.
    pub(super) fn commands_key(&self) -> &str {
        &self.replacements[10].1
    }
}
