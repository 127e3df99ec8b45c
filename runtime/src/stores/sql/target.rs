//! The one projection target of the SQL stores: checkpoints, dead letters, active versions
//! and the bus inbox, written once over a [`Dialect`] and run by SQLite and PostgreSQL alike.
//! Leases differ by database (lease rows that expire, advisory locks) and stay with each
//! backend.
//!
//! Values a row holds that a checkpoint, a version or an attempt count cannot be (negative,
//! out of range) are [`StoreError::Corrupt`] on both databases.

use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use super::dialect::{Dialect, On, Param, Row};
use super::{EventRow, Statements, encode_metadata, named_statements, to_i64};
use crate::contract::error::StoreError;
use crate::contract::event::LogPosition;
use crate::projection::{
    Advance, CommitError, DueDeadline, FollowerId, InstanceChange, ParkedEvent, ProjectionId,
    StoredInstance,
};

named_statements! {
    /// The statements of the shared target, in each backend's `projections.sql`.
    pub(crate) enum TargetSql {
        SelectCheckpoint = "select_checkpoint",
        InsertCheckpoint = "insert_checkpoint",
        AdvanceCheckpoint = "advance_checkpoint",
        DeleteCheckpoint = "delete_checkpoint",
        InsertDeadLetter = "insert_dead_letter",
        SelectDeadLetters = "select_dead_letters",
        DeleteDeadLetter = "delete_dead_letter",
        Activate = "activate",
        SelectActive = "select_active",
        RecordProcessed = "record_processed",
        PruneProcessed = "prune_processed",
        SelectInstance = "select_instance",
        SelectInstanceDeadlines = "select_instance_deadlines",
        UpsertInstance = "upsert_instance",
        DeleteInstance = "delete_instance",
        DeleteDeadlines = "delete_deadlines",
        InsertDeadline = "insert_deadline",
        SelectDue = "select_due",
        ArchiveInstance = "archive_instance",
        SelectArchived = "select_archived",
        SelectNextDue = "select_next_due",
        SelectRefusal = "select_refusal",
        InsertRefusal = "insert_refusal",
        DeleteRefusals = "delete_refusals",
    }
}

/// The shared target over a dialect. Cloning shares the statements and the pool.
#[derive(Debug, Clone)]
pub(crate) struct SqlTarget<D> {
    pub(crate) db: D,
    sql: Arc<Statements<TargetSql>>,
}

/// The largest version a target stores: PostgreSQL keeps versions in `INTEGER` columns, and
/// both databases refuse the same values.
fn version_param(version: u32, what: &str) -> Result<i64, StoreError> {
    i32::try_from(version).map(i64::from).map_err(|_| {
        StoreError::Config(format!(
            "{what} version {version} is above {}, the largest a projection target stores",
            i32::MAX
        ))
    })
}

fn key(follower: FollowerId) -> Result<(&'static str, i64), StoreError> {
    let (name, version) = follower.key();
    Ok((name, version_param(version, "the follower's")?))
}

impl<D: Dialect> SqlTarget<D> {
    /// A target on `db`, with the shared statements of `file` rendered by `render`.
    pub(crate) fn new(db: D, file: &str, render: impl Fn(&str) -> String) -> Self {
        SqlTarget {
            db,
            sql: Arc::new(Statements::new(file, render)),
        }
    }

    fn sql(&self, statement: TargetSql) -> &str {
        self.sql.get(statement)
    }

    pub(crate) async fn begin(&self) -> Result<D::Tx, StoreError> {
        self.db.begin().await
    }

    pub(crate) async fn commit(
        &self,
        mut tx: D::Tx,
        advance: Option<Advance>,
    ) -> Result<(), CommitError> {
        if let Some(advance) = advance {
            let (name, version) = key(advance.follower)?;
            let to = advance.to;
            let mut params = vec![
                Param::Text(name),
                Param::Int(version),
                Param::Int(to_i64(to.transaction, "position")?),
                Param::Int(to_i64(to.event, "position")?),
                Param::Time(Utc::now()),
            ];
            let statement = match advance.from {
                None => TargetSql::InsertCheckpoint,
                Some(from) => {
                    params.push(Param::Int(to_i64(from.transaction, "position")?));
                    params.push(Param::Int(to_i64(from.event, "position")?));
                    TargetSql::AdvanceCheckpoint
                }
            };
            let moved = self
                .db
                .execute(On::Tx(&mut tx), self.sql(statement), &params)
                .await?;
            if moved != 1 {
                self.rollback(tx).await;
                return Err(CommitError::Moved(advance.follower));
            }
        }
        D::commit(tx).await?;
        Ok(())
    }

