//! Projections on every store: catch-up, live follow, rebuild equals a from-scratch run, each
//! poison policy, two runners of one projection, versions side by side, inline projections.
//!
//! One suite of generic checks runs on three setups: the in-memory store with a memory read
//! model, SQLite with the read model in its file, PostgreSQL with the read model in its
//! database (skipped without `DATABASE_URL`, failing when `CI` is set).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bank::{Account, AccountCommand, Deposit, Open};
use cqrs_runtime::projection::{Checkpoints, MemoryTarget, PoisonPolicy, ProjectionTarget};
use cqrs_runtime::{
    EventStore, LogPosition, ProjectionError, ProjectionHandlers, Projector, Repository,
    StoredEvent,
};
use cqrs_tests::{MemLedger, PgLedger, Row, SqliteLedger, Switches, expected_rows};

type Rows = Pin<Box<dyn Future<Output = Vec<Row>> + Send>>;

/// A store, a target and a ledger projection, with a way to read the ledger's rows.
struct Case<S, T, P> {
    store: S,
    target: T,
    ledger: P,
    switches: Switches,
    rows: Box<dyn Fn() -> Rows + Send + Sync>,
}

impl<S, T, P> Case<S, T, P>
where
    S: EventStore + Clone,
    T: ProjectionTarget + Clone,
    P: ProjectionHandlers<T::Connection> + Clone,
{
    fn runner(&self) -> Projector<S, T, P> {
        Projector::new(self.store.clone(), self.target.clone(), self.ledger.clone())
            .batch_size(7)
            .poll_interval(Duration::from_millis(50))
            .lease_ttl(Duration::from_secs(2))
    }

    async fn rows(&self) -> Vec<Row> {
        (self.rows)().await
    }

    /// Opens `accounts` accounts named `<prefix>-<n>` and deposits into each `deposits` times;
    /// the deposit amounts are 100 + n, so never the poison amount 13 unless asked with
    /// `poison` = (account, deposit index).
    async fn write(
        &self,
        prefix: &str,
        accounts: usize,
        deposits: usize,
        poison: Option<(usize, usize)>,
    ) {
        let repo = Repository::<Account, _>::new(self.store.clone());
        for a in 0..accounts {
            let id = format!("{prefix}-{a}");
            let open = Open {
                owner: id.clone(),
                currency: "EUR".into(),
            };
            repo.execute(&id, AccountCommand::from(open)).await.unwrap();
            for d in 0..deposits {
                let cents = if poison == Some((a, d)) {
                    13
                } else {
                    100 + d as i64
                };
                repo.execute(&id, AccountCommand::from(Deposit { cents }))
                    .await
                    .unwrap();
            }
        }
    }

    /// The whole log, once `count` events are readable.
    async fn log(&self, count: usize) -> Vec<StoredEvent> {
        cqrs_runtime::testing::read_log_until(&self.store, LogPosition::START, count).await
    }

    /// Waits until the ledger holds `count` rows (or 30 s pass, and the caller's assertion
    /// shows what it holds).
    async fn wait_for_rows(&self, count: usize) -> Vec<Row> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let rows = self.rows().await;
            if rows.len() >= count || Instant::now() > deadline {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn catch_up_then_only_new_events<S, T, P>(case: Case<S, T, P>)
where
    S: EventStore + Clone,
    T: ProjectionTarget + Clone,
    P: ProjectionHandlers<T::Connection> + Clone,
{
    case.write("a", 3, 4, None).await;
    // Everything written is readable (PostgreSQL may hold events back a moment).
    let log = case.log(15).await;
    let mut runner = case.runner();
    let first = runner.catch_up().await.unwrap();
    assert_eq!(first.read, 15);
    assert_eq!(case.rows().await, expected_rows(&log));
    assert_eq!(first.checkpoint, log[14].position);

    case.write("b", 1, 2, None).await;
    let log = case.log(18).await;
    let second = runner.catch_up().await.unwrap();
    assert_eq!(second.read, 3, "only the new events are read again");
    assert_eq!(case.rows().await, expected_rows(&log));
    assert_eq!(
        case.target.checkpoint(P::id()).await.unwrap(),
        Some(log[17].position)
    );
}

async fn live_follow<S, T, P>(case: Case<S, T, P>)
where
    S: EventStore + Clone,
    T: ProjectionTarget + Clone,
    P: ProjectionHandlers<T::Connection> + Clone,
{
    case.write("early", 2, 2, None).await;
    let mut runner = case.runner();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let live = tokio::spawn(async move {
        runner
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    assert_eq!(
        case.wait_for_rows(6).await.len(),
        6,
        "caught up with the early events"
    );
    case.write("late", 3, 3, None).await;
    let rows = case.wait_for_rows(18).await;
    let log = case.log(18).await;
    assert_eq!(
        rows,
        expected_rows(&log),
        "the live runner applied the later events"
    );
    stop.send(()).unwrap();
    assert_eq!(
        live.await.unwrap().unwrap(),
        cqrs_runtime::projection::Stopped::Shutdown
    );
}

async fn rebuild_equals_a_fresh_run<S, T, P>(case: Case<S, T, P>)
where
    S: EventStore + Clone,
    T: ProjectionTarget + Clone,
    P: ProjectionHandlers<T::Connection> + Clone,
{
    case.write("r", 4, 5, None).await;
    let log = case.log(24).await;
    let mut runner = case.runner();
    runner.catch_up().await.unwrap();
    let before = case.rows().await;
    let mut reports = Vec::new();
    let rebuilt = runner.rebuild(|p| reports.push(p)).await.unwrap();
    assert_eq!(rebuilt.read, 24);
    let after = case.rows().await;
    assert_eq!(
        after, before,
        "a rebuild ends where the first run did, with no duplicate"
    );
    assert_eq!(after, expected_rows(&log));
    let last = reports.last().expect("progress was reported");
    assert_eq!((last.read, last.total), (24, 24));
    assert!(
        reports.windows(2).all(|w| w[0].read <= w[1].read),
        "progress only grows: {reports:?}"
    );
}

async fn poison_stops_before_the_event<S, T, P>(case: Case<S, T, P>)
where
    S: EventStore + Clone,
    T: ProjectionTarget + Clone,
    P: ProjectionHandlers<T::Connection> + Clone,
{
    case.switches.poison(13, u32::MAX);
    // Account p-1's third deposit (its 4th event) is the poison.
    case.write("p", 3, 4, Some((1, 2))).await;
    let log = case.log(15).await;
    let poison = log
        .iter()
        .position(|e| e.aggregate_id == "p-1" && e.sequence == 4)
        .unwrap();
    let mut runner = case.runner();
    let error = runner.catch_up().await.unwrap_err();
    let ProjectionError::Handler {
        event, attempts, ..
    } = &error
    else {
        panic!("expected a handler error, got {error}");
    };
    assert_eq!((event.aggregate_id.as_str(), event.sequence), ("p-1", 4));
    assert_eq!(event.event_type, "Deposited");
    assert_eq!(*attempts, 1);
    let message = error.to_string();
    assert!(
        message.contains("poison deposit of 13 cents") && message.contains("`p-1`"),
        "the error names the event and the cause: {message}"
    );
    assert_eq!(
        case.target.checkpoint(P::id()).await.unwrap(),
        Some(log[poison - 1].position),
        "the checkpoint stays just before the poison event"
    );
    assert_eq!(case.rows().await, expected_rows(&log[..poison]));
    // Stopping again, at the same event: never a silent skip.
    assert!(runner.catch_up().await.is_err());
    assert_eq!(case.rows().await, expected_rows(&log[..poison]));
    case.switches.cure();
    runner.catch_up().await.unwrap();
    assert_eq!(case.rows().await, expected_rows(&log));
}

async fn poison_retried_until_it_applies<S, T, P>(case: Case<S, T, P>)
where
    S: EventStore + Clone,
    T: ProjectionTarget + Clone,
    P: ProjectionHandlers<T::Connection> + Clone,
{
    case.switches.poison(13, 2);
    case.write("t", 2, 3, Some((0, 1))).await;
    let log = case.log(8).await;
    let mut runner = case
        .runner()
        .on_error(PoisonPolicy::retry(3, Duration::from_millis(1)));
    runner.catch_up().await.unwrap();
    assert_eq!(case.switches.attempts(), 3, "two failures, then it applied");
    assert_eq!(case.rows().await, expected_rows(&log));
    assert!(runner.parked().await.unwrap().is_empty());
}

async fn poison_parked_then_replayed<S, T, P>(case: Case<S, T, P>)
where
    S: EventStore + Clone,
    T: ProjectionTarget + Clone,
    P: ProjectionHandlers<T::Connection> + Clone,
{
    case.switches.poison(13, u32::MAX);
    case.write("k", 2, 3, Some((1, 0))).await;
    let log = case.log(8).await;
    let mut runner = case
        .runner()
        .on_error(PoisonPolicy::retry(1, Duration::from_millis(1)).then_park());
    runner.catch_up().await.unwrap();
    let parked = runner.parked().await.unwrap();
    assert_eq!(parked.len(), 1);
    let poison = &parked[0];
    assert_eq!(
        (poison.event.aggregate_id.as_str(), poison.event.sequence),
        ("k-1", 2)
    );
    assert_eq!(poison.attempts, 2);
    assert!(
        poison.error.contains("poison deposit of 13 cents"),
        "{}",
        poison.error
    );
    let original = log
        .iter()
        .find(|e| e.event_id == poison.event.event_id)
        .unwrap();
    assert_eq!(&poison.event, original, "the whole event is parked");
    let without: Vec<Row> = expected_rows(&log)
        .into_iter()
        .filter(|r| !(r.0 == "k-1" && r.1 == 2))
        .collect();
    assert_eq!(case.rows().await, without, "the rest went on");

    // Still failing: the replay reports it and the event stays parked.
    assert!(runner.replay_parked(poison.event.event_id).await.is_err());
    assert_eq!(runner.parked().await.unwrap().len(), 1);
    case.switches.cure();
    runner.replay_parked(poison.event.event_id).await.unwrap();
    assert!(runner.parked().await.unwrap().is_empty());
    assert_eq!(case.rows().await, expected_rows(&log));
    assert!(matches!(
        runner.replay_parked(poison.event.event_id).await,
        Err(ProjectionError::NotParked { .. })
    ));
}

async fn two_runners_never_double_apply<S, T, P>(case: Case<S, T, P>)
where
    S: EventStore + Clone,
    T: ProjectionTarget + Clone,
    P: ProjectionHandlers<T::Connection> + Clone,
{
    case.write("d", 2, 2, None).await;
    let mut stops = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let mut runner = case.runner();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        tasks.push(tokio::spawn(async move {
            runner
                .run(async {
                    let _ = stopped.await;
                })
                .await
        }));
    }
    case.write("e", 3, 4, None).await;
    let rows = case.wait_for_rows(21).await;
    // A standby that took over late would show as a duplicate row here.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(case.rows().await, rows);
    assert_eq!(
        rows,
        expected_rows(&case.log(21).await),
        "every event exactly once"
    );
    // A one-shot catch-up meanwhile is refused: the projection is held.
    assert!(matches!(
        case.runner().catch_up().await,
        Err(ProjectionError::Fenced(_))
    ));
    for stop in stops {
        stop.send(()).unwrap();
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

macro_rules! suite {
    ($store:ident, $setup:expr) => {
        mod $store {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn catch_up() {
                let Some(case) = $setup.await else { return };
                catch_up_then_only_new_events(case).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn live() {
                let Some(case) = $setup.await else { return };
                live_follow(case).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rebuild() {
                let Some(case) = $setup.await else { return };
                rebuild_equals_a_fresh_run(case).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn poison_stop() {
                let Some(case) = $setup.await else { return };
                poison_stops_before_the_event(case).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn poison_retry() {
                let Some(case) = $setup.await else { return };
                poison_retried_until_it_applies(case).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn poison_park() {
                let Some(case) = $setup.await else { return };
                poison_parked_then_replayed(case).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn two_runners() {
                let Some(case) = $setup.await else { return };
                two_runners_never_double_apply(case).await;
            }
        }
    };
}

async fn memory_case() -> Option<Case<cqrs_runtime::InMemoryStore, MemoryTarget, MemLedger>> {
    let ledger = MemLedger::default();
    let view = ledger.clone();
    Some(Case {
        store: cqrs_runtime::InMemoryStore::new(),
        target: MemoryTarget::new(),
        switches: ledger.switches.clone(),
        ledger,
        rows: Box::new(move || {
            let view = view.clone();
            Box::pin(async move { view.sorted_rows() })
        }),
    })
}

suite!(memory, memory_case());

async fn sqlite_case()
-> Option<Case<cqrs_runtime::sqlite::SqliteStore, cqrs_runtime::sqlite::SqliteTarget, SqliteLedger>>
{
    use cqrs_runtime::sqlite::{Durability, SqliteConfig, SqliteStore};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.keep().join("projections.db");
    let store = SqliteStore::open(SqliteConfig::new(path).durability(Durability::Relaxed))
        .await
        .unwrap();
    let target = store.projection_target();
    let pool = target.pool().clone();
    let ledger = SqliteLedger::default();
    Some(Case {
        store,
        target,
        switches: ledger.switches.clone(),
        ledger,
        rows: Box::new(move || {
            let pool = pool.clone();
            Box::pin(async move { SqliteLedger::rows(&pool).await })
        }),
    })
}

suite!(sqlite, sqlite_case());

fn database_url() -> Option<String> {
    cqrs_tests::database_url("PostgreSQL projection tests")
}

async fn postgres_case() -> Option<
    Case<cqrs_runtime::postgres::PostgresStore, cqrs_runtime::postgres::PostgresTarget, PgLedger>,
> {
    use cqrs_runtime::postgres::{PostgresConfig, PostgresStore};
    let url = database_url()?;
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    let store = PostgresStore::connect(PostgresConfig::new(url).schema(&schema).max_connections(8))
        .await
        .unwrap();
    let target = store.projection_target();
    let ledger = PgLedger::new(&schema);
    let (view, pool) = (ledger.clone(), store.pool().clone());
    Some(Case {
        store,
        target,
        switches: ledger.switches.clone(),
        ledger,
        rows: Box::new(move || {
            let (view, pool) = (view.clone(), pool.clone());
            Box::pin(async move { view.rows(&pool).await })
        }),
    })
}

suite!(postgres, postgres_case());

/// Version 2 builds beside version 1 while version 1 keeps serving; once version 2 caught up
/// it is the active version, and the version 1 runner stops by itself.
async fn versions_side_by_side<S, T>(store: S, target: T)
where
    S: EventStore + Clone,
    T: ProjectionTarget<Connection = ()> + Clone,
{
    let case = Case {
        store: store.clone(),
        target: target.clone(),
        ledger: MemLedger::default(),
        switches: Switches::default(),
        rows: Box::new(|| Box::pin(async { Vec::new() })),
    };
    case.write("v", 2, 3, None).await;
    let log = case.log(8).await;
    let v1 = case.ledger.clone();
    let mut runner_v1 = case.runner();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let live_v1 = tokio::spawn(async move {
        runner_v1
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while target.active_version("ledger").await.unwrap() != Some(1) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(target.active_version("ledger").await.unwrap(), Some(1));

    let v2 = cqrs_tests::MemLedgerV2::default();
    let mut runner_v2 =
        Projector::new(store, target.clone(), v2.clone()).poll_interval(Duration::from_millis(50));
    runner_v2.catch_up().await.unwrap();
    assert_eq!(
        v2.0.sorted_rows(),
        expected_rows(&log),
        "version 2 built its own model"
    );
    assert_eq!(target.active_version("ledger").await.unwrap(), Some(2));
    let stopped_v1 = tokio::time::timeout(Duration::from_secs(30), live_v1)
        .await
        .expect("version 1 stops once version 2 is active")
        .unwrap()
        .unwrap();
    assert_eq!(
        stopped_v1,
        cqrs_runtime::projection::Stopped::Superseded { active: 2 }
    );
    assert_eq!(
        v1.sorted_rows(),
        expected_rows(&log),
        "version 1 served until then"
    );
    drop(stop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_versions_side_by_side() {
    versions_side_by_side(cqrs_runtime::InMemoryStore::new(), MemoryTarget::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_versions_side_by_side() {
    use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("v.db")))
        .await
        .unwrap();
    versions_side_by_side(store, MemoryTarget::new()).await;
}

/// A rebuild of a projection without `#[reset]` is refused with a message saying why.
#[tokio::test]
async fn rebuild_needs_a_reset_handler() {
    #[derive(Debug, Clone, Default)]
    struct NoReset;
    #[cqrs_runtime::projection(aggregates(Account))]
    impl NoReset {
        fn opened(&mut self, _event: &bank::Opened) {}
    }
    let mut runner = Projector::new(
        cqrs_runtime::InMemoryStore::new(),
        MemoryTarget::new(),
        NoReset,
    );
    runner.catch_up().await.unwrap();
    let error = runner.rebuild(|_| {}).await.unwrap_err();
    assert!(matches!(error, ProjectionError::NoReset(_)));
    assert!(
        error.to_string().contains("has no `#[reset]` handler"),
        "{error}"
    );
}

mod inline {
    use cqrs_runtime::projection::InlineProjections;
    use cqrs_runtime::{CommandError, StoreError};

    use super::*;

    /// A command's events are in the inline read model when the command returns; a failing
    /// inline handler fails the command, and nothing of it is stored.
    async fn read_your_writes<S: EventStore + Clone>(
        store: S,
        switches: &Switches,
        rows: impl Fn() -> Rows,
    ) {
        let repo = Repository::<Account, _>::new(store.clone());
        let open = Open {
            owner: "Ada".into(),
            currency: "EUR".into(),
        };
        repo.execute(&"i-1".to_owned(), AccountCommand::from(open))
            .await
            .unwrap();
        assert_eq!(rows().await, vec![("i-1".to_owned(), 1, 0)]);
        repo.execute(
            &"i-1".to_owned(),
            AccountCommand::from(Deposit { cents: 500 }),
        )
        .await
        .unwrap();
        assert_eq!(
            rows().await.len(),
            2,
            "up to date as soon as the command returned"
        );

        switches.poison(13, u32::MAX);
        let error = repo
            .execute(
                &"i-1".to_owned(),
                AccountCommand::from(Deposit { cents: 13 }),
            )
            .await
            .unwrap_err();
        let CommandError::Store(StoreError::Inline {
            projection, event, ..
        }) = &error
        else {
            panic!("expected an inline projection error, got {error:?}");
        };
        assert_eq!(projection, "ledger v1");
        assert!(event.contains("`i-1`") && event.contains("#3"), "{event}");
        assert_eq!(rows().await.len(), 2);
        assert_eq!(
            repo.load(&"i-1".to_owned()).await.unwrap().version(),
            2,
            "nothing was stored"
        );
        // Other appends go on.
        repo.execute(
            &"i-1".to_owned(),
            AccountCommand::from(Deposit { cents: 7 }),
        )
        .await
        .unwrap();
        assert_eq!(rows().await.last(), Some(&("i-1".to_owned(), 3, 7)));
    }

    #[tokio::test]
    async fn memory() {
        let ledger = MemLedger::default();
        let store =
            cqrs_runtime::InMemoryStore::with_inline(InlineProjections::new().with(ledger.clone()));
        let view = ledger.clone();
        read_your_writes(store, &ledger.switches, move || {
            let view = view.clone();
            Box::pin(async move { view.sorted_rows() })
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
        let dir = tempfile::tempdir().unwrap();
        let ledger = SqliteLedger::default();
        let config = SqliteConfig::new(dir.path().join("inline.db"));
        // Create the ledger table first: inline projections only see new appends.
        {
            let store = SqliteStore::open(config.clone()).await.unwrap();
            let mut runner =
                Projector::new(store.clone(), store.projection_target(), ledger.clone());
            runner.catch_up().await.unwrap();
        }
        let store =
            SqliteStore::open_with_inline(config, InlineProjections::new().with(ledger.clone()))
                .await
                .unwrap();
        let pool = store.projection_target().pool().clone();
        read_your_writes(store, &ledger.switches, move || {
            let pool = pool.clone();
            Box::pin(async move { SqliteLedger::rows(&pool).await })
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        use cqrs_runtime::postgres::{PostgresConfig, PostgresStore};
        let Some(url) = database_url() else { return };
        let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
        let config = PostgresConfig::new(url).schema(&schema);
        let ledger = PgLedger::new(&schema);
        {
            let store = PostgresStore::connect(config.clone()).await.unwrap();
            let mut runner =
                Projector::new(store.clone(), store.projection_target(), ledger.clone());
            runner.catch_up().await.unwrap();
        }
        let store = PostgresStore::connect_with_inline(
            config,
            InlineProjections::new().with(ledger.clone()),
        )
        .await
        .unwrap();
        let pool = store.pool().clone();
        let view = ledger.clone();
        read_your_writes(store, &ledger.switches, move || {
            let (view, pool) = (view.clone(), pool.clone());
            Box::pin(async move { view.rows(&pool).await })
        })
        .await;
    }
}

/// The late-commit scenario of the PostgreSQL store, seen through a projection: an append held
/// open while later ones commit is applied when it commits, in its place, never skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_late_commit_through_a_projection() {
    let Some(case) = postgres_case().await else {
        return;
    };
    case.write("before", 1, 0, None).await;
    case.log(1).await;
    let mut runner = case.runner();
    runner.catch_up().await.unwrap();
    assert_eq!(case.rows().await.len(), 1);

    // Hold an account opening open in its own transaction.
    let held_store = case.store.clone();
    let mut held = held_store.pool().begin().await.unwrap();
    let insert = format!(
        "INSERT INTO {} (aggregate_type, aggregate_id, sequence, event_id, event_type, event_version, payload, metadata, recorded_at) \
         VALUES ($1, 'held', 1, $2, 'Opened', 1, '{{\"owner\":\"Held\",\"currency\":\"EUR\"}}', '{{}}', now())",
        held_store.events_table()
    );
    sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
        .bind(bank::ACCOUNT_TYPE)
        .bind(uuid::Uuid::now_v7())
        .execute(&mut *held)
        .await
        .unwrap();
    case.write("after", 2, 1, None).await;
    runner.catch_up().await.unwrap();
    assert_eq!(
        case.rows().await.len(),
        1,
        "nothing after the held transaction is applied before it commits"
    );
    held.commit().await.unwrap();
    let log = case.log(6).await;
    runner.catch_up().await.unwrap();
    assert_eq!(
        case.rows().await,
        expected_rows(&log),
        "the late event applied, none skipped"
    );
}

/// The in-process stores wake a watcher on commit, long before its poll interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_sqlite_watches_wake_on_commit() {
    use cqrs_runtime::Wake;
    use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
    async fn woken<S: EventStore + Clone>(store: S) {
        let mut watch = store.watch(Duration::from_secs(3600));
        watch.listen().await.unwrap();
        let writer = store.clone();
        tokio::spawn(async move {
            writer
                .append("watched", "w", 0, &[cqrs_runtime::testing::new_event(1)])
                .await
                .unwrap();
        });
        assert_eq!(watch.wait().await, Wake::Notified);
    }
    woken(cqrs_runtime::InMemoryStore::new()).await;
    let dir = tempfile::tempdir().unwrap();
    woken(
        SqliteStore::open(SqliteConfig::new(dir.path().join("w.db")))
            .await
            .unwrap(),
    )
    .await;
}

/// Two projections in one process and one target: each keeps its own checkpoint and both
/// follow the same log live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_projections_in_one_process() {
    use cqrs_runtime::Projection;
    let store = cqrs_runtime::InMemoryStore::new();
    let target = MemoryTarget::new();
    let ledger = MemLedger::default();
    let summaries = bank::AccountSummaries::default();
    let mut first = Projector::new(store.clone(), target.clone(), ledger.clone())
        .poll_interval(Duration::from_millis(50));
    let mut second = Projector::new(store.clone(), target.clone(), summaries.clone())
        .poll_interval(Duration::from_millis(50))
        .batch_size(2);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let (a, b) = (shutdown(stopped.clone()), shutdown(stopped));
    let first = tokio::spawn(async move { first.run(a).await });
    let second = tokio::spawn(async move { second.run(b).await });
    let case = Case {
        store: store.clone(),
        target: target.clone(),
        ledger: ledger.clone(),
        switches: Switches::default(),
        rows: Box::new(|| Box::pin(async { Vec::new() })),
    };
    case.write("s", 3, 2, None).await;
    let log = case.log(9).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while (ledger.rows().len() < 9
        || summaries
            .all()
            .values()
            .map(|s| s.transactions)
            .sum::<u64>()
            < 6)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ledger.sorted_rows(), expected_rows(&log));
    assert_eq!(summaries.all().len(), 3);
    assert!(
        summaries
            .all()
            .values()
            .all(|s| s.balance == 201 && s.version == 3)
    );
    let last = Some(log[8].position);
    assert_eq!(target.checkpoint(MemLedger::id()).await.unwrap(), last);
    assert_eq!(
        target
            .checkpoint(bank::AccountSummaries::id())
            .await
            .unwrap(),
        last
    );
    assert_ne!(MemLedger::id(), bank::AccountSummaries::id());
    stop.send(true).unwrap();
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
}
