//! Process managers on every store: the runner follows the log, sends each instance's
//! commands once (run again, or replayed from the start with a fresh checkpoint, nothing is
//! applied twice), keeps instances and deadlines in the target, fires deadlines when due,
//! hears of refusals, and archives completed instances when asked.

use std::time::Duration;

use cqrs_runtime::doc_support::{Counter, CounterCommand, CounterEvent, Mirror};
use cqrs_runtime::postgres::{PostgresConfig, PostgresStore};
use cqrs_runtime::process::{Dispatcher, Effects, ProcessManager, ProcessRunner, Refused, Route};
use cqrs_runtime::projection::{FollowerId, MemoryTarget, PoisonPolicy, ProcessTarget};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_runtime::{BoxError, EventStore, InMemoryStore, Repository, StoredEvent};

/// Counter `c-<n>`'s additions ask `pinged-<n>` for 100 after a short while; a subtraction
/// from `c-<n>` is mirrored onto `pool`, and a refusal there is refunded to `refunds`.
#[derive(Debug, Clone, Copy)]
struct Reminder {
    after: Duration,
}

impl ProcessManager for Reminder {
    const NAME: &'static str = "reminder";
    const FOLLOWS: &'static [&'static str] = &["counter"];
    /// The additions seen.
    type State = Vec<u64>;

    fn route(&self, event: &StoredEvent) -> Result<Route, BoxError> {
        Ok(match event.aggregate_id.strip_prefix("c-") {
            Some(n) => Route::Start(n.to_owned()),
            None => Route::Ignore,
        })
    }

    fn handle(
        &self,
        seen: &mut Vec<u64>,
        event: &StoredEvent,
        effects: &mut Effects,
    ) -> Result<(), BoxError> {
        match event.as_event_ref().decode::<CounterEvent>()? {
            CounterEvent::Added(n) => {
                seen.push(n);
                effects.schedule("ping", self.after);
            }
            CounterEvent::Subtracted(n) => {
                effects.send::<Counter>("pool".to_owned(), CounterCommand::Subtract(n));
            }
        }
        Ok(())
    }

    fn on_deadline(
        &self,
        _: &mut Vec<u64>,
        name: &str,
        effects: &mut Effects,
    ) -> Result<(), BoxError> {
        assert_eq!(name, "ping");
        let target = format!("pinged-{}", effects.instance());
        effects.send::<Counter>(target, CounterCommand::Add(100));
        effects.complete();
        Ok(())
    }

    fn on_refused(
        &self,
        _: &mut Vec<u64>,
        refused: &Refused,
        effects: &mut Effects,
    ) -> Result<(), BoxError> {
        assert_eq!(refused.aggregate_id, "pool");
        effects.send::<Counter>("refunds".to_owned(), CounterCommand::Add(1));
        Ok(())
    }
}

async fn total<S: EventStore + Clone>(repo: &Repository<Counter, S>, id: &str) -> u64 {
    repo.load(&id.to_owned()).await.unwrap().state().total
}

async fn version<S: EventStore + Clone>(repo: &Repository<Counter, S>, id: &str) -> u64 {
    repo.load(&id.to_owned()).await.unwrap().version()
}

/// Mirror: every change copied once, whether the runner runs again, restarts, or replays the
/// whole log from a fresh checkpoint (every command sent again with the same key).
async fn mirrors_once<S, T>(store: S, target: impl Fn() -> T)
where
    S: EventStore + Clone,
    T: ProcessTarget,
{
    let counters = Repository::<Counter, _>::new(store.clone());
    for (id, n) in [("a", 2), ("b", 3), ("a", 4)] {
        counters
            .execute(&id.to_owned(), CounterCommand::Add(n))
            .await
            .unwrap();
    }
    let dispatcher = || Dispatcher::new().route(counters.clone());
    let mut runner = ProcessRunner::new(store.clone(), target(), Mirror, dispatcher());
    let progress = runner.catch_up().await.unwrap();
    assert_eq!((progress.read, progress.commands), (3, 3));
    assert_eq!(total(&counters, "mirror-a").await, 6);
    assert_eq!(total(&counters, "mirror-b").await, 3);
    let instance = runner
        .instance("a")
        .await
        .unwrap()
        .expect("instance `a` runs");
    assert_eq!(instance.state, 2, "two changes of `a` copied");
    assert!(instance.deadlines.contains_key("give-up"));

    // Run again: the checkpoint moved with the instances; it reads only the mirrors' own
    // three events, which it ignores.
    let again = runner.catch_up().await.unwrap();
    assert_eq!((again.read, again.commands), (3, 0));
    // A fresh checkpoint replays every event and sends every command again: the keys make
    // them duplicates, so no mirror moves.
    let mut replay = ProcessRunner::new(store.clone(), target(), Mirror, dispatcher());
    let replayed = replay.catch_up().await.unwrap();
    assert_eq!((replayed.read, replayed.commands), (6, 3));
    assert_eq!(
        version(&counters, "mirror-a").await,
        2,
        "no change applied twice"
    );
    assert_eq!(
        version(&counters, "mirror-b").await,
        1,
        "no change applied twice"
    );
}

