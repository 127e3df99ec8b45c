//! Transfers between two services over the bus: a process manager in the `east` bank debits a
//! local account and publishes the credit as a command for the `west` bank, whose subscriber
//! runs it ([`CommandHandler`]); west's relay publishes the deposit back, and east's runner,
//! following that topic ([`ProcessRunner::source`]), finds the transfer from the command's key
//! and completes it. On the in-memory broker, on NATS and on Kafka, with the broker killed and
//! started again in the middle of the transfers; and with east's runner in a child process
//! killed (SIGKILL) ten times while 200 transfers run, over NATS and Kafka, the broker
//! restarted once on the way.
//!
//! The checks: every transfer ended (completed, or refunded when east refused the debit), the
//! money is conserved across the two services, and no command took effect twice (each credit
//! key recorded one deposit in west, each transfer one withdrawal in east).

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bank::public::{AccountPublic, BalanceChanged};
use bank::transfers::{Complete, Request, Transfer, TransferEvent};
use bank::{Account, AccountCommand, AccountEvent, Deposit, Open, Withdraw, Withdrawn};
use cqrs_runtime::bus::memory::MemoryBroker;
use cqrs_runtime::bus::{
    CommandHandler, CommandStats, Outbox, Publisher, Relay, RelayProgress, Source, Subscriber,
    SubscriberStats,
};
use cqrs_runtime::postgres::{PostgresConfig, PostgresStore};
use cqrs_runtime::process::{Dispatcher, ProcessRunner};
use cqrs_runtime::projection::{MemoryTarget, ProcessTarget};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_runtime::{Aggregate, ProcessTest};
use cqrs_runtime::{EventStore, EventStoreExt, LogPosition, PoisonPolicy, Repository, StoredEvent};
use cqrs_tests::brokers::{Broker, Kind};
use cqrs_tests::bus::{AnyPublisher, AnySource, PATIENCE};
use cqrs_tests::eventually;
use cqrs_tests::interbank::Interbank;
use futures::StreamExt;
use tokio::sync::oneshot;
use uuid::Uuid;

const EAST_ACCOUNTS: usize = 4;
const WEST_ACCOUNTS: usize = 3;
const OPENING: i64 = 10_000;
const TRANSFERS: usize = 60;

/// One bank: an SQLite store in a directory of its own.
struct Bank<S = SqliteStore> {
    _dir: Option<tempfile::TempDir>,
    store: S,
}

impl Bank {
    async fn open(name: &str, accounts: usize) -> Bank {
        let dir = tempfile::tempdir().unwrap();
        let config = SqliteConfig::new(dir.path().join(format!("{name}.db")));
        let store = SqliteStore::open(config).await.unwrap();
        Bank::funded(Some(dir), store, name, accounts).await
    }
}

impl Bank<PostgresStore> {
    /// A bank in a schema of its own of the test server, if there is one.
    async fn postgres(name: &str, accounts: usize) -> Option<Self> {
        let url = cqrs_tests::database_url("PostgreSQL interbank test")?;
        let schema = format!("{name}_{}", Uuid::now_v7().simple());
        let config = PostgresConfig::new(&url).schema(&schema);
        let store = PostgresStore::connect(config).await.unwrap();
        Some(Bank::funded(None, store, name, accounts).await)
    }
}

impl<S: EventStore + Clone> Bank<S> {
    /// Opens `accounts` accounts `<name>-<n>` with `OPENING` cents each.
    async fn funded(dir: Option<tempfile::TempDir>, store: S, name: &str, accounts: usize) -> Self {
        let repo = Repository::<Account, _>::new(store.clone());
        for a in 0..accounts {
            let id = format!("{name}-{a}");
            let open = Open {
                owner: name.into(),
                currency: "EUR".into(),
            };
            repo.execute(&id, AccountCommand::from(open)).await.unwrap();
            let deposit = Deposit { cents: OPENING };
            repo.execute(&id, AccountCommand::from(deposit))
                .await
                .unwrap();
        }
        Bank { _dir: dir, store }
    }

    async fn log(&self) -> Vec<StoredEvent> {
        let events = self.store.log_events(LogPosition::START);
        events.map(|e| e.unwrap()).collect().await
    }