    pub(crate) async fn rollback(&self, tx: D::Tx) {
        if let Err(error) = D::rollback(tx).await {
            tracing::debug!(%error, "rolling back a projection transaction failed; the connection discards it");
        }
    }

    pub(crate) async fn checkpoint(
        &self,
        follower: FollowerId,
    ) -> Result<Option<LogPosition>, StoreError> {
        let (name, version) = key(follower)?;
        let params = [Param::Text(name), Param::Int(version)];
        let sql = self.sql(TargetSql::SelectCheckpoint);
        let row = self
            .db
            .fetch_optional(On::Pool, sql, &params, "a checkpoint");
        let Some(row) = row.await? else {
            return Ok(None);
        };
        let (txn, position) = (row.int(0)?, row.int(1)?);
        match (u64::try_from(txn), u64::try_from(position)) {
            (Ok(transaction), Ok(event)) => Ok(Some(LogPosition { transaction, event })),
            _ => Err(StoreError::Corrupt(format!(
                "the checkpoint of {follower} is at a negative position ({txn}, {position})"
            ))),
        }
    }

    pub(crate) async fn clear_checkpoint(
        &self,
        tx: &mut D::Tx,
        follower: FollowerId,
    ) -> Result<(), StoreError> {
        let (name, version) = key(follower)?;
        let params = [Param::Text(name), Param::Int(version)];
        let sql = self.sql(TargetSql::DeleteCheckpoint);
        self.db.execute(On::Tx(tx), sql, &params).await?;
        Ok(())
    }

    pub(crate) async fn park(
        &self,
        tx: &mut D::Tx,
        projection: ProjectionId,
        parked: &ParkedEvent,
    ) -> Result<(), StoreError> {
        let (name, version) = key(projection.into())?;
        let e = &parked.event;
        let metadata = encode_metadata(&e.metadata);
        let params = [
            Param::Text(name),
            Param::Int(version),
            Param::Id(e.event_id),
            Param::Int(to_i64(e.position.transaction, "position")?),
            Param::Int(to_i64(e.position.event, "position")?),
            Param::Text(&e.aggregate_type),
            Param::Text(&e.aggregate_id),
            Param::Int(to_i64(e.sequence, "sequence")?),
            Param::Text(&e.event_type),
            Param::Int(version_param(e.event_version, "the parked event's")?),
            Param::Text(&e.event),
            Param::Text(&metadata),
            Param::Time(e.recorded_at),
            Param::Text(&parked.error),
            Param::Int(i64::from(parked.attempts)),
            Param::Time(parked.parked_at),
        ];
        let sql = self.sql(TargetSql::InsertDeadLetter);
        self.db.execute(On::Tx(tx), sql, &params).await?;
        Ok(())
    }

    pub(crate) async fn parked(
        &self,
        projection: ProjectionId,
    ) -> Result<Vec<ParkedEvent>, StoreError> {
        let (name, version) = key(projection.into())?;
        let params = [Param::Text(name), Param::Int(version)];
        let sql = self.sql(TargetSql::SelectDeadLetters);
        let rows = self
            .db
            .fetch(On::Pool, sql, &params, "a dead letter")
            .await?;
        rows.into_iter().map(parked_from_row).collect()
    }

    pub(crate) async fn unpark(
        &self,
        tx: &mut D::Tx,
        projection: ProjectionId,
        event_id: Uuid,
    ) -> Result<bool, StoreError> {
        let (name, version) = key(projection.into())?;
        let params = [Param::Text(name), Param::Int(version), Param::Id(event_id)];
        let sql = self.sql(TargetSql::DeleteDeadLetter);
        Ok(self.db.execute(On::Tx(tx), sql, &params).await? == 1)
    }