/// Deadlines fire once due, from the stored instance (a new runner finds them), their
/// commands go out once, completed instances are archived; a refusal reaches the instance.
async fn deadlines_and_refusals<S, T>(store: S, target: T)
where
    S: EventStore + Clone,
    T: ProcessTarget + Clone,
{
    let counters = Repository::<Counter, _>::new(store.clone());
    counters
        .execute(&"c-1".to_owned(), CounterCommand::Add(5))
        .await
        .unwrap();
    counters
        .execute(&"c-2".to_owned(), CounterCommand::Add(7))
        .await
        .unwrap();
    counters
        .execute(&"c-2".to_owned(), CounterCommand::Subtract(3))
        .await
        .unwrap();
    let manager = Reminder {
        after: Duration::from_millis(300),
    };
    let dispatcher = || Dispatcher::new().route(counters.clone());
    let mut first = ProcessRunner::new(store.clone(), target.clone(), manager, dispatcher());
    let progress = first.catch_up().await.unwrap();
    assert_eq!(progress.deadlines, 0, "nothing due yet");
    assert_eq!(
        total(&counters, "refunds").await,
        1,
        "the empty pool refused; refunded"
    );
    assert_eq!(total(&counters, "pinged-1").await, 0);
    let pending = first
        .instance("1")
        .await
        .unwrap()
        .expect("instance `1` waits");
    assert_eq!(pending.state, [5]);

    // A new runner (as after a restart) fires the stored deadlines once they are due.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut second =
        ProcessRunner::new(store.clone(), target.clone(), manager, dispatcher()).archive(true);
    let fired = second.catch_up().await.unwrap();
    assert_eq!((fired.deadlines, fired.completed), (2, 2));
    assert_eq!(total(&counters, "pinged-1").await, 100);
    assert_eq!(total(&counters, "pinged-2").await, 100);
    assert!(second.instance("1").await.unwrap().is_none(), "completed");
    assert_eq!(second.archived("2").await.unwrap(), Some(vec![7]));
    let idle = second.catch_up().await.unwrap();
    assert_eq!((idle.deadlines, idle.commands), (0, 0), "fired once");
    assert_eq!(version(&counters, "pinged-1").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory() {
    let store = InMemoryStore::new();
    mirrors_once(store, MemoryTarget::new).await;
    deadlines_and_refusals(InMemoryStore::new(), MemoryTarget::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("pm.db")))
        .await
        .unwrap();
    // A fresh checkpoint: the same file under another table prefix for the target's rows
    // would be a second store; replaying needs only another target, so use a second file's.
    let other = SqliteStore::open(SqliteConfig::new(dir.path().join("replay.db")))
        .await
        .unwrap();
    let targets = [store.projection_target(), other.projection_target()];
    let next = std::sync::atomic::AtomicUsize::new(0);
    mirrors_once(store.clone(), || {
        targets[next
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            .min(1)]
        .clone()
    })
    .await;
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("deadlines.db")))
        .await
        .unwrap();
    deadlines_and_refusals(store.clone(), store.projection_target()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let Some(url) = cqrs_tests::database_url("process manager tests") else {
        return;
    };
    let fresh = || async {
        let schema = format!("pm_{}", uuid::Uuid::now_v7().simple());
        PostgresStore::connect(PostgresConfig::new(&url).schema(schema))
            .await
            .unwrap()
    };
    let store = fresh().await;
    let other = fresh().await;
    let targets = [store.projection_target(), other.projection_target()];
    let next = std::sync::atomic::AtomicUsize::new(0);
    mirrors_once(store.clone(), || {
        targets[next
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            .min(1)]
        .clone()
    })
    .await;
    let store = fresh().await;
    deadlines_and_refusals(store.clone(), store.projection_target()).await;
    // In this one test: PostgreSQL's log reader stops before transactions still running on
    // the server, so a catch-up beside another test's transactions could stop short.
    let store = fresh().await;
    refusals_go_with_their_instance(store.clone(), store.projection_target()).await;
}

