//! Our runtime against cqrs-es (the most used Rust CQRS crate) and postgres-es, on the same
//! bank domain, in the same run:
//!
//! - `versus_memory_commands`: open an account then deposits, on one aggregate and on 1,000;
//!   our repository on the in-memory store against `CqrsFramework` on `MemStore`.
//! - `versus_memory_load`: loading an aggregate of 1,000 and 10,000 events; ours replaying every
//!   event, ours from a snapshot, cqrs-es (`MemStore` replays every event: it has no snapshots).
//! - `versus_sqlite_commands`: 1, 8 and 32 clients on SQLite, ours against the same commands
//!   written with the raw driver (no Rust CQRS crate has an SQLite store).
//! - `versus_postgres_commands` (with `DATABASE_URL`): 1, 8 and 32 concurrent clients, each on
//!   its own account, on one local server: ours against `postgres_cqrs`.
//! - `versus_postgres_catchup` (with `DATABASE_URL`): projection catch-up over the same 100,000
//!   events, our `Projector` against cqrs-es's `QueryReplay`.
//!
//! The peer's domain is written by hand against its traits, as its documentation shows.

use std::time::{Duration, Instant};

use bank::{Account, AccountCommand, AccountEvent, Deposit, Open};
use cqrs_runtime::{DomainEvent as _, EventStore, InMemoryStore, Metadata, NewEvent, Repository};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// The bank account written for cqrs-es 0.5.
mod peer {
    use cqrs_es::event_sink::EventSink;
    use cqrs_es::{Aggregate, DomainEvent};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Default, Serialize, Deserialize)]
    pub struct Account {
        opened: bool,
        currency: String,
        pub balance: i64,
    }

    #[derive(Debug, Clone)]
    pub enum Command {
        Open { owner: String, currency: String },
        Deposit { cents: i64 },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum Event {
        Opened { owner: String, currency: String },
        Deposited { cents: i64, currency: String },
    }

    impl DomainEvent for Event {
        fn event_type(&self) -> String {
            match self {
                Event::Opened { .. } => "AccountOpened".to_owned(),
                Event::Deposited { .. } => "Deposited".to_owned(),
            }
        }

        fn event_version(&self) -> String {
            "1.0".to_owned()
        }
    }

    #[derive(Debug, thiserror::Error)]
    pub enum Error {
        #[error("account already open")]
        AlreadyOpen,
        #[error("account not open")]
        NotOpen,
        #[error("amount must be positive")]
        InvalidAmount,
    }

    impl Aggregate for Account {
        const TYPE: &'static str = "bank_account";
        type Command = Command;
        type Event = Event;
        type Error = Error;
        type Services = ();

        async fn handle(
            &mut self,
            command: Command,
            _services: &(),
            sink: &EventSink<Self>,
        ) -> Result<(), Error> {
            let event = match command {
                Command::Open { owner, currency } => {
                    if self.opened {
                        return Err(Error::AlreadyOpen);
                    }
                    Event::Opened { owner, currency }
                }
                Command::Deposit { cents } => {
                    if !self.opened {
                        return Err(Error::NotOpen);
                    }
                    if cents <= 0 {
                        return Err(Error::InvalidAmount);
                    }
                    Event::Deposited {
                        cents,
                        currency: self.currency.clone(),
                    }
                }
            };
            sink.write(event, self).await;
            Ok(())
        }

        fn apply(&mut self, event: Event) {
            match event {
                Event::Opened { currency, .. } => {
                    self.opened = true;
                    self.currency = currency;
                }
                Event::Deposited { cents, .. } => self.balance += cents,
            }
        }
    }
}

fn open() -> AccountCommand {
    Open {
        owner: "Ada".into(),
        currency: "EUR".into(),
    }
    .into()
}

fn peer_open() -> peer::Command {
    peer::Command::Open {
        owner: "Ada".into(),
        currency: "EUR".into(),
    }
}

/// Our repository as a user gets it (the aggregate cache on by default), or without the cache.
fn repository<S: EventStore>(store: S, cached: bool) -> Repository<Account, S> {
    let repo = Repository::<Account, _>::new(store);
    if cached { repo } else { repo.no_cache() }
}

