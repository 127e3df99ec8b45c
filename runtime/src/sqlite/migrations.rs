//! Versioned, embedded schema migrations, applied on open in one transaction. Each migration is
//! an `.sql` file beside this one, rendered with the store's table names.

use sqlx::{Connection, Row, SqliteConnection};

use crate::error::StoreError;
use crate::sql::Tables;

/// Every migration, in order. Never edit a released one: add the next.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_events_and_snapshots.sql")),
    (2, include_str!("migrations/0002_projections.sql")),
    (3, include_str!("migrations/0003_inbox.sql")),
];

/// Brings the schema to the newest version this code knows; refuses a newer database.
pub(super) async fn apply(conn: &mut SqliteConnection, tables: &Tables) -> Result<(), StoreError> {
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(StoreError::backend)?;
    let create = tables.render(
        "CREATE TABLE IF NOT EXISTS {migrations} (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    );
    sqlx::query(&create)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
    let current: i64 =
        sqlx::query(&tables.render("SELECT COALESCE(MAX(version), 0) FROM {migrations}"))
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(StoreError::backend)?;
    let newest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > newest {
        return Err(StoreError::Config(format!(
            "the database schema is at version {current}, newer than this code knows ({newest}); run a newer release of the service"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        sqlx::raw_sql(&tables.render(sql))
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::Backend(format!("schema migration {version} failed: {e}").into())
            })?;
        sqlx::query(
            &tables.render("INSERT INTO {migrations} (version, applied_at) VALUES (?1, ?2)"),
        )
        .bind(version)
        .bind(chrono::Utc::now().timestamp_micros())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
    }
    tx.commit().await.map_err(StoreError::backend)
}
