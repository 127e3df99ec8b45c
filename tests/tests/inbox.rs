//! The inbox on each target (memory, SQLite, PostgreSQL): a processed event id is recorded once
//! per consumer; pruning forgets the ids older than its cutoff, and only that consumer's; a
//! subscriber with `keep_processed_ids` prunes when it starts, so that a message whose id was
//! forgotten is applied again, and without it the same message is skipped as a duplicate.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use cqrs_runtime::bus::memory::MemoryBroker;
use cqrs_runtime::bus::{Inbox, Message, MessageHandler, Subscriber, SubscriberStats};
use cqrs_runtime::projection::MemoryTarget;
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_runtime::{BoxError, Metadata};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Records `id` as processed by `consumer` in a transaction of its own; `false` for a duplicate.
async fn record<T: Inbox>(target: &T, consumer: &str, id: Uuid) -> bool {
    let mut tx = target.begin().await.unwrap();
    let fresh = target.record(&mut tx, consumer, id).await.unwrap();
    if fresh {
        target.commit(tx, None).await.unwrap();
    } else {
        target.rollback(tx).await;
    }
    fresh
}

async fn pruning_forgets_old_ids_of_one_consumer<T: Inbox>(target: T) {
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    assert!(record(&target, "ledger", a).await);
    assert!(record(&target, "ledger", b).await);
    assert!(record(&target, "audit", a).await);
    assert!(!record(&target, "ledger", a).await, "a duplicate");

    let an_hour_ago = Utc::now() - TimeDelta::hours(1);
    assert_eq!(target.prune("ledger", an_hour_ago).await.unwrap(), 0);
    assert!(
        !record(&target, "ledger", b).await,
        "younger than the cutoff: kept"
    );

    let cutoff = Utc::now() + TimeDelta::seconds(1);
    assert_eq!(target.prune("ledger", cutoff).await.unwrap(), 2);
    assert!(
        record(&target, "ledger", a).await,
        "forgotten, so new again"
    );
    assert!(
        !record(&target, "audit", a).await,
        "another consumer's ids stay"
    );
}

#[tokio::test]
async fn memory_inbox_prunes() {
    pruning_forgets_old_ids_of_one_consumer(MemoryTarget::new()).await;
}

#[tokio::test]
async fn sqlite_inbox_prunes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("inbox.db")))
        .await
        .unwrap();
    pruning_forgets_old_ids_of_one_consumer(store.projection_target()).await;
}

#[tokio::test]
async fn postgres_inbox_prunes() {
    use cqrs_runtime::postgres::{PostgresConfig, PostgresStore};
    let Some(url) = cqrs_tests::database_url("PostgreSQL inbox tests") else {
        return;
    };
    let schema = format!("t_{}", Uuid::now_v7().simple());
    let store = PostgresStore::connect(PostgresConfig::new(url).schema(&schema))
        .await
        .unwrap();
    pruning_forgets_old_ids_of_one_consumer(store.projection_target()).await;
}

/// Says which event ids it handled, in order.
struct Handled(mpsc::UnboundedSender<Uuid>);

impl MessageHandler<()> for Handled {
    async fn handle(&mut self, message: &Message, _: &mut ()) -> Result<(), BoxError> {
        let _ = self.0.send(message.event_id);
        Ok(())
    }
}

fn message(event_id: Uuid) -> Message {
    Message {
        topic: "orders".into(),
        key: "o-1".into(),
        event_id,
        event_type: "Placed".into(),
        event_version: 1,
        aggregate_type: "order".into(),
        sequence: 1,
        recorded_at: Utc::now(),
        metadata: Metadata::default(),
        payload: "{}".into(),
    }
}

/// A subscriber that processed `old` in an earlier life is handed `old` again and then `new`;
/// it runs until it has handled `new`. Returns what it handled and its stats.
async fn redelivered(keep: Option<Duration>) -> (Vec<Uuid>, SubscriberStats) {
    let (old, new) = (Uuid::now_v7(), Uuid::now_v7());
    let target = MemoryTarget::new();
    assert!(record(&target, "orders", old).await);
    let broker = MemoryBroker::new();
    broker.push(message(old));
    broker.push(message(new));
    let (handled, mut seen) = mpsc::unbounded_channel();
    let mut subscriber = Subscriber::new(
        "orders",
        broker.subscribe("orders", &["orders"]),
        target,
        Handled(handled),
    );
    if let Some(keep) = keep {
        subscriber = subscriber.keep_processed_ids(keep);
    }
    let mut ids = Vec::new();
    let stats = subscriber
        .run(async {
            while let Some(id) = seen.recv().await {
                ids.push(id);
                if id == new {
                    break;
                }
            }
        })
        .await
        .unwrap();
    (ids, stats)
}

#[tokio::test]
async fn a_subscriber_skips_a_redelivery_while_it_keeps_the_id() {
    let (ids, stats) = redelivered(None).await;
    assert_eq!(ids.len(), 1, "only the new message is handled: {ids:?}");
    assert_eq!((stats.processed, stats.duplicates), (1, 1));
    let (ids, stats) = redelivered(Some(Duration::from_secs(3600))).await;
    assert_eq!(ids.len(), 1, "an id younger than an hour is kept: {ids:?}");
    assert_eq!((stats.processed, stats.duplicates), (1, 1));
}

#[tokio::test]
async fn a_subscriber_that_keeps_ids_for_no_time_applies_a_redelivery_again() {
    let (ids, stats) = redelivered(Some(Duration::ZERO)).await;
    assert_eq!(
        ids.len(),
        2,
        "the forgotten message is handled again: {ids:?}"
    );
    assert_eq!((stats.processed, stats.duplicates), (2, 0));
}