/// Opens `aggregates` accounts and deposits `deposits` times into each, with our repository.
async fn ours<S: EventStore + Clone>(store: S, aggregates: usize, deposits: usize, cached: bool) {
    let repo = repository(store, cached);
    for a in 0..aggregates {
        let id = format!("acc-{a}");
        repo.execute(&id, open()).await.unwrap();
        for d in 0..deposits {
            repo.execute(
                &id,
                Deposit {
                    cents: 1 + d as i64,
                },
            )
            .await
            .unwrap();
        }
    }
}

/// The same with cqrs-es.
async fn theirs<ES: cqrs_es::EventStore<peer::Account>>(
    cqrs: &cqrs_es::CqrsFramework<peer::Account, ES>,
    aggregates: usize,
    deposits: usize,
    prefix: &str,
) {
    for a in 0..aggregates {
        let id = format!("{prefix}acc-{a}");
        cqrs.execute(&id, peer_open()).await.unwrap();
        for d in 0..deposits {
            let cents = 1 + d as i64;
            cqrs.execute(&id, peer::Command::Deposit { cents })
                .await
                .unwrap();
        }
    }
}

fn memory_commands(c: &mut Criterion) {
    let rt = cqrs_benches::runtime();
    let mut group = c.benchmark_group("versus_memory_commands");
    group.sample_size(10);
    for (aggregates, deposits) in [(1usize, 1000usize), (10, 100), (1000, 10)] {
        let commands = (aggregates * (deposits + 1)) as u64;
        group.throughput(Throughput::Elements(commands));
        let label = format!("{aggregates}agg_{deposits}dep");
        for (name, cached) in [("ours", false), ("ours_cached", true)] {
            group.bench_function(BenchmarkId::new(name, &label), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            ours(InMemoryStore::new(), aggregates, deposits, cached).await;
                        }
                        start.elapsed()
                    })
                })
            });
        }
        group.bench_function(BenchmarkId::new("cqrs_es", &label), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let store = cqrs_es::mem_store::MemStore::<peer::Account>::default();
                        let cqrs = cqrs_es::CqrsFramework::new(store, vec![], ());
                        theirs(&cqrs, aggregates, deposits, "").await;
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

fn memory_load(c: &mut Criterion) {
    let rt = cqrs_benches::runtime();
    let mut group = c.benchmark_group("versus_memory_load");
    group.sample_size(20);
    for events in [1000usize, 10_000] {
        group.throughput(Throughput::Elements(events as u64));
        // Ours without snapshots: the events appended directly, so none was taken.
        let replay_store = InMemoryStore::new();
        rt.block_on(replay_store.append(
            bank::ACCOUNT_TYPE,
            "acc",
            0,
            &cqrs_benches::account_events(events),
        ))
        .unwrap();
        let replay = Repository::<Account, _>::new(replay_store);
        group.bench_function(BenchmarkId::new("ours_replay", events), |b| {
            b.iter(|| rt.block_on(replay.load(&"acc".to_owned())).unwrap())
        });
        // The limit: the same events as text in a `Vec`, each decoded through the same
        // `DomainEvent::decode` and applied to the state through one reused envelope.
        let raw: Vec<NewEvent> = cqrs_benches::account_events(events);
        group.bench_function(BenchmarkId::new("raw_vec", events), |b| {
            b.iter(|| {
                let mut state = <Account as cqrs_runtime::Aggregate>::initial();
                let mut envelope: Option<cqrs_runtime::EventEnvelope<AccountEvent>> = None;
                for (i, stored) in raw.iter().enumerate() {
                    let event = AccountEvent::decode(
                        stored.event_type,
                        stored.event_version,
                        &stored.payload,
                    )
                    .unwrap();
                    let envelope = match &mut envelope {
                        Some(envelope) => {
                            envelope.sequence = i as u64 + 1;
                            envelope.event = event;
                            envelope
                        }
                        slot @ None => slot.insert(cqrs_runtime::EventEnvelope {
                            aggregate_type: bank::ACCOUNT_TYPE.to_owned(),
                            aggregate_id: "acc".to_owned(),
                            sequence: 1,
                            position: cqrs_runtime::LogPosition::serial(1),
                            event_id: stored.event_id,
                            event_type: stored.event_type.to_owned(),
                            event_version: stored.event_version,
                            recorded_at: stored.recorded_at,
                            metadata: Metadata::default(),
                            event,
                        }),
                    };
                    cqrs_runtime::Aggregate::apply(&mut state, envelope);
                }
                state
            })
        });
        // Ours with snapshots: the same events through the repository (a snapshot every 50).
        let snap_store = InMemoryStore::new();
        rt.block_on(ours(snap_store.clone(), 1, events - 1, false));
        let snapped = Repository::<Account, _>::new(snap_store);
        assert_eq!(
            rt.block_on(snapped.load(&"acc-0".to_owned()))
                .unwrap()
                .version(),
            events as u64
        );
        group.bench_function(BenchmarkId::new("ours_snapshot", events), |b| {
            b.iter(|| rt.block_on(snapped.load(&"acc-0".to_owned())).unwrap())
        });
        // cqrs-es: its store replays every event (MemStore has no snapshots).
        let store = cqrs_es::mem_store::MemStore::<peer::Account>::default();
        rt.block_on(async {
            seed_peer(&store, "acc", events).await;
        });
        group.bench_function(BenchmarkId::new("cqrs_es", events), |b| {
            b.iter(|| {
                rt.block_on(async {
                    use cqrs_es::EventStore as _;
                    store.load_aggregate("acc").await.unwrap()
                })
            })
        });
    }
    group.finish();
}

/// Deposits per client in the concurrent-client groups.
const CLIENT_DEPOSITS: usize = 20;

/// `iters` rounds of `clients` concurrent tasks made by `task`; the time they all took.
fn concurrently<F, Fut>(
    rt: &tokio::runtime::Runtime,
    iters: u64,
    clients: usize,
    task: F,
) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let tasks: Vec<_> = (0..clients).map(|_| tokio::spawn(task())).collect();
            for task in tasks {
                task.await.unwrap();
            }
        }
        start.elapsed()
    })
}