/// A live runner wakes for its next deadline by itself: with an hour between polls and no
/// commit after the event, the deadline still fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_runner_wakes_for_its_next_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("wake.db")))
        .await
        .unwrap();
    let counters = Repository::<Counter, _>::new(store.clone());
    counters
        .execute(&"c-1".to_owned(), CounterCommand::Add(5))
        .await
        .unwrap();
    let manager = Reminder {
        after: Duration::from_millis(500),
    };
    let dispatcher = Dispatcher::new().route(counters.clone());
    let mut runner = ProcessRunner::new(
        store.clone(),
        store.projection_target(),
        manager,
        dispatcher,
    )
    .poll_interval(Duration::from_secs(3600));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let live = tokio::spawn(async move {
        runner
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    let fired = cqrs_tests::eventually(
        Duration::from_secs(30),
        Duration::from_millis(50),
        async || total(&counters, "pinged-1").await == 100,
    )
    .await;
    let _ = stop.send(());
    let progress = live.await.unwrap().unwrap();
    assert!(
        fired,
        "the deadline fired without a poll or a commit to wake the runner"
    );
    assert_eq!(progress.deadlines, 1);
}

/// Fails on the events of counter `bad`, and counts the others.
#[derive(Debug, Clone, Copy)]
struct Picky;

impl ProcessManager for Picky {
    const NAME: &'static str = "picky";
    const FOLLOWS: &'static [&'static str] = &["counter"];
    type State = u64;

    fn route(&self, event: &StoredEvent) -> Result<Route, BoxError> {
        Ok(Route::Start(event.aggregate_id.clone()))
    }

    fn handle(&self, seen: &mut u64, event: &StoredEvent, _: &mut Effects) -> Result<(), BoxError> {
        *seen += 1;
        if event.aggregate_id == "bad" {
            return Err("counter `bad` is not for me".into());
        }
        Ok(())
    }

    fn on_deadline(&self, _: &mut u64, _: &str, _: &mut Effects) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A failing handler stops the runner with the event named; parked, the event goes to the
/// dead letters after its retries and the others go on, the failing instance as before.
async fn poison<S, T>(store: S, target: impl Fn() -> T)
where
    S: EventStore + Clone,
    T: ProcessTarget,
{
    let counters = Repository::<Counter, _>::new(store.clone());
    for id in ["good", "bad", "good", "bad"] {
        counters
            .execute(&id.to_owned(), CounterCommand::Add(1))
            .await
            .unwrap();
    }
    let mut stopping = ProcessRunner::new(store.clone(), target(), Picky, Dispatcher::new());
    let stopped = stopping.catch_up().await.unwrap_err();
    assert_eq!(
        stopped.to_string(),
        "process manager `picky` failed on event `Added` of counter `bad` #1: counter `bad` is not for me"
    );
    let policy = PoisonPolicy::retry(2, Duration::from_millis(1)).then_park();
    let mut parking =
        ProcessRunner::new(store.clone(), target(), Picky, Dispatcher::new()).poison(policy);
    let progress = parking.catch_up().await.unwrap();
    assert_eq!(progress.read, 4);
    let parked = parking.parked().await.unwrap();
    assert_eq!(parked.len(), 2, "both events of `bad` parked");
    assert_eq!(parked[0].attempts, 3, "the first run and two retries");
    assert_eq!(parked[0].error, "counter `bad` is not for me");
    let good = parking.instance("good").await.unwrap().unwrap();
    assert_eq!(good.state, 2);
    assert!(
        parking.instance("bad").await.unwrap().is_none(),
        "never started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_on_memory_and_sqlite() {
    poison(InMemoryStore::new(), MemoryTarget::new).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("poison.db")))
        .await
        .unwrap();
    let target = store.projection_target();
    poison(store, || target.clone()).await;
}

