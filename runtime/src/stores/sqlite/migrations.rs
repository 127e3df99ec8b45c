//! Versioned, embedded schema migrations, applied on open in one transaction by the shared
//! runner. Each migration is an `.sql` file beside this one, rendered with the store's table
//! names.

use super::dialect::SqliteDialect;
use crate::contract::error::StoreError;
use crate::stores::sql::Tables;
use crate::stores::sql::store::{Migrations, migrate};

/// Every migration, in order. Never edit a released one: add the next.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_events_and_snapshots.sql")),
    (2, include_str!("migrations/0002_projections.sql")),
    (3, include_str!("migrations/0003_inbox.sql")),
    (4, include_str!("migrations/0004_log_by_type.sql")),
    (5, include_str!("migrations/0005_commands.sql")),
    (6, include_str!("migrations/0006_process_managers.sql")),
];

/// Brings the schema to the newest version this code knows; refuses a newer database.
pub(super) async fn apply(db: &SqliteDialect, tables: &Tables) -> Result<(), StoreError> {
    let render = |sql: &str| tables.render(sql);
    let migrations = Migrations {
        files: MIGRATIONS,
        setup: tables.render(
            "CREATE TABLE IF NOT EXISTS {migrations} (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        ),
        select_version: tables.render("SELECT COALESCE(MAX(version), 0) FROM {migrations}"),
        insert_version: tables
            .render("INSERT INTO {migrations} (version, applied_at) VALUES (?1, ?2)"),
        render: &render,
        what: "the database schema".to_owned(),
    };
    migrate(db, &migrations).await
}