    pub(crate) async fn activate(
        &self,
        tx: &mut D::Tx,
        projection: ProjectionId,
    ) -> Result<(), StoreError> {
        let (name, version) = key(projection.into())?;
        let params = [Param::Text(name), Param::Int(version)];
        let sql = self.sql(TargetSql::Activate);
        self.db.execute(On::Tx(tx), sql, &params).await?;
        Ok(())
    }

    pub(crate) async fn active_version(&self, name: &str) -> Result<Option<u32>, StoreError> {
        let sql = self.sql(TargetSql::SelectActive);
        let params = [Param::Text(name)];
        let row = self
            .db
            .fetch_optional(On::Pool, sql, &params, "an active version");
        let Some(row) = row.await? else {
            return Ok(None);
        };
        let version = row.int(0)?;
        u32::try_from(version).map(Some).map_err(|_| {
            StoreError::Corrupt(format!("projection `{name}` has active version {version}"))
        })
    }

    pub(crate) async fn record(
        &self,
        tx: &mut D::Tx,
        consumer: &str,
        event_id: Uuid,
    ) -> Result<bool, StoreError> {
        let params = [
            Param::Text(consumer),
            Param::Id(event_id),
            Param::Time(Utc::now()),
        ];
        let sql = self.sql(TargetSql::RecordProcessed);
        Ok(self.db.execute(On::Tx(tx), sql, &params).await? == 1)
    }

    pub(crate) async fn prune(
        &self,
        consumer: &str,
        before: chrono::DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let params = [Param::Text(consumer), Param::Time(before)];
        let sql = self.sql(TargetSql::PruneProcessed);
        self.db.execute(On::Pool, sql, &params).await
    }
}