/// One client of ours: a new account, opened, then `CLIENT_DEPOSITS` deposits.
async fn our_client<S: EventStore>(repo: Repository<Account, S>) {
    let id = uuid::Uuid::now_v7().to_string();
    repo.execute(&id, open()).await.unwrap();
    for d in 0..CLIENT_DEPOSITS {
        repo.execute(
            &id,
            Deposit {
                cents: 1 + d as i64,
            },
        )
        .await
        .unwrap();
    }
}

fn postgres_commands(c: &mut Criterion) {
    let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("versus_postgres skipped: set DATABASE_URL (source scripts/postgres.sh)");
        return;
    };
    let rt = cqrs_benches::runtime();
    let ours_store = rt
        .block_on(cqrs_runtime::postgres::PostgresStore::connect(
            cqrs_runtime::postgres::PostgresConfig::new(&url)
                .schema("bench_versus")
                .max_connections(40),
        ))
        .unwrap();
    let pool = rt.block_on(async {
        let pool = sqlx_0_8::postgres::PgPoolOptions::new()
            .max_connections(40)
            .connect(&url)
            .await
            .unwrap();
        sqlx_0_8::raw_sql(include_str!("versus_postgres_es.sql"))
            .execute(&pool)
            .await
            .unwrap();
        pool
    });
    let repo = postgres_es::PostgresEventRepository::new(pool)
        .with_tables("bench_peer.events", "bench_peer.snapshots");
    let store = cqrs_es::persist::PersistedEventStore::new_event_store(repo);
    let peer = std::sync::Arc::new(cqrs_es::CqrsFramework::new(store, vec![], ()));

    let mut group = c.benchmark_group("versus_postgres_commands");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for clients in [1usize, 8, 32] {
        let commands = (clients * (CLIENT_DEPOSITS + 1)) as u64;
        group.throughput(Throughput::Elements(commands));
        for (name, cached) in [("ours", false), ("ours_cached", true)] {
            group.bench_function(BenchmarkId::new(name, clients), |b| {
                b.iter_custom(|iters| {
                    concurrently(&rt, iters, clients, || {
                        our_client(repository(ours_store.clone(), cached))
                    })
                })
            });
        }
        group.bench_function(BenchmarkId::new("postgres_es", clients), |b| {
            b.iter_custom(|iters| {
                concurrently(&rt, iters, clients, || {
                    let peer = std::sync::Arc::clone(&peer);
                    async move {
                        let prefix = uuid::Uuid::now_v7().to_string();
                        theirs(&peer, 1, CLIENT_DEPOSITS, &prefix).await;
                    }
                })
            })
        });
    }
    group.finish();
}

