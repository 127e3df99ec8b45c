//! The event bus end to end, on real brokers (a NATS server and a tansu Kafka broker per test,
//! see `cqrs_tests::brokers`): the relay publishes from SQLite and PostgreSQL stores while 16
//! writers commit, and a subscriber applies the messages to a ledger in another service's
//! SQLite database; the broker, the relay and the consumer are killed on the way; poison goes
//! to the dead letters.
//!
//! The check is always the same: the consumer's ledger holds every opening and deposit of the
//! store's log exactly once (no key on the table: a second application shows as a second
//! row), and applied each account's events in sequence order.

use std::process::{Child, Command};
use std::time::Duration;

use bank::{Account, AccountCommand, Open};
use cqrs_runtime::bus::{Message, Outbox, ProjectionHandler, Publisher, Relay, Subscriber};
use cqrs_runtime::postgres::{PostgresConfig, PostgresStore};
use cqrs_runtime::projection::{Checkpoints, ProjectionId};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore, SqliteTarget};
use cqrs_runtime::{
    EventStore, EventStoreExt, LogPosition, PoisonPolicy, ProjectionTarget, Repository, StoredEvent,
};
use cqrs_tests::brokers::{Broker, Kind};
use cqrs_tests::bus::{AnyPublisher, AnySource, PATIENCE};
use cqrs_tests::{Row, SqliteLedger, eventually, expected_rows};
use futures::StreamExt;
use futures::future::join_all;
use sqlx::Row as _;
use tokio::sync::oneshot;
use uuid::Uuid;

const WRITERS: usize = 16;
const ACCOUNTS_PER_WRITER: usize = 3;
const DEPOSITS: i64 = 8;

/// The other service: an SQLite database with the ledger table and the inbox.
struct Consumer {
    _dir: tempfile::TempDir,
    store: SqliteStore,
}

impl Consumer {
    async fn new() -> Consumer {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(SqliteConfig::new(dir.path().join("consumer.db")))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE ledger (account TEXT NOT NULL, sequence INTEGER NOT NULL, cents INTEGER NOT NULL)")
            .execute(store.projection_target().pool())
            .await
            .unwrap();
        Consumer { _dir: dir, store }
    }

    fn target(&self) -> SqliteTarget {
        self.store.projection_target()
    }

    /// The ledger's rows in the order they were applied.
    async fn applied(&self) -> Vec<Row> {
        let rows = sqlx::query("SELECT account, sequence, cents FROM ledger ORDER BY rowid")
            .fetch_all(self.target().pool())
            .await
            .unwrap();
        rows.iter()
            .map(|r| (r.get(0), r.get::<i64, _>(1).unsigned_abs(), r.get(2)))
            .collect()
    }

    /// Runs a subscriber of `topic` (consumer group `ledger`, up to `batch` messages per
    /// transaction) in the background. Stopping it
    /// closes its source, so that the next subscriber of the group joins after this one has
    /// left: tansu 0.6 never finishes a rebalance whose leader left in the middle of it.
    async fn subscribe(
        &self,
        broker: &Broker,
        topic: &str,
        ledger: SqliteLedger,
        batch: usize,
    ) -> Running {
        let source = patiently("a consumer", AnySource::connect(broker, topic, "ledger")).await;
        let mut subscriber =
            Subscriber::new("ledger", source, self.target(), ProjectionHandler(ledger))
                .batch(batch)
                .on_error(PoisonPolicy::retry(2, Duration::from_millis(10)).then_park());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            subscriber.run(stopped).await.expect("the subscriber runs");
            subscriber.close().await.expect("the subscriber leaves")
        });
        Running {
            stop: Some(stop),
            task,
        }
    }

    /// Waits until the ledger holds `expected` rows, then checks them: each exactly once, and
    /// each account's in sequence order.
    async fn assert_ledger(&self, expected: &[Row]) {
        let every = Duration::from_millis(100);
        eventually(PATIENCE, every, async || {
            self.applied().await.len() >= expected.len()
        })
        .await;
        let applied = self.applied().await;
        assert_in_order(&applied);
        let mut sorted = applied.clone();
        sorted.sort();
        let missing: Vec<&Row> = expected.iter().filter(|r| !sorted.contains(r)).collect();
        assert!(
            missing.is_empty() && sorted.len() == expected.len(),
            "{} rows applied for {} in the log; missing (at most 10): {:?}",
            sorted.len(),
            expected.len(),
            &missing[..missing.len().min(10)]
        );
        assert_eq!(sorted, expected, "the ledger equals a rebuild from the log");
    }
}

/// Awaits `future`, failing the test (instead of hanging it) after [`PATIENCE`].
async fn patiently<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(value) => value,
        Err(_) => panic!("waited {PATIENCE:?} for {what}"),
    }
}