impl<D: Dialect> SqlTarget<D> {
    pub(crate) async fn instance(
        &self,
        manager: &str,
        id: &str,
    ) -> Result<Option<StoredInstance>, StoreError> {
        let found = self.text_by(
            TargetSql::SelectInstance,
            (manager, id),
            "a process instance",
        );
        let Some(state) = found.await? else {
            return Ok(None);
        };
        let params = [Param::Text(manager), Param::Text(id)];
        let sql = self.sql(TargetSql::SelectInstanceDeadlines);
        let rows = self
            .db
            .fetch(On::Pool, sql, &params, "a process deadline")
            .await?;
        let deadlines = rows
            .into_iter()
            .map(|mut row| Ok((row.text(0)?, row.time(1)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok(Some(StoredInstance { state, deadlines }))
    }

    pub(crate) async fn save_instance(
        &self,
        tx: &mut D::Tx,
        manager: &str,
        id: &str,
        change: InstanceChange<'_>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let key = [Param::Text(manager), Param::Text(id)];
        let unchanged = matches!(
            change,
            InstanceChange::Running {
                deadlines_changed: false,
                ..
            }
        );
        // Most events leave an instance's deadlines as they were: then only its state is
        // written.
        if !unchanged {
            let sql = self.sql(TargetSql::DeleteDeadlines);
            self.db.execute(On::Tx(tx), sql, &key).await?;
        }
        match change {
            InstanceChange::Running { instance, .. } => {
                let params = [
                    Param::Text(manager),
                    Param::Text(id),
                    Param::Text(&instance.state),
                    Param::Time(now),
                ];
                let sql = self.sql(TargetSql::UpsertInstance);
                self.db.execute(On::Tx(tx), sql, &params).await?;
                for (name, due) in instance.deadlines.iter().filter(|_| !unchanged) {
                    let params = [
                        Param::Text(manager),
                        Param::Text(id),
                        Param::Text(name),
                        Param::Time(*due),
                    ];
                    let sql = self.sql(TargetSql::InsertDeadline);
                    self.db.execute(On::Tx(tx), sql, &params).await?;
                }
            }
            InstanceChange::Completed { archive } => {
                let sql = self.sql(TargetSql::DeleteInstance);
                self.db.execute(On::Tx(tx), sql, &key).await?;
                let sql = self.sql(TargetSql::DeleteRefusals);
                self.db.execute(On::Tx(tx), sql, &key).await?;
                if let Some(state) = archive {
                    let params = [
                        Param::Text(manager),
                        Param::Text(id),
                        Param::Text(state),
                        Param::Time(now),
                    ];
                    let sql = self.sql(TargetSql::ArchiveInstance);
                    self.db.execute(On::Tx(tx), sql, &params).await?;
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn due_deadlines(
        &self,
        manager: &str,
        now: chrono::DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueDeadline>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let params = [Param::Text(manager), Param::Time(now), Param::Int(limit)];
        let sql = self.sql(TargetSql::SelectDue);
        let rows = self
            .db
            .fetch(On::Pool, sql, &params, "a due deadline")
            .await?;
        rows.into_iter()
            .map(|mut row| {
                Ok(DueDeadline {
                    instance: row.text(0)?,
                    name: row.text(1)?,
                    due: row.time(2)?,
                })
            })
            .collect()
    }

    pub(crate) async fn refusal(
        &self,
        manager: &str,
        command_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let key = (manager, command_id);
        self.text_by(TargetSql::SelectRefusal, key, "a refused command")
            .await
    }

    pub(crate) async fn record_refusal(
        &self,
        manager: &str,
        instance: &str,
        command_id: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let params = [
            Param::Text(manager),
            Param::Text(command_id),
            Param::Text(instance),
            Param::Text(reason),
            Param::Time(Utc::now()),
        ];
        let sql = self.sql(TargetSql::InsertRefusal);
        self.db.execute(On::Pool, sql, &params).await?;
        Ok(())
    }

    pub(crate) async fn next_deadline(
        &self,
        manager: &str,
    ) -> Result<Option<chrono::DateTime<Utc>>, StoreError> {
        let params = [Param::Text(manager)];
        let sql = self.sql(TargetSql::SelectNextDue);
        let row = self
            .db
            .fetch_optional(On::Pool, sql, &params, "the next deadline")
            .await?;
        row.map(|row| row.time(0)).transpose()
    }

    pub(crate) async fn archived(
        &self,
        manager: &str,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let key = (manager, id);
        self.text_by(
            TargetSql::SelectArchived,
            key,
            "an archived process instance",
        )
        .await
    }

    /// The one text column of a query by a manager and a key, if a row matches.
    async fn text_by(
        &self,
        statement: TargetSql,
        (manager, key): (&str, &str),
        what: &'static str,
    ) -> Result<Option<String>, StoreError> {
        let params = [Param::Text(manager), Param::Text(key)];
        let sql = self.sql(statement);
        let row = self.db.fetch_optional(On::Pool, sql, &params, what).await?;
        row.map(|mut row| row.text(0)).transpose()
    }
}

/// A row of `select_dead_letters`: the stored event, then the error, attempts and time.
fn parked_from_row(mut row: Row) -> Result<ParkedEvent, StoreError> {
    let (aggregate_type, aggregate_id) = (row.text(2)?, row.text(3)?);
    let (event_type, payload, metadata) = (row.text(6)?, row.text(8)?, row.text(9)?);
    let event = EventRow {
        transaction: Some(row.int(0)?),
        position: row.int(1)?,
        aggregate_type: &aggregate_type,
        aggregate_id: &aggregate_id,
        sequence: row.int(4)?,
        event_id: row.id(5)?,
        event_type: &event_type,
        event_version: row.int(7)?,
        payload: &payload,
        metadata: &metadata,
        recorded_at: row.time(10)?,
    }
    .into_stored()?;
    Ok(ParkedEvent {
        event,
        error: row.text(11)?,
        attempts: row.int_as(12, "attempts")?,
        parked_at: row.time(13)?,
    })
}

/// Implements the target traits but [`Leases`](crate::projection::Leases) for a public target
/// type with a field `sql: SqlTarget<D>`, by handing each call to it (the connection and
/// transaction types are `D`'s, named again because `D` is private).
macro_rules! sql_target_traits {
    ($target:ty, connection = $conn:ty, transaction = $tx:ty) => {
        impl $crate::projection::Checkpoints for $target {
            type Connection = $conn;
            type Transaction = $tx;
            const ATOMIC: bool = true;

            fn connection(tx: &mut Self::Transaction) -> &mut Self::Connection {
                tx
            }

            async fn begin(&self) -> Result<Self::Transaction, StoreError> {
                self.sql.begin().await
            }

            async fn commit(
                &self,
                tx: Self::Transaction,
                advance: Option<$crate::projection::Advance>,
            ) -> Result<(), $crate::projection::CommitError> {
                self.sql.commit(tx, advance).await
            }

            async fn rollback(&self, tx: Self::Transaction) {
                self.sql.rollback(tx).await
            }

            async fn checkpoint(
                &self,
                follower: impl Into<$crate::projection::FollowerId> + Send,
            ) -> Result<Option<$crate::contract::event::LogPosition>, StoreError> {
                self.sql.checkpoint(follower.into()).await
            }

            async fn clear_checkpoint(
                &self,
                tx: &mut Self::Transaction,
                follower: impl Into<$crate::projection::FollowerId> + Send,
            ) -> Result<(), StoreError> {
                self.sql.clear_checkpoint(tx, follower.into()).await
            }
        }

        impl $crate::projection::DeadLetters for $target {
            async fn park(
                &self,
                tx: &mut Self::Transaction,
                projection: $crate::projection::ProjectionId,
                parked: &$crate::projection::ParkedEvent,
            ) -> Result<(), StoreError> {
                self.sql.park(tx, projection, parked).await
            }

            async fn parked(
                &self,
                projection: $crate::projection::ProjectionId,
            ) -> Result<Vec<$crate::projection::ParkedEvent>, StoreError> {
                self.sql.parked(projection).await
            }

            async fn unpark(
                &self,
                tx: &mut Self::Transaction,
                projection: $crate::projection::ProjectionId,
                event_id: uuid::Uuid,
            ) -> Result<bool, StoreError> {
                self.sql.unpark(tx, projection, event_id).await
            }
        }

        impl $crate::projection::Versions for $target {
            async fn activate(
                &self,
                tx: &mut Self::Transaction,
                projection: $crate::projection::ProjectionId,
            ) -> Result<(), StoreError> {
                self.sql.activate(tx, projection).await
            }

            async fn active_version(&self, name: &str) -> Result<Option<u32>, StoreError> {
                self.sql.active_version(name).await
            }
        }

        impl $crate::projection::Inbox for $target {
            async fn record(
                &self,
                tx: &mut Self::Transaction,
                consumer: &str,
                event_id: uuid::Uuid,
            ) -> Result<bool, StoreError> {
                self.sql.record(tx, consumer, event_id).await
            }

            async fn prune(
                &self,
                consumer: &str,
                before: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, StoreError> {
                self.sql.prune(consumer, before).await
            }
        }

        impl $crate::projection::Instances for $target {
            async fn instance(
                &self,
                manager: &str,
                id: &str,
            ) -> Result<Option<$crate::projection::StoredInstance>, StoreError> {
                self.sql.instance(manager, id).await
            }

            async fn save_instance(
                &self,
                tx: &mut Self::Transaction,
                manager: &str,
                id: &str,
                change: $crate::projection::InstanceChange<'_>,
            ) -> Result<(), StoreError> {
                self.sql.save_instance(tx, manager, id, change).await
            }

            async fn due_deadlines(
                &self,
                manager: &str,
                now: chrono::DateTime<chrono::Utc>,
                limit: usize,
            ) -> Result<Vec<$crate::projection::DueDeadline>, StoreError> {
                self.sql.due_deadlines(manager, now, limit).await
            }

            async fn refusal(
                &self,
                manager: &str,
                command_id: &str,
            ) -> Result<Option<String>, StoreError> {
                self.sql.refusal(manager, command_id).await
            }

            async fn record_refusal(
                &self,
                manager: &str,
                instance: &str,
                command_id: &str,
                reason: &str,
            ) -> Result<(), StoreError> {
                self.sql
                    .record_refusal(manager, instance, command_id, reason)
                    .await
            }

            async fn next_deadline(
                &self,
                manager: &str,
            ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
                self.sql.next_deadline(manager).await
            }

            async fn archived(
                &self,
                manager: &str,
                id: &str,
            ) -> Result<Option<String>, StoreError> {
                self.sql.archived(manager, id).await
            }
        }
    };
}
pub(crate) use sql_target_traits;