    /// Every account's balance, from its events.
    async fn balances(&self) -> BTreeMap<String, i64> {
        let mut balances = BTreeMap::new();
        for event in self.log().await {
            if event.aggregate_type != <Account as cqrs_runtime::Aggregate>::TYPE {
                continue;
            }
            let decoded = cqrs_runtime::DomainEvent::decode(
                &event.event_type,
                event.event_version,
                &event.event,
            );
            let cents = match decoded.unwrap() {
                AccountEvent::Deposited { amount } => amount.cents,
                AccountEvent::Withdrawn { cents } => -cents,
                _ => 0,
            };
            *balances.entry(event.aggregate_id).or_insert(0) += cents;
        }
        balances
    }
}

/// A task running until told to stop.
struct Running<T> {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<T>,
}

impl<T> Running<T> {
    fn spawn<F>(run: impl FnOnce(oneshot::Receiver<()>) -> F) -> Running<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(stopped));
        Running { stop, task }
    }

    async fn stop(self) -> T {
        let _ = self.stop.send(());
        match tokio::time::timeout(PATIENCE, self.task).await {
            Ok(done) => done.expect("the task"),
            Err(_) => panic!("waited {PATIENCE:?} for a task to stop"),
        }
    }
}

async fn stopped(signal: oneshot::Receiver<()>) {
    let _ = signal.await;
}

/// What a bus test needs of its broker: publishers and consumers of named topics.
trait Bus {
    type Publisher: Publisher;
    type Source: Source<Receipt: 'static>;
    async fn publisher(&self) -> Self::Publisher;
    async fn source(&self, topic: &str, group: &str) -> Self::Source;
}

impl Bus for MemoryBroker {
    type Publisher = cqrs_runtime::bus::memory::MemoryPublisher;
    type Source = cqrs_runtime::bus::memory::MemorySource;
    async fn publisher(&self) -> Self::Publisher {
        MemoryBroker::publisher(self)
    }
    async fn source(&self, topic: &str, group: &str) -> Self::Source {
        self.subscribe(group, &[topic])
    }
}

/// A broker the test started, by address: the test keeps the [`Broker`] to restart it.
struct Remote {
    kind: Kind,
    address: String,
}

impl Bus for Remote {
    type Publisher = AnyPublisher;
    type Source = AnySource;
    async fn publisher(&self) -> AnyPublisher {
        AnyPublisher::connect(self.kind, &self.address).await
    }
    async fn source(&self, topic: &str, group: &str) -> AnySource {
        AnySource::connect_to(self.kind, &self.address, topic, group).await
    }
}

/// Runs `TRANSFERS` transfers from an east bank on SQLite to west over `bus`; `midway` runs
/// when half of them are requested (a broker restart, say).
async fn transfers_between_two_services<B: Bus>(bus: &B, midway: impl AsyncFnOnce()) {
    let east = Bank::open("east", EAST_ACCOUNTS).await;
    let target = east.store.projection_target();
    transfers_from(&east, target, bus, midway).await;
}

/// [`transfers_between_two_services`] from `east`, whose manager keeps its instances in
/// `east_target`.
async fn transfers_from<S, T, B>(
    east: &Bank<S>,
    east_target: T,
    bus: &B,
    midway: impl AsyncFnOnce(),
) where
    S: EventStore + Clone,
    T: ProcessTarget,
    B: Bus,
{
    let west = Bank::open("west", WEST_ACCOUNTS).await;
    let service = West::start(bus, &west).await;

    // East: the process manager, on its log and on west's events.
    let dispatcher = Dispatcher::new()
        .route(Repository::<Account, _>::new(east.store.clone()))
        .route(Repository::<Transfer, _>::new(east.store.clone()));
    let manager = Interbank {
        commands: service.commands.clone(),
    };
    let mut runner = ProcessRunner::new(east.store.clone(), east_target, manager, dispatcher)
        .source(bus.source(&service.events, "east-interbank").await)
        .publisher(bus.publisher().await)
        .poll_interval(Duration::from_millis(50))
        .backoff(Duration::from_millis(50), Duration::from_millis(500));
    let runner = Running::spawn(|signal| async move {
        runner
            .run(stopped(signal))
            .await
            .expect("east's runner runs")
    });

    let transfers = Repository::<Transfer, _>::new(east.store.clone());
    request(&transfers, 0..TRANSFERS / 2).await;
    midway().await;
    request(&transfers, TRANSFERS / 2..TRANSFERS).await;
    let ended = all_ended(&transfers, TRANSFERS).await;
    let progress = runner.stop().await;
    if !ended {
        panic!(
            "{} ({progress:?})",
            stuck(east, &west, &service.stats).await
        );
    }
    let completed = service.check(east, &west, TRANSFERS).await;
    assert!(progress.published >= completed as u64, "{progress:?}");
    assert!(progress.received >= completed as u64, "{progress:?}");
}