fn assert_in_order(applied: &[Row]) {
    let mut last = std::collections::HashMap::new();
    for (account, sequence, _) in applied {
        let previous = last.insert(account.clone(), *sequence).unwrap_or(0);
        assert!(
            *sequence > previous,
            "account {account}: sequence {sequence} applied after {previous}"
        );
    }
}

struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<cqrs_runtime::bus::SubscriberStats>,
}

impl Running {
    async fn stop(mut self) -> cqrs_runtime::bus::SubscriberStats {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        patiently("the subscriber to stop", self.task)
            .await
            .expect("the subscriber task")
    }
}

/// A relay of the bank's accounts to `topic`, running in the background until stopped.
fn spawn_relay<S: EventStore + Clone, T: ProjectionTarget>(
    store: S,
    target: T,
    publisher: AnyPublisher,
    topic: &str,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<u64>) {
    let outbox = Outbox::new().domain_events::<Account>().topic(topic);
    let mut relay = Relay::new(store, target, outbox, publisher)
        .batch_size(50)
        .poll_interval(Duration::from_millis(50))
        .backoff(Duration::from_millis(50), Duration::from_millis(500));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let progress = relay.run(async {
            let _ = stopped.await;
        });
        progress.await.expect("the relay runs").published
    });
    (stop, task)
}

/// `WRITERS` concurrent writers, each opening its accounts and depositing into them; between
/// the halves, `midway` runs (a broker restart, say).
async fn write<S: EventStore + Clone>(store: &S, tag: &str, midway: impl AsyncFnOnce()) {
    let half = DEPOSITS / 2;
    let run = |from: i64, to: i64| {
        join_all((0..WRITERS).map(|w| {
            let repo = Repository::<Account, _>::new(store.clone());
            async move {
                for a in 0..ACCOUNTS_PER_WRITER {
                    let id = format!("{tag}-{w}-{a}");
                    if from == 0 {
                        let open = Open {
                            owner: format!("writer {w}"),
                            currency: "EUR".into(),
                        };
                        repo.execute(&id, AccountCommand::from(open)).await.unwrap();
                    }
                    for d in from..to {
                        let deposit = bank::Deposit { cents: 100 + d };
                        repo.execute(&id, AccountCommand::from(deposit))
                            .await
                            .unwrap();
                    }
                }
            }
        }))
    };
    run(0, half).await;
    midway().await;
    run(half, DEPOSITS).await;
}

async fn log<S: EventStore>(store: &S) -> Vec<StoredEvent> {
    store
        .log_events(LogPosition::START)
        .map(|e| e.unwrap())
        .collect()
        .await
}

fn topic(kind: Kind) -> String {
    format!("accounts-{}-{}", kind.name(), Uuid::now_v7().simple())
}

async fn sqlite_store(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(SqliteConfig::new(dir.path().join("events.db")))
        .await
        .unwrap()
}

async fn postgres_store() -> Option<PostgresStore> {
    let url = cqrs_tests::database_url("PostgreSQL bus tests")?;
    let schema = format!("bus_{}", Uuid::now_v7().simple());
    let config = PostgresConfig::new(&url).schema(&schema);
    Some(PostgresStore::connect(config).await.unwrap())
}

