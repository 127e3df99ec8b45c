//! Transfers through the bank's `Transfers` process manager against the same four commands
//! sent directly (request, debit, credit, complete), on SQLite (relaxed durability, so that the
//! fsync does not hide the manager's own work) and PostgreSQL (`DATABASE_URL`; `source
//! scripts/postgres.sh`). One iteration is one transfer: the process manager's rows request
//! the transfers, then run the runner until every transfer ended (one pass carries a batch of
//! transfers through all four steps: it reads the events its own commands recorded as it goes).

use std::time::{Duration, Instant};

use bank::transfers::{Complete, Transfer, TransferCommand, Transfers};
use bank::{Account, AccountCommand, Deposit, Open, Withdraw};
use cqrs_runtime::postgres::{PostgresConfig, PostgresStore};
use cqrs_runtime::process::{Dispatcher, ProcessRunner};
use cqrs_runtime::projection::ProcessTarget;
use cqrs_runtime::sqlite::{Durability, SqliteConfig, SqliteStore};
use cqrs_runtime::{EventStore, Repository};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

struct Bank<S> {
    accounts: Repository<Account, S>,
    transfers: Repository<Transfer, S>,
}

impl<S: EventStore + Clone> Bank<S> {
    async fn new(store: &S) -> Self {
        let accounts = Repository::<Account, _>::new(store.clone());
        for id in ["from", "to"] {
            let open = Open {
                owner: id.into(),
                currency: "EUR".into(),
            };
            accounts
                .execute(&id.to_owned(), AccountCommand::from(open))
                .await
                .unwrap();
        }
        accounts
            .execute(&"from".to_owned(), Deposit { cents: 1 << 50 })
            .await
            .unwrap();
        Bank {
            accounts,
            transfers: Repository::new(store.clone()),
        }
    }

    fn request(n: u64) -> (String, TransferCommand) {
        let id = format!("t-{}-{n}", uuid::Uuid::now_v7().simple());
        let request = TransferCommand::Request {
            from: "from".into(),
            to: "to".into(),
            cents: 1,
        };
        (id, request)
    }

    /// The four commands, sent by the caller.
    async fn direct(&self, transfers: u64) -> Duration {
        let started = Instant::now();
        for n in 0..transfers {
            let (id, request) = Self::request(n);
            self.transfers.execute(&id, request).await.unwrap();
            let (from, to) = ("from".to_owned(), "to".to_owned());
            self.accounts
                .execute(&from, Withdraw { cents: 1 })
                .await
                .unwrap();
            self.accounts
                .execute(&to, Deposit { cents: 1 })
                .await
                .unwrap();
            self.transfers.execute(&id, Complete {}).await.unwrap();
        }
        started.elapsed()
    }

    /// The requests, then the runner until nothing is left to do.
    async fn managed<T>(&self, store: &S, target: &T, transfers: u64) -> Duration
    where
        T: ProcessTarget + Clone,
    {
        let dispatcher = Dispatcher::new()
            .route(self.accounts.clone())
            .route(self.transfers.clone());
        let mut runner = ProcessRunner::new(
            store.clone(),
            target.clone(),
            Transfers::default(),
            dispatcher,
        );
        let started = Instant::now();
        for n in 0..transfers {
            let (id, request) = Self::request(n);
            self.transfers.execute(&id, request).await.unwrap();
        }
        while runner.catch_up().await.unwrap().read > 0 {}
        started.elapsed()
    }
}

/// `direct` runs on one store, the process manager on another (`store` and `target`): a
/// runner would otherwise carry out the direct rows' transfers too.
fn measure<S, T>(c: &mut Criterion, name: &str, direct: S, store: S, target: T)
where
    S: EventStore + Clone,
    T: ProcessTarget + Clone,
{
    let rt = cqrs_benches::runtime();
    let plain = rt.block_on(Bank::new(&direct));
    let bank = rt.block_on(Bank::new(&store));
    let mut group = c.benchmark_group(format!("transfers_{name}"));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("direct", 1), |b| {
        b.to_async(&rt).iter_custom(|n| plain.direct(n))
    });
    group.bench_function(BenchmarkId::new("process_manager", 1), |b| {
        b.to_async(&rt)
            .iter_custom(|n| bank.managed(&store, &target, n))
    });
    group.finish();
}

fn sqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rt = cqrs_benches::runtime();
    let open = |file: &str| {
        let config = SqliteConfig::new(dir.path().join(file)).durability(Durability::Relaxed);
        rt.block_on(SqliteStore::open(config)).unwrap()
    };
    let (direct, store) = (open("direct.db"), open("managed.db"));
    let _inside = rt.enter();
    let target = store.projection_target();
    measure(c, "sqlite", direct, store, target);
}

fn postgres(c: &mut Criterion) {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("transfers_postgres skipped: set DATABASE_URL (source scripts/postgres.sh)");
        return;
    };
    let rt = cqrs_benches::runtime();
    let connect = || {
        let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
        let config = PostgresConfig::new(&url).schema(schema);
        rt.block_on(PostgresStore::connect(config)).unwrap()
    };
    let (direct, store) = (connect(), connect());
    let target = store.projection_target();
    measure(c, "postgres", direct, store, target);
}

criterion_group!(benches, sqlite, postgres);
criterion_main!(benches);