/// West, the other service: runs the commands it receives on `commands`, and publishes its
/// accounts' public events on `events`.
struct West {
    commands: String,
    events: String,
    stats: CommandStats,
    subscriber: Running<SubscriberStats>,
    relay: Running<RelayProgress>,
}

impl West {
    async fn start<B: Bus>(bus: &B, west: &Bank) -> West {
        let run = Uuid::now_v7().simple().to_string();
        let (commands, events) = (
            format!("west-commands-{run}"),
            format!("west-accounts-{run}"),
        );
        let west_accounts = Repository::<Account, _>::new(west.store.clone());
        let handler = CommandHandler::new(west_accounts);
        let stats = handler.stats();
        let source = bus.source(&commands, "west").await;
        // Not the store's own SQLite file: the commands write to it while the inbox's
        // transaction is open. The commands' keys make each run once; the inbox only saves
        // the lookups.
        let mut subscriber = Subscriber::new("west-commands", source, MemoryTarget::new(), handler)
            .on_error(PoisonPolicy::retry(20, Duration::from_millis(100)).then_park());
        let subscriber = Running::spawn(|signal| async move {
            subscriber
                .run(stopped(signal))
                .await
                .expect("west's subscriber runs");
            subscriber.stats()
        });
        let outbox = Outbox::new()
            .integration_events::<Account, AccountPublic>(bank::public::to_public)
            .topic(events.as_str());
        let publisher = bus.publisher().await;
        let mut relay = Relay::new(
            west.store.clone(),
            west.store.projection_target(),
            outbox,
            publisher,
        )
        .poll_interval(Duration::from_millis(50))
        .backoff(Duration::from_millis(50), Duration::from_millis(500));
        let relay = Running::spawn(|signal| async move {
            relay.run(stopped(signal)).await.expect("west's relay runs")
        });
        West {
            commands,
            events,
            stats,
            subscriber,
            relay,
        }
    }

    /// Stops west, then checks how every transfer ended and that no command took effect
    /// twice; returns how many completed.
    async fn check<S: EventStore + Clone>(
        self,
        east: &Bank<S>,
        west: &Bank,
        count: usize,
    ) -> usize {
        let published = self.relay.stop().await.published;
        let subscribed = self.subscriber.stop().await;
        let transfers = Repository::<Transfer, _>::new(east.store.clone());
        let mut completed = 0;
        let mut moved = 0;
        for t in 0..count {
            let transfer = transfers.load(&format!("t-{t}")).await.unwrap();
            let ending = transfer.state().ended.clone().unwrap();
            match (t % 5, ending) {
                (4, bank::transfers::Ending::Refunded(_)) => {}
                (4, other) => panic!("t-{t} asked too much, but ended {other:?}"),
                (_, bank::transfers::Ending::Completed) => {
                    completed += 1;
                    moved += transfer.state().cents;
                }
                (_, other) => panic!("t-{t} should have completed, but ended {other:?}"),
            }
        }
        assert_eq!(
            completed,
            count - count / 5,
            "every affordable transfer completed"
        );

        // The money is conserved, and moved as the transfers say.
        let (east_balances, west_balances) = (east.balances().await, west.balances().await);
        let total = |b: &BTreeMap<String, i64>| b.values().sum::<i64>();
        assert_eq!(
            total(&east_balances),
            EAST_ACCOUNTS as i64 * OPENING - moved
        );
        assert_eq!(
            total(&west_balances),
            WEST_ACCOUNTS as i64 * OPENING + moved
        );

        // No command took effect twice: one withdrawal per completed transfer in east, one
        // deposit per credit key in west.
        let east_withdrawals = east
            .log()
            .await
            .into_iter()
            .filter(|e| e.event_type == "Withdrawn")
            .count();
        assert_eq!(east_withdrawals, completed);
        let credits: Vec<String> = west
            .log()
            .await
            .into_iter()
            .filter_map(|e| e.metadata.command_id)
            .collect();
        let distinct: BTreeSet<&String> = credits.iter().collect();
        assert_eq!(credits.len(), completed, "west's deposits: {credits:?}");
        assert_eq!(distinct.len(), completed, "a credit ran twice: {credits:?}");
        assert!(credits.iter().all(|key| key.starts_with("interbank/t-")));
        assert_eq!(self.stats.executed(), completed as u64);
        assert_eq!(self.stats.refused(), 0);
        assert!(published > 0);
        assert_eq!(subscribed.dead_lettered, 0, "{subscribed:?}");
        completed
    }
}