/// Every committed event arrives, once and in order per account, with 16 writers committing
/// while the relay runs; `restart_broker` kills the broker between the two halves of the
/// writes and starts it again.
async fn delivers_everything<S, T>(store: S, target: T, kind: Kind, restart_broker: bool)
where
    S: EventStore + Clone,
    T: ProjectionTarget,
{
    let Some(mut broker) = Broker::start(kind, "bus tests") else {
        return;
    };
    if restart_broker && !broker.restartable() {
        eprintln!("SKIPPED: the broker restart test needs a broker it starts itself");
        return;
    }
    let topic = topic(kind);
    let publisher = AnyPublisher::connect(kind, broker.address()).await;
    let (stop_relay, relay) = spawn_relay(store.clone(), target, publisher, &topic);
    let consumer = Consumer::new().await;
    // Batches of up to 32 (Kafka delivers what it fetched; NATS holds one message at a time).
    let running = consumer
        .subscribe(&broker, &topic, SqliteLedger::default(), 32)
        .await;

    write(&store, "a", async || {
        if restart_broker {
            // Let some messages through, then take the broker away while writes go on.
            tokio::time::sleep(Duration::from_millis(300)).await;
            broker.kill();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    if restart_broker {
        tokio::time::sleep(Duration::from_millis(500)).await;
        broker.resume();
    }

    let log = log(&store).await;
    assert_eq!(
        log.len(),
        WRITERS * ACCOUNTS_PER_WRITER * (1 + DEPOSITS as usize)
    );
    consumer.assert_ledger(&expected_rows(&log)).await;
    let stats = running.stop().await;
    let _ = stop_relay.send(());
    let published = patiently("the relay to stop", relay).await.unwrap();
    assert!(published >= log.len() as u64, "published {published}");
    if !restart_broker {
        assert_eq!(
            stats.duplicates, 0,
            "no failure, so no redelivery: {stats:?}"
        );
    }
    assert_eq!(stats.dead_lettered, 0);
}

/// [`delivers_everything`] from an SQLite store.
async fn from_sqlite(kind: Kind, restart_broker: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let target = store.projection_target();
    delivers_everything(store, target, kind, restart_broker).await;
}

/// [`delivers_everything`] from a PostgreSQL store (skipped without `DATABASE_URL`).
async fn from_postgres(kind: Kind, restart_broker: bool) {
    if let Some(store) = postgres_store().await {
        let target = store.projection_target();
        delivers_everything(store, target, kind, restart_broker).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_to_kafka_with_16_writers() {
    from_sqlite(Kind::Kafka, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_to_nats_with_16_writers() {
    from_sqlite(Kind::Nats, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_to_kafka_with_16_writers() {
    from_postgres(Kind::Kafka, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_to_nats_with_16_writers() {
    from_postgres(Kind::Nats, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_broker_killed_and_restarted() {
    from_postgres(Kind::Kafka, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_broker_killed_and_restarted() {
    from_postgres(Kind::Nats, true).await;
}

/// What the relay, restart and poison tests share: a broker, an SQLite store with a topic of
/// its own, and the consuming service.
struct Rig {
    broker: Broker,
    dir: tempfile::TempDir,
    store: SqliteStore,
    topic: String,
    consumer: Consumer,
}

impl Rig {
    /// `None` when no broker is configured (outside CI).
    async fn start(kind: Kind) -> Option<Rig> {
        let broker = Broker::start(kind, "bus tests")?;
        let dir = tempfile::tempdir().unwrap();
        Some(Rig {
            store: sqlite_store(&dir).await,
            topic: topic(kind),
            consumer: Consumer::new().await,
            broker,
            dir,
        })
    }

    /// A relay of the store to the topic, in this process.
    async fn spawn_relay(&self) -> (oneshot::Sender<()>, tokio::task::JoinHandle<u64>) {
        let publisher = AnyPublisher::connect(self.broker.kind(), self.broker.address()).await;
        let target = self.store.projection_target();
        spawn_relay(self.store.clone(), target, publisher, &self.topic)
    }
}

/// The relay runs in a child process that is SIGKILLed again and again while writers commit;
/// restarted each time, it publishes what it had not got acknowledged.
async fn relay_killed_mid_batch(kind: Kind) {
    let Some(Rig {
        broker,
        dir,
        store,
        topic,
        consumer,
    }) = Rig::start(kind).await
    else {
        return;
    };
    let path = dir.path().join("events.db");
    let owner = Uuid::now_v7().to_string();
    let spawn = || -> Child {
        Command::new(env!("CARGO_BIN_EXE_bus_relay"))
            .arg(&path)
            .args([kind.name(), broker.address(), &topic, &owner])
            .spawn()
            .expect("start the relay")
    };
    let running = consumer
        .subscribe(&broker, &topic, SqliteLedger::default(), 1)
        .await;

    let mut child = spawn();
    let checkpoints = store.projection_target();
    let relay = ProjectionId {
        name: "outbox",
        version: 1,
    };
    let mut behind = 0;
    for round in 0..4u64 {
        let tag = format!("r{round}");
        let writes = write(&store, &tag, async || {});
        let kill = async {
            // Kill the relay while the writers commit, its batches (of 7 events) in flight.
            tokio::time::sleep(Duration::from_millis(100 + 50 * round)).await;
            let head = store
                .read_all(LogPosition::START, usize::MAX)
                .await
                .unwrap();
            let published = checkpoints
                .checkpoint(relay)
                .await
                .unwrap()
                .unwrap_or_default();
            if head.last().is_some_and(|last| last.position > published) {
                behind += 1;
            }
            child.kill().unwrap();
            child.wait().unwrap();
        };
        tokio::join!(writes, kill);
        child = spawn();
    }
    assert!(behind > 0, "no kill caught the relay behind the log");
    let log = log(&store).await;
    consumer.assert_ledger(&expected_rows(&log)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let stats = running.stop().await;
    assert_eq!(stats.processed as usize, expected_rows(&log).len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_relay_killed_mid_batch() {
    relay_killed_mid_batch(Kind::Kafka).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_relay_killed_mid_batch() {
    relay_killed_mid_batch(Kind::Nats).await;
}

/// The consumer is stopped and started again three times mid-stream: it resumes where its
/// group acknowledged, and what was applied but not acknowledged is skipped as a duplicate.
async fn consumer_restarted(kind: Kind) {
    let Some(rig) = Rig::start(kind).await else {
        return;
    };
    let (stop_relay, relay) = rig.spawn_relay().await;
    let Rig {
        broker,
        store,
        topic,
        consumer,
        ..
    } = &rig;
    let mut totals = cqrs_runtime::bus::SubscriberStats::default();
    for round in 0..3 {
        let running = consumer
            .subscribe(broker, topic, SqliteLedger::default(), 32)
            .await;
        write(store, &format!("c{round}"), async || {}).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stats = running.stop().await;
        totals.processed += stats.processed;
        totals.duplicates += stats.duplicates;
    }
    let running = consumer
        .subscribe(broker, topic, SqliteLedger::default(), 32)
        .await;
    let log = log(store).await;
    consumer.assert_ledger(&expected_rows(&log)).await;
    let stats = running.stop().await;
    totals.processed += stats.processed;
    let _ = stop_relay.send(());
    patiently("the relay to stop", relay).await.unwrap();
    assert_eq!(totals.processed as usize, expected_rows(&log).len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_consumer_restarted() {
    consumer_restarted(Kind::Kafka).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_consumer_restarted() {
    consumer_restarted(Kind::Nats).await;
}

/// A deposit whose handler always fails goes to the dead letters with its error after the
/// retries; everything after it is applied.
async fn poison_goes_to_the_dead_letters(kind: Kind) {
    let Some(rig) = Rig::start(kind).await else {
        return;
    };
    let (stop_relay, relay) = rig.spawn_relay().await;
    let Rig {
        broker,
        store,
        topic,
        consumer,
        ..
    } = &rig;
    let ledger = SqliteLedger::default();
    // An amount no writer deposits, failing for good.
    let poison_cents = 100 + 31_000;
    ledger.switches.poison(poison_cents, u32::MAX);
    let running = consumer.subscribe(broker, topic, ledger.clone(), 1).await;

    let repo = Repository::<Account, _>::new(store.clone());
    let open = Open {
        owner: "poison".into(),
        currency: "EUR".into(),
    };
    repo.execute(&"p-1".to_owned(), AccountCommand::from(open))
        .await
        .unwrap();
    for cents in [1, poison_cents, 2, 3] {
        repo.execute(
            &"p-1".to_owned(),
            AccountCommand::from(bank::Deposit { cents }),
        )
        .await
        .unwrap();
    }
    write(store, "after", async || {}).await;

    let log = log(store).await;
    let mut expected = expected_rows(&log);
    expected.retain(|(_, _, cents)| *cents != poison_cents);
    consumer.assert_ledger(&expected).await;
    let stats = running.stop().await;
    assert_eq!(stats.dead_lettered, 1, "{stats:?}");
    assert_eq!(ledger.switches.attempts(), 3, "one try and two retries");

    // The dead letter is the poison event, readable like any message.
    let poison = log
        .iter()
        .find(|e| e.aggregate_id == "p-1" && e.sequence == 3)
        .expect("the poison event in the log");
    let mut dead = AnySource::connect(broker, &format!("{topic}-dead-letter"), "inspect").await;
    let (message, _) = tokio::time::timeout(PATIENCE, cqrs_runtime::bus::Source::next(&mut dead))
        .await
        .expect("a dead letter within the patience")
        .unwrap();
    let message = message.unwrap();
    assert_eq!(message.event_id, poison.event_id);
    assert_eq!(message.key, "p-1");
    let _ = stop_relay.send(());
    patiently("the relay to stop", relay).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_poison_goes_to_the_dead_letters() {
    poison_goes_to_the_dead_letters(Kind::Kafka).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_poison_goes_to_the_dead_letters() {
    poison_goes_to_the_dead_letters(Kind::Nats).await;
}

/// One batch of 6,000 aggregates' events is one wave of 6,000 publishes: above async-nats's
/// own limit of acknowledgements in flight (5,000), which holds publishes back until older
/// acknowledgements are awaited. The publisher's window keeps it moving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_publishes_a_batch_above_the_client_limit() {
    let Some(broker) = Broker::start(Kind::Nats, "bus tests") else {
        return;
    };
    let topic = topic(Kind::Nats);
    let messages: Vec<Message> = (0..6_000)
        .map(|i| Message {
            topic: topic.clone(),
            key: format!("a-{i}"),
            event_id: Uuid::now_v7(),
            event_type: "AccountOpened".into(),
            event_version: 1,
            aggregate_type: bank::ACCOUNT_TYPE.into(),
            sequence: 1,
            recorded_at: chrono::Utc::now(),
            metadata: Default::default(),
            payload: "{}".into(),
        })
        .collect();
    let mut publisher = AnyPublisher::connect(Kind::Nats, broker.address()).await;
    patiently(
        "a batch of 6,000 to be acknowledged",
        publisher.publish(&messages),
    )
    .await
    .unwrap();
}
