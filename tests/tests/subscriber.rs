//! A subscriber that applies messages in batches (`Subscriber::batch`), on the in-memory broker
//! and an SQLite target: each message applied exactly once and in order, in fewer
//! transactions; duplicates inside a batch skipped; a failing handler rolls the batch back,
//! after which its messages are handled one at a time, the poison one to the dead letters.

use cqrs_runtime::bus::memory::MemoryBroker;
use cqrs_runtime::bus::{Message, MessageHandler, Subscriber, SubscriberStats};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore, SqliteTarget};
use cqrs_runtime::{BoxError, Metadata, PoisonPolicy};
use sqlx::Row as _;
use std::time::Duration;
use uuid::Uuid;

const TOPIC: &str = "orders";

/// Inserts a row per message in the transaction; fails on the keys it is told to.
struct Ledger {
    poison: &'static str,
}

impl MessageHandler<sqlx::SqliteConnection> for Ledger {
    async fn handle(
        &mut self,
        message: &Message,
        conn: &mut sqlx::SqliteConnection,
    ) -> Result<(), BoxError> {
        use sqlx::Executor;
        if message.key == self.poison {
            return Err(format!("cannot apply {}", message.key).into());
        }
        conn.execute(sqlx::query("INSERT INTO ledger (key) VALUES (?1)").bind(&message.key))
            .await?;
        Ok(())
    }
}

fn message(key: &str) -> Message {
    Message {
        topic: TOPIC.into(),
        key: key.into(),
        event_id: Uuid::now_v7(),
        event_type: "Placed".into(),
        event_version: 1,
        aggregate_type: "order".into(),
        sequence: 1,
        recorded_at: chrono::Utc::now(),
        metadata: Metadata::default(),
        payload: "{}".into(),
    }
}

async fn target(dir: &tempfile::TempDir) -> SqliteTarget {
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("consumer.db")))
        .await
        .unwrap();
    let target = store.projection_target();
    sqlx::query("CREATE TABLE ledger (key TEXT NOT NULL)")
        .execute(target.pool())
        .await
        .unwrap();
    target
}

async fn ledger(target: &SqliteTarget) -> Vec<String> {
    sqlx::query("SELECT key FROM ledger ORDER BY rowid")
        .fetch_all(target.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Runs a subscriber with batches of `batch` over what `broker` holds, until the ledger has
/// `rows` rows and `dead` dead letters; returns its stats.
async fn consume(
    broker: &MemoryBroker,
    target: &SqliteTarget,
    batch: usize,
    poison: &'static str,
    rows: usize,
    dead: usize,
) -> SubscriberStats {
    let mut subscriber = Subscriber::new(
        "ledger",
        broker.subscribe("ledger", &[TOPIC]),
        target.clone(),
        Ledger { poison },
    )
    .batch(batch)
    .on_error(PoisonPolicy::retry(1, Duration::from_millis(1)).then_park());
    let pool = target.pool().clone();
    let broker = broker.clone();
    subscriber
        .run(async move {
            // A plain loop: `eventually`'s borrowing closure would not be `Send` here.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let count: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                let done = count as usize >= rows && broker.dead_letters().len() >= dead;
                if done || std::time::Instant::now() > deadline {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn batches_apply_each_message_once_in_order_in_fewer_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let target = target(&dir).await;
    let broker = MemoryBroker::new();
    let keys: Vec<String> = (0..50).map(|i| format!("o-{i}")).collect();
    for key in &keys {
        broker.push(message(key));
    }
    let stats = consume(&broker, &target, 16, "", 50, 0).await;
    assert_eq!(ledger(&target).await, keys);
    assert_eq!((stats.processed, stats.duplicates), (50, 0));
    // The broker held all 50 at the start: batches of 16, 16, 16 and 2.
    assert_eq!(stats.transactions, 4, "{stats:?}");
}

#[tokio::test]
async fn a_duplicate_inside_a_batch_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let target = target(&dir).await;
    let broker = MemoryBroker::new();
    let first = message("o-1");
    broker.push(first.clone());
    broker.push(message("o-2"));
    broker.push(first);
    broker.push(message("o-3"));
    let stats = consume(&broker, &target, 8, "", 3, 0).await;
    assert_eq!(ledger(&target).await, ["o-1", "o-2", "o-3"]);
    assert_eq!((stats.processed, stats.duplicates), (3, 1));
    assert_eq!(stats.transactions, 1, "{stats:?}");
}

#[tokio::test]
async fn a_failing_handler_rolls_the_batch_back_and_its_messages_go_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let target = target(&dir).await;
    let broker = MemoryBroker::new();
    for key in ["o-1", "o-2", "poison", "o-3", "o-4"] {
        broker.push(message(key));
    }
    let stats = consume(&broker, &target, 8, "poison", 4, 1).await;
    // Nothing of the rolled-back batch stayed; each good message was applied once.
    assert_eq!(ledger(&target).await, ["o-1", "o-2", "o-3", "o-4"]);
    assert_eq!((stats.processed, stats.dead_lettered), (4, 1), "{stats:?}");
    assert_eq!(
        stats.transactions, 4,
        "one at a time after the rollback: {stats:?}"
    );
    let dead = broker.dead_letters();
    assert_eq!(dead[0].0.key, "poison");
    assert!(
        dead[0].1.error.contains("cannot apply poison"),
        "{:?}",
        dead[0].1
    );
}