/// SQLite has no peer among the Rust CQRS crates: ours against the same commands written with
/// the raw driver (read the stream, decode it, decide, append at the version; durable commits),
/// 1, 8 and 32 clients, each on its own account.
fn sqlite_commands(c: &mut Criterion) {
    let rt = cqrs_benches::runtime();
    let dir = tempfile::tempdir().unwrap();
    let ours_store = rt
        .block_on(cqrs_runtime::sqlite::SqliteStore::open(
            cqrs_runtime::sqlite::SqliteConfig::new(dir.path().join("ours.db")),
        ))
        .unwrap();
    let raw = rt.block_on(cqrs_benches::RawSqlite::open(
        &dir.path().join("raw.db"),
        32,
        true,
    ));
    let mut group = c.benchmark_group("versus_sqlite_commands");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for clients in [1usize, 8, 32] {
        group.throughput(Throughput::Elements(
            (clients * (CLIENT_DEPOSITS + 1)) as u64,
        ));
        group.bench_function(BenchmarkId::new("ours", clients), |b| {
            b.iter_custom(|iters| {
                concurrently(&rt, iters, clients, || {
                    our_client(repository(ours_store.clone(), false))
                })
            })
        });
        group.bench_function(BenchmarkId::new("raw_driver", clients), |b| {
            b.iter_custom(|iters| {
                concurrently(&rt, iters, clients, || {
                    let raw = raw.clone();
                    async move {
                        let id = uuid::Uuid::now_v7().to_string();
                        for d in 0..=CLIENT_DEPOSITS {
                            // Load and fold the stream, then append at its version.
                            let stored = raw.read(&id).await;
                            let balance: i64 = stored
                                .iter()
                                .filter_map(|p| serde_json::from_str::<bank::Deposited>(p).ok())
                                .map(|e| e.amount.cents)
                                .sum();
                            std::hint::black_box(balance);
                            let event = if d == 0 {
                                &cqrs_benches::account_events(1)[..]
                            } else {
                                &cqrs_benches::account_events(2)[1..]
                            };
                            raw.append(&id, stored.len() as i64, event).await;
                        }
                    }
                })
            })
        });
    }
    group.finish();
}

/// A read model for both sides: the total deposited per account.
#[derive(Debug, Default, Clone)]
struct PeerTotals {
    totals: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
    events: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

#[async_trait::async_trait]
impl cqrs_es::Query<peer::Account> for PeerTotals {
    async fn dispatch(&self, aggregate_id: &str, events: &[cqrs_es::EventEnvelope<peer::Account>]) {
        let mut totals = self.totals.lock().unwrap();
        for envelope in events {
            self.events
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let peer::Event::Deposited { cents, .. } = &envelope.payload {
                *totals.entry(aggregate_id.to_owned()).or_default() += cents;
            }
        }
    }
}

/// Ours: the same read model as a projection.
#[derive(Debug, Default)]
struct OurTotals {
    totals: std::collections::HashMap<String, i64>,
    events: u64,
}

#[cqrs_runtime::projection(aggregates(Account), name = "versus-totals")]
impl OurTotals {
    fn opened(&mut self, _event: &bank::Opened) {
        self.events += 1;
    }

