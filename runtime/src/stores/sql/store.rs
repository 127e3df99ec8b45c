//! The store operations both SQL databases run alike, over their [`Dialect`]: snapshots,
//! the event count, and the schema migration runner.

use chrono::Utc;

use super::dialect::{Dialect, On, Param};
use super::{i64_to_u64, named_statements, to_i64, u64_to_i64};
use crate::contract::error::StoreError;
use crate::contract::store::Snapshot;

named_statements! {
    /// The statements of an SQL event store, in each backend's `store.sql`.
    pub(crate) enum StoreSql {
        SelectStream = "select_stream",
        SelectAggregate = "select_aggregate",
        SelectLog = "select_log",
        SelectLogOf = "select_log_of",
        SelectVersion = "select_version",
        SelectSnapshot = "select_snapshot",
        UpsertSnapshot = "upsert_snapshot",
        CountEvents = "count_events",
        SelectHead = "select_head",
        SelectCommand = "select_command",
        PruneCommands = "prune_commands",
        ForgetCommand = "forget_command",
    }
}

/// The newest snapshot of an aggregate, from `select_snapshot.sql` (version, fingerprint,
/// state); a negative version is [`StoreError::Corrupt`]. (SQLite reads its snapshots through
/// rusqlite instead.)
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) async fn load_snapshot<D: Dialect>(
    db: &D,
    sql: &str,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Option<Snapshot>, StoreError> {
    let params = [Param::Text(aggregate_type), Param::Text(aggregate_id)];
    let row = db
        .fetch_optional(On::Pool, sql, &params, "a snapshot")
        .await?;
    let Some(mut row) = row else {
        return Ok(None);
    };
    let version = row.int(0)?;
    Ok(Some(Snapshot {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        version: u64::try_from(version).map_err(|_| {
            StoreError::Corrupt(format!(
                "snapshot of {aggregate_type} `{aggregate_id}` has version {version}"
            ))
        })?,
        fingerprint: i64_to_u64(row.int(1)?),
        state: row.text(2)?,
    }))
}

/// The parameters of `upsert_snapshot.sql`: type, id, version, fingerprint, state, time.
pub(crate) fn snapshot_params(snapshot: &Snapshot) -> Result<[Param<'_>; 6], StoreError> {
    Ok([
        Param::Text(&snapshot.aggregate_type),
        Param::Text(&snapshot.aggregate_id),
        Param::Int(to_i64(snapshot.version, "snapshot version")?),
        Param::Int(u64_to_i64(snapshot.fingerprint)),
        Param::Text(&snapshot.state),
        Param::Time(Utc::now()),
    ])
}

/// Stores a snapshot with `upsert_snapshot.sql`, on the pool. (SQLite stores its snapshots
/// through its writer thread instead.)
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) async fn save_snapshot<D: Dialect>(
    db: &D,
    sql: &str,
    snapshot: &Snapshot,
) -> Result<(), StoreError> {
    db.execute(On::Pool, sql, &snapshot_params(snapshot)?)
        .await?;
    Ok(())
}

/// The one non-negative integer `sql` selects (`count_events`, `select_head`), 0 for no row.
pub(crate) async fn select_count<D: Dialect>(
    db: &D,
    sql: &str,
    what: &'static str,
) -> Result<u64, StoreError> {
    let row = db.fetch_optional(On::Pool, sql, &[], what).await?;
    let count = row.map_or(Ok(0), |row| row.int(0))?;
    Ok(count.unsigned_abs())
}

/// A store's migrations: the files, in order, and the statements that keep their record.
pub(crate) struct Migrations<'a> {
    /// Every migration, in order. Never edit a released one: add the next.
    pub(crate) files: &'static [(i64, &'static str)],
    /// Run first in the migration transaction: a lock, the migrations table.
    pub(crate) setup: String,
    /// The newest version applied (one row, one integer).
    pub(crate) select_version: String,
    /// Records a version: `(version, applied_at)`.
    pub(crate) insert_version: String,
    /// Renders a file's table placeholders.
    pub(crate) render: &'a (dyn Fn(&str) -> String + Sync),
    /// What the schema is, for errors: "the database schema", "the database schema `bank`".
    pub(crate) what: String,
}

/// Brings the schema to the newest version this code knows, in one transaction; refuses a
/// database newer than this code.
pub(crate) async fn migrate<D: Dialect>(db: &D, m: &Migrations<'_>) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    D::script(&mut tx, &m.setup).await?;
    let row = db.fetch_optional(
        On::Tx(&mut tx),
        &m.select_version,
        &[],
        "the schema version",
    );
    let current = row.await?.map_or(Ok(0), |row| row.int(0))?;
    let newest = m.files.last().map_or(0, |(v, _)| *v);
    if current > newest {
        return Err(StoreError::SchemaTooNew {
            what: m.what.clone(),
            found: current,
            known: newest,
        });
    }
    for (version, sql) in m.files.iter().filter(|(v, _)| *v > current) {
        D::script(&mut tx, &(m.render)(sql)).await.map_err(|e| {
            StoreError::Backend(format!("schema migration {version} failed: {e}").into())
        })?;
        let params = [Param::Int(*version), Param::Time(Utc::now())];
        db.execute(On::Tx(&mut tx), &m.insert_version, &params)
            .await?;
    }
    D::commit(tx).await
}