/// A command a manager sends carries the key `<manager>/<instance>/<event id>/<n>` and the
/// event as its cause, into the events it records.
#[tokio::test]
async fn commands_carry_the_key_and_cause_of_their_event() {
    let store = InMemoryStore::new();
    let counters = Repository::<Counter, _>::new(store.clone());
    let done = counters
        .execute(&"c-1".to_owned(), CounterCommand::Add(2))
        .await
        .unwrap();
    let cause = done.events[0].event_id;
    let dispatcher = Dispatcher::new().route(counters.clone());
    let mut runner = ProcessRunner::new(store.clone(), MemoryTarget::new(), Mirror, dispatcher);
    runner.catch_up().await.unwrap();
    let copied = store
        .read_stream("counter", "mirror-c-1", 0, 10)
        .await
        .unwrap();
    let metadata = &copied[0].metadata;
    assert_eq!(metadata.command_id, Some(format!("mirror/c-1/{cause}/0")));
    assert_eq!(metadata.causation_id, Some(cause));
}

/// A command for an aggregate type the dispatcher has no repository for stops the runner
/// with the fix.
#[tokio::test]
async fn a_command_without_a_route_stops_the_runner() {
    let store = InMemoryStore::new();
    Repository::<Counter, _>::new(store.clone())
        .execute(&"c-1".to_owned(), CounterCommand::Add(2))
        .await
        .unwrap();
    let mut runner = ProcessRunner::new(store, MemoryTarget::new(), Mirror, Dispatcher::new());
    assert_eq!(
        runner.catch_up().await.unwrap_err().to_string(),
        "process manager `mirror`: no repository for aggregate type `counter`: add `.route(repository)` for it to the dispatcher"
    );
}

/// Sets deadline `a`, cancels it, sets it again: the last word wins.
struct Changeable;

impl ProcessManager for Changeable {
    const NAME: &'static str = "changeable";
    const FOLLOWS: &'static [&'static str] = &["counter"];
    type State = ();

    fn route(&self, event: &StoredEvent) -> Result<Route, BoxError> {
        Ok(Route::Start(event.aggregate_id.clone()))
    }

    fn handle(&self, _: &mut (), _: &StoredEvent, effects: &mut Effects) -> Result<(), BoxError> {
        effects.schedule("a", Duration::from_secs(30));
        effects.cancel("a");
        effects.schedule("a", Duration::from_secs(60));
        effects.schedule("b", Duration::from_secs(5));
        effects.cancel("b");
        Ok(())
    }

    fn on_deadline(&self, _: &mut (), _: &str, _: &mut Effects) -> Result<(), BoxError> {
        Ok(())
    }
}

#[test]
fn deadlines_keep_the_last_word_and_count_from_the_event() {
    cqrs_runtime::ProcessTest::new(Changeable)
        .when::<Counter>("c-1", CounterEvent::Added(1))
        .then_expect_deadline("c-1", "a", Duration::from_secs(60))
        .then_expect_no_deadline("c-1", "b");
}

/// Spends 5 from `wallet` on every `spend-*` counter event; a refusal adds 1 to `refunds`.
struct Spender;

impl ProcessManager for Spender {
    const NAME: &'static str = "spender";
    const FOLLOWS: &'static [&'static str] = &["counter"];
    type State = ();

    fn route(&self, event: &StoredEvent) -> Result<Route, BoxError> {
        Ok(match event.aggregate_id.starts_with("spend-") {
            true => Route::Start(event.aggregate_id.clone()),
            false => Route::Ignore,
        })
    }

    fn handle(&self, _: &mut (), _: &StoredEvent, effects: &mut Effects) -> Result<(), BoxError> {
        effects.send::<Counter>("wallet".to_owned(), CounterCommand::Subtract(5));
        Ok(())
    }

    fn on_deadline(&self, _: &mut (), _: &str, _: &mut Effects) -> Result<(), BoxError> {
        Ok(())
    }

    fn on_refused(&self, _: &mut (), _: &Refused, effects: &mut Effects) -> Result<(), BoxError> {
        effects.send::<Counter>("refunds".to_owned(), CounterCommand::Add(1));
        Ok(())
    }
}