    fn deposited(&mut self, event: &bank::Deposited, envelope: &cqrs_runtime::StoredEvent) {
        self.events += 1;
        *self
            .totals
            .entry(envelope.aggregate_id.clone())
            .or_default() += event.amount.cents;
    }
}

/// Projection catch-up over the same 100,000 events (100 accounts of 1,000) on both sides:
/// our `Projector` into memory against cqrs-es's `QueryReplay::replay_all`.
fn postgres_catchup(c: &mut Criterion) {
    const ACCOUNTS: usize = 100;
    const PER_ACCOUNT: usize = 1000;
    const EVENTS: u64 = (ACCOUNTS * PER_ACCOUNT) as u64;
    let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        return;
    };
    let rt = cqrs_benches::runtime();
    let ours_store = rt
        .block_on(cqrs_runtime::postgres::PostgresStore::connect(
            cqrs_runtime::postgres::PostgresConfig::new(&url).schema("bench_versus_catchup"),
        ))
        .unwrap();
    let pool = rt.block_on(async {
        let pool = sqlx_0_8::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect(&url)
            .await
            .unwrap();
        sqlx_0_8::raw_sql(
            &include_str!("versus_postgres_es.sql").replace("bench_peer", "bench_peer_catchup"),
        )
        .execute(&pool)
        .await
        .unwrap();
        pool
    });
    rt.block_on(async {
        if ours_store.count_events().await.unwrap() < EVENTS {
            for a in 0..ACCOUNTS {
                ours_store
                    .append(
                        bank::ACCOUNT_TYPE,
                        &format!("acc-{a}"),
                        0,
                        &cqrs_benches::account_events(PER_ACCOUNT),
                    )
                    .await
                    .unwrap();
            }
        }
        let (peer_events,): (i64,) =
            sqlx_0_8::query_as("SELECT count(*) FROM bench_peer_catchup.events")
                .fetch_one(&pool)
                .await
                .unwrap();
        if (peer_events as u64) < EVENTS {
            let store = cqrs_es::persist::PersistedEventStore::<_, peer::Account>::new_event_store(
                postgres_es::PostgresEventRepository::new(pool.clone())
                    .with_tables("bench_peer_catchup.events", "bench_peer_catchup.snapshots"),
            );
            for a in 0..ACCOUNTS {
                seed_peer(&store, &format!("acc-{a}"), PER_ACCOUNT).await;
            }
        }
    });
    let mut group = c.benchmark_group("versus_postgres_catchup");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(EVENTS));
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut runner = cqrs_runtime::Projector::new(
                        ours_store.clone(),
                        cqrs_runtime::projection::MemoryTarget::new(),
                        OurTotals::default(),
                    )
                    .batch_size(2048);
                    runner.catch_up().await.unwrap();
                    assert_eq!(runner.projection().events, EVENTS);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("cqrs_es", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let repo = postgres_es::PostgresEventRepository::new(pool.clone())
                        .with_tables("bench_peer_catchup.events", "bench_peer_catchup.snapshots");
                    let query = PeerTotals::default();
                    let replay = cqrs_es::persist::QueryReplay::new(repo, query.clone());
                    replay.replay_all().await.unwrap();
                    let applied = query.events.load(std::sync::atomic::Ordering::Relaxed);
                    assert_eq!(applied, EVENTS);
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    memory_commands,
    memory_load,
    sqlite_commands,
    postgres_commands,
    postgres_catchup
);
criterion_main!(benches);

/// Commits an opening and `events - 1` deposits to account `id` of a cqrs-es store.
async fn seed_peer<S: cqrs_es::EventStore<peer::Account>>(store: &S, id: &str, events: usize) {
    let context = store.load_aggregate(id).await.unwrap();
    let mut batch = vec![peer::Event::Opened {
        owner: "Ada".into(),
        currency: "EUR".into(),
    }];
    batch.extend((1..events).map(|i| peer::Event::Deposited {
        cents: i as i64,
        currency: "EUR".into(),
    }));
    store
        .commit(batch, context, Default::default())
        .await
        .unwrap();
}