/// Requests transfers `t-<n>` for `range`; every fifth asks for more than its account holds
/// (refused, refunded).
async fn request<S: EventStore>(
    transfers: &Repository<Transfer, S>,
    range: std::ops::Range<usize>,
) {
    for t in range {
        let cents = match t % 5 {
            4 => OPENING * 10,
            _ => 100 + t as i64,
        };
        let request = Request {
            from: format!("east-{}", t % EAST_ACCOUNTS),
            to: format!("west-{}", t % WEST_ACCOUNTS),
            cents,
        };
        transfers.execute(&format!("t-{t}"), request).await.unwrap();
    }
}

/// Whether transfers `t-0` to `t-<count - 1>` all ended within [`PATIENCE`].
async fn all_ended<S: EventStore>(transfers: &Repository<Transfer, S>, count: usize) -> bool {
    let ended = async || {
        let mut ended = 0;
        for t in 0..count {
            let transfer = transfers.load(&format!("t-{t}")).await.unwrap();
            ended += usize::from(transfer.state().ended.is_some());
        }
        ended == count
    };
    eventually(PATIENCE, Duration::from_millis(100), ended).await
}

/// Where the transfers stand, for a test whose transfers did not all end.
async fn stuck<S: EventStore + Clone>(east: &Bank<S>, west: &Bank, stats: &CommandStats) -> String {
    let count =
        |log: Vec<StoredEvent>, kind: &str| log.iter().filter(|e| e.event_type == kind).count();
    format!(
        "not every transfer ended within {PATIENCE:?}: east withdrew {}, completed {}, refunded {}; west ran {} commands ({} refused) and holds {} deposits",
        count(east.log().await, "Withdrawn"),
        count(east.log().await, "Completed"),
        count(east.log().await, "Refunded"),
        stats.executed(),
        stats.refused(),
        count(west.log().await, "Deposited"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interbank_transfers_over_the_memory_broker() {
    let broker = MemoryBroker::new();
    transfers_between_two_services(&broker, async || {
        broker.set_down(true);
        tokio::time::sleep(Duration::from_millis(500)).await;
        broker.set_down(false);
    })
    .await;
    assert!(broker.refused() > 0, "the outage refused no publish");
}

/// East on PostgreSQL: its instances, deadlines and inbox in its schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interbank_transfers_from_postgres_over_the_memory_broker() {
    let Some(east) = Bank::postgres("east", EAST_ACCOUNTS).await else {
        return;
    };
    let broker = MemoryBroker::new();
    let target = east.store.projection_target();
    transfers_from(&east, target, &broker, async || {
        broker.set_down(true);
        tokio::time::sleep(Duration::from_millis(500)).await;
        broker.set_down(false);
    })
    .await;
}

/// A broker of `kind` this test starts (and so can restart), and its address; `None` (said
/// on stderr) when there is none.
fn restartable(kind: Kind, tests: &str) -> Option<(Broker, Remote)> {
    let broker = Broker::start(kind, tests)?;
    if !broker.restartable() {
        eprintln!("SKIPPED: the broker restart test needs a broker it starts itself");
        return None;
    }
    let remote = Remote {
        kind,
        address: broker.address().to_owned(),
    };
    Some((broker, remote))
}

async fn with_restart(kind: Kind) {
    let Some((mut broker, remote)) = restartable(kind, "interbank tests") else {
        return;
    };
    transfers_between_two_services(&remote, async || {
        // Commands and events are on their way: take the broker away for a while.
        broker.kill();
        tokio::time::sleep(Duration::from_secs(1)).await;
        broker.resume();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interbank_transfers_over_nats_with_a_broker_restart() {
    with_restart(Kind::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interbank_transfers_over_kafka_with_a_broker_restart() {
    with_restart(Kind::Kafka).await;
}

/// The decisions alone, in the test kit: the credit is published, and west's deposit, come
/// back with the credit's key, completes the transfer.
#[test]
fn the_kit_checks_published_commands_and_received_events() {
    let interbank = Interbank {
        commands: "west-commands".into(),
    };
    let requested = TransferEvent::Requested {
        from: "east-0".into(),
        to: "west-0".into(),
        cents: 500,
    };
    let deposit = AccountCommand::from(Deposit { cents: 500 });
    ProcessTest::new(interbank)
        .when::<Transfer>("t-1", requested)
        .then_expect_commands::<Account>([("east-0", Withdraw { cents: 500 })])
        .when_applied::<Account>("east-0", Withdrawn { cents: 500 })
        .then_expect_commands::<Account>(Vec::<(String, Withdraw)>::new())
        .then_expect_published("west-commands", [("west-0", deposit)])
        // A deposit into west-0 that no command of this transfer caused is not its credit.
        .when_received::<AccountPublic>(Account::TYPE, "west-0", BalanceChanged { cents: 1 })
        .then_expect_no_commands()
        .when::<Transfer>(
            "t-2",
            TransferEvent::Requested {
                from: "east-1".into(),
                to: "west-0".into(),
                cents: 7,
            },
        )
        .when_applied::<Account>("east-1", Withdrawn { cents: 7 })
        .when_received_applied::<AccountPublic>(
            Account::TYPE,
            "west-0",
            BalanceChanged { cents: 7 },
        )
        .then_expect_commands::<Transfer>([("t-2", Complete {})])
        .when::<Transfer>("t-2", TransferEvent::Completed {})
        .then_completed("t-2");
}

/// A message delivered twice (before and after the commit of the first copy) moves its
/// instance once: the runner records each message's id with the instance it moved.
#[tokio::test]
async fn a_message_delivered_again_takes_effect_once() {
    let east = Bank::open("east", 1).await;
    let broker = MemoryBroker::new();
    let dispatcher = || {
        Dispatcher::new()
            .route(Repository::<Account, _>::new(east.store.clone()))
            .route(Repository::<Transfer, _>::new(east.store.clone()))
    };
    let manager = Interbank {
        commands: "west-commands".into(),
    };
    let target = MemoryTarget::new();
    let mut runner = ProcessRunner::new(
        east.store.clone(),
        target.clone(),
        manager.clone(),
        dispatcher(),
    )
    .source(broker.subscribe("east", &["west-accounts"]))
    .publisher(broker.publisher());
    let transfers = Repository::<Transfer, _>::new(east.store.clone());
    let request = Request {
        from: "east-0".into(),
        to: "west-9".into(),
        cents: 250,
    };
    transfers.execute(&"t-1".to_owned(), request).await.unwrap();
    // The withdrawal, then (reading its event) the credit.
    runner.catch_up().await.unwrap();
    let progress = runner.catch_up().await.unwrap();
    assert_eq!(progress.published, 1, "{progress:?}");
    let [credit] = &broker.messages("west-commands")[..] else {
        panic!(
            "one credit published: {:?}",
            broker.messages("west-commands")
        );
    };
    assert_eq!(credit.key, "west-9");
    assert_eq!(
        serde_json::from_str::<AccountCommand>(&credit.payload).unwrap(),
        AccountCommand::from(Deposit { cents: 250 })
    );

    // West's deposit, as its relay publishes it (its public contract), delivered twice.
    let deposited = AccountPublic::from(BalanceChanged { cents: 250 });
    let stored = StoredEvent {
        aggregate_type: Account::TYPE.to_owned(),
        aggregate_id: "west-9".to_owned(),
        sequence: 3,
        position: LogPosition::START,
        event_id: Uuid::now_v7(),
        event_type: cqrs_runtime::DomainEvent::event_type(&deposited).to_owned(),
        event_version: cqrs_runtime::DomainEvent::event_version(&deposited),
        recorded_at: chrono::Utc::now(),
        metadata: credit.metadata.clone(),
        event: cqrs_runtime::DomainEvent::encode(&deposited).unwrap(),
    };
    let message = cqrs_runtime::bus::Message::from_stored("west-accounts", &stored);
    broker.push(message.clone());
    broker.push(message.clone());
    let progress = runner.catch_up().await.unwrap();
    assert_eq!(progress.received, 1, "{progress:?}");
    runner.catch_up().await.unwrap();
    let transfer = transfers.load(&"t-1".to_owned()).await.unwrap();
    assert_eq!(
        transfer.state().ended,
        Some(bank::transfers::Ending::Completed)
    );

    // And once more after the commit: recorded, skipped.
    broker.push(message.clone());
    let progress = runner.catch_up().await.unwrap();
    assert_eq!(progress.received, 0, "{progress:?}");
    let completions = east
        .log()
        .await
        .into_iter()
        .filter(|e| e.event_type == "Completed");
    assert_eq!(completions.count(), 1);

    // A runner that keeps ids for no time forgets it: the message is handled again, and
    // finds its instance completed (the manager's own state, not the inbox, ends it there).
    drop(runner);
    let mut forgetful = ProcessRunner::new(east.store.clone(), target, manager, dispatcher())
        .source(broker.subscribe("east", &["west-accounts"]))
        .keep_processed_ids(Duration::ZERO);
    broker.push(message);
    let progress = forgetful.catch_up().await.unwrap();
    assert_eq!(progress.received, 1, "{progress:?}");
    assert_eq!(progress.commands, 0, "{progress:?}");
}

/// The schema export says what the manager receives from other services, by contract.
#[test]
fn the_schema_lists_the_contract_events_it_receives() {
    let managers = cqrs_runtime::schema::process_managers();
    let interbank = managers
        .iter()
        .find(|m| m.name == "interbank")
        .expect("the interbank manager is registered");
    let received: Vec<(&str, Vec<&str>)> = interbank
        .receives
        .iter()
        .map(|r| {
            let types = r.event_types.iter().map(String::as_str).collect();
            (r.contract.as_str(), types)
        })
        .collect();
    assert_eq!(received, [("AccountPublic", vec!["bank.BalanceChanged"])]);
    let json = serde_json::to_value(interbank).unwrap();
    assert_eq!(json["receives"][0]["contract"], "AccountPublic");
}

const KILLED_TRANSFERS: usize = 200;
const KILLS: usize = 10;

fn spawn_east(path: &std::path::Path, kind: Kind, address: &str, west: &West) -> Child {
    Command::new(env!("CARGO_BIN_EXE_interbank_runner"))
        .arg(path)
        .args([kind.name(), address, &west.commands, &west.events])
        .stdout(Stdio::null())
        .spawn()
        .expect("start east's runner")
}

/// East's runner killed ten times during 200 transfers, the broker restarted after the fifth
/// kill: each transfer still ends once, as it should, and no command ran twice.
async fn killed_east_runner(kind: Kind) {
    let Some((mut broker, remote)) = restartable(kind, "interbank crash tests") else {
        return;
    };
    let east = Bank::open("east", EAST_ACCOUNTS).await;
    let path = east
        ._dir
        .as_ref()
        .expect("an SQLite bank")
        .path()
        .join("east.db");
    let west = Bank::open("west", WEST_ACCOUNTS).await;
    let service = West::start(&remote, &west).await;
    let transfers = Repository::<Transfer, _>::new(east.store.clone());

    let mut runner = spawn_east(&path, kind, &remote.address, &service);
    let per_kill = KILLED_TRANSFERS / KILLS;
    for kill in 0..KILLS {
        request(&transfers, kill * per_kill..(kill + 1) * per_kill).await;
        // Let the runner get into the middle of it: sending, publishing, committing.
        tokio::time::sleep(Duration::from_millis(100 + 40 * kill as u64)).await;
        runner.kill().unwrap();
        runner.wait().unwrap();
        if kill == KILLS / 2 {
            broker.kill();
            tokio::time::sleep(Duration::from_millis(500)).await;
            broker.resume();
        }
        runner = spawn_east(&path, kind, &remote.address, &service);
    }
    let ended = all_ended(&transfers, KILLED_TRANSFERS).await;
    runner.kill().unwrap();
    runner.wait().unwrap();
    if !ended {
        panic!("{}", stuck(&east, &west, &service.stats).await);
    }
    service.check(&east, &west, KILLED_TRANSFERS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interbank_runner_killed_ten_times_over_nats() {
    killed_east_runner(Kind::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interbank_runner_killed_ten_times_over_kafka() {
    killed_east_runner(Kind::Kafka).await;
}