/// A command refused on the first run stays refused when the event is handled again (as
/// after a crash before the commit), even though it would now succeed: the instance already
/// acted on the refusal.
async fn refusals_are_kept<S, T>(store: S, target: T)
where
    S: EventStore + Clone,
    T: ProcessTarget + Clone,
{
    let counters = Repository::<Counter, _>::new(store.clone());
    counters
        .execute(&"spend-1".to_owned(), CounterCommand::Add(1))
        .await
        .unwrap();
    let dispatcher = || Dispatcher::new().route(counters.clone());
    let mut runner = ProcessRunner::new(store.clone(), target.clone(), Spender, dispatcher());
    runner.catch_up().await.unwrap();
    assert_eq!(
        total(&counters, "refunds").await,
        1,
        "the empty wallet refused"
    );
    counters
        .execute(&"wallet".to_owned(), CounterCommand::Add(10))
        .await
        .unwrap();
    // The checkpoint back before the event: the runner handles it again.
    let mut tx = target.begin().await.unwrap();
    target
        .clear_checkpoint(&mut tx, FollowerId::Process("spender"))
        .await
        .unwrap();
    target.commit(tx, None).await.unwrap();
    let mut again = ProcessRunner::new(store.clone(), target, Spender, dispatcher());
    again.catch_up().await.unwrap();
    assert_eq!(
        total(&counters, "wallet").await,
        10,
        "not debited on the replay"
    );
    assert_eq!(version(&counters, "refunds").await, 1, "refunded once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_stay_refusals_on_a_replay() {
    refusals_are_kept(InMemoryStore::new(), MemoryTarget::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("refusals.db")))
        .await
        .unwrap();
    refusals_are_kept(store.clone(), store.projection_target()).await;
}

/// Sends one command that is refused, and completes on hearing it.
struct Quitter;

impl ProcessManager for Quitter {
    const NAME: &'static str = "quitter";
    const FOLLOWS: &'static [&'static str] = &["counter"];
    type State = ();

    fn route(&self, event: &StoredEvent) -> Result<Route, BoxError> {
        Ok(match event.aggregate_id.as_str() {
            "empty" => Route::Ignore,
            id => Route::Start(id.to_owned()),
        })
    }

    fn handle(&self, _: &mut (), _: &StoredEvent, effects: &mut Effects) -> Result<(), BoxError> {
        effects.send::<Counter>("empty".to_owned(), CounterCommand::Subtract(5));
        Ok(())
    }

    fn on_deadline(&self, _: &mut (), _: &str, _: &mut Effects) -> Result<(), BoxError> {
        Ok(())
    }

    fn on_refused(&self, _: &mut (), _: &Refused, effects: &mut Effects) -> Result<(), BoxError> {
        effects.complete();
        Ok(())
    }
}

/// A refusal is recorded while its instance runs, and removed with it when it completes (on
/// PostgreSQL, inside the `postgres` test).
async fn refusals_go_with_their_instance<S, T>(store: S, target: T)
where
    S: EventStore + Clone,
    T: ProcessTarget + Clone,
{
    let counters = Repository::<Counter, _>::new(store.clone());
    let done = counters
        .execute(&"q-1".to_owned(), CounterCommand::Add(1))
        .await
        .unwrap();
    let key = format!("quitter/q-1/{}/0", done.events[0].event_id);
    target
        .record_refusal("quitter", "other", "quitter/other/x/0", "kept")
        .await
        .unwrap();
    let dispatcher = Dispatcher::new().route(counters.clone());
    let mut runner = ProcessRunner::new(store.clone(), target.clone(), Quitter, dispatcher);
    let progress = runner.catch_up().await.unwrap();
    assert_eq!((progress.commands, progress.completed), (1, 1));
    assert_eq!(target.refusal("quitter", &key).await.unwrap(), None);
    assert_eq!(
        target
            .refusal("quitter", "quitter/other/x/0")
            .await
            .unwrap(),
        Some("kept".to_owned()),
        "another instance's refusal stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_removed_with_their_instance() {
    refusals_go_with_their_instance(InMemoryStore::new(), MemoryTarget::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("quit.db")))
        .await
        .unwrap();
    refusals_go_with_their_instance(store.clone(), store.projection_target()).await;
}
