//! The outbox relay without a broker process (the in-memory broker): it waits out an outage
//! and then publishes everything in order, and of two relays of one store one publishes while
//! the other stands by, taking over when the first stops. Each time, every event of the log is
//! published exactly once, in log order.

use std::time::Duration;

use bank::{Account, AccountCommand, Deposit, Open};
use cqrs_runtime::bus::memory::MemoryBroker;
use cqrs_runtime::bus::{Outbox, Relay, RelayProgress};
use cqrs_runtime::projection::Checkpoints;
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_runtime::{EventStoreExt, LogPosition, Repository};
use cqrs_tests::eventually;
use futures::StreamExt;
use tokio::sync::oneshot;
use uuid::Uuid;

const TOPIC: &str = "accounts";
const PATIENCE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(10);

async fn store(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(SqliteConfig::new(dir.path().join("events.db")))
        .await
        .unwrap()
}

/// Opens `accounts` accounts tagged `tag`, with two deposits each.
async fn write(store: &SqliteStore, tag: &str, accounts: usize) {
    let repo = Repository::<Account, _>::new(store.clone());
    for a in 0..accounts {
        let id = format!("{tag}-{a}");
        let open = Open {
            owner: format!("owner {a}"),
            currency: "EUR".into(),
        };
        repo.execute(&id, AccountCommand::from(open)).await.unwrap();
        for cents in [100, 200] {
            repo.execute(&id, AccountCommand::from(Deposit { cents }))
                .await
                .unwrap();
        }
    }
}

/// The event ids of the log, in log order.
async fn log_ids(store: &SqliteStore) -> Vec<Uuid> {
    store
        .log_events(LogPosition::START)
        .map(|e| e.unwrap().event_id)
        .collect()
        .await
}

/// Waits until the broker holds as many messages as the log has events, then checks they are
/// the log's events, each once, in log order.
async fn assert_published(broker: &MemoryBroker, store: &SqliteStore) {
    let expected = log_ids(store).await;
    eventually(PATIENCE, POLL, async || {
        broker.messages(TOPIC).len() >= expected.len()
    })
    .await;
    let published: Vec<Uuid> = broker.messages(TOPIC).iter().map(|m| m.event_id).collect();
    assert_eq!(published, expected, "the log, each event once, in order");
}

fn relay(
    store: &SqliteStore,
    broker: &MemoryBroker,
) -> Relay<
    SqliteStore,
    cqrs_runtime::sqlite::SqliteTarget,
    cqrs_runtime::bus::memory::MemoryPublisher,
> {
    Relay::new(
        store.clone(),
        store.projection_target(),
        Outbox::new().domain_events::<Account>().topic(TOPIC),
        broker.publisher(),
    )
    .poll_interval(Duration::from_millis(20))
    .backoff(Duration::from_millis(5), Duration::from_millis(20))
    .lease_ttl(Duration::from_secs(2))
}

/// Runs `relay` in the background until the returned sender fires.
fn spawn<R>(
    mut relay: Relay<SqliteStore, cqrs_runtime::sqlite::SqliteTarget, R>,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<RelayProgress>)
where
    R: cqrs_runtime::bus::Publisher + Send + 'static,
{
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        relay
            .run(async {
                let _ = stopped.await;
            })
            .await
            .expect("the relay runs")
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_waits_out_a_broker_outage() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let broker = MemoryBroker::new();
    write(&store, "before", 5).await;
    broker.set_down(true);
    let (stop, task) = spawn(relay(&store, &broker));
    write(&store, "during", 5).await;
    // Three refusals: the relay has met the outage and backed off twice.
    eventually(PATIENCE, POLL, async || broker.refused() >= 3).await;
    assert!(
        broker.refused() >= 3,
        "the relay tried while the broker was down"
    );
    let checkpoint = store
        .projection_target()
        .checkpoint(cqrs_runtime::projection::ProjectionId {
            name: "outbox",
            version: 1,
        })
        .await
        .unwrap();
    assert!(
        checkpoint.is_none_or(|c| c == LogPosition::START),
        "nothing acknowledged, so the checkpoint has not moved: {checkpoint:?}"
    );
    assert!(broker.messages(TOPIC).is_empty());
    broker.set_down(false);
    assert_published(&broker, &store).await;
    stop.send(()).unwrap();
    let progress = task.await.unwrap();
    assert_eq!(progress.published as usize, log_ids(&store).await.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_relays_publishes_and_the_other_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let broker = MemoryBroker::new();
    // The first relay publishes (so it holds the lease) before the second starts.
    let (stop_first, first) = spawn(relay(&store, &broker));
    write(&store, "a", 5).await;
    assert_published(&broker, &store).await;
    let (stop_second, second) = spawn(relay(&store, &broker));
    write(&store, "b", 5).await;
    assert_published(&broker, &store).await;
    let while_both_ran = log_ids(&store).await.len() as u64;

    // The first stops (and releases its lease); the second carries on from its checkpoint.
    stop_first.send(()).unwrap();
    let first = first.await.unwrap();
    write(&store, "c", 5).await;
    assert_published(&broker, &store).await;
    stop_second.send(()).unwrap();
    let second = second.await.unwrap();
    let total = log_ids(&store).await.len() as u64;
    assert_eq!(
        first.published, while_both_ran,
        "the first published all while the second stood by"
    );
    assert_eq!(
        second.published,
        total - while_both_ran,
        "the second published only what came after"
    );
}
