//! The repository's aggregate cache: commands on cached aggregates read nothing from the store,
//! give the same results as without the cache, and a state made stale by another writer is
//! reloaded transparently.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bank::{Account, AccountCommand, BankError, Deposit, Open, Withdraw};
use cqrs_runtime::{
    AppendError, CacheLimits, CommandError, CommandRecord, EventStore, InMemoryStore, LogPosition,
    NewEvent, Repository, Snapshot, StoreError, StoredEvent,
};

/// The in-memory store, counting the stream reads (loads) made through it.
#[derive(Debug, Clone, Default)]
struct Counting {
    store: InMemoryStore,
    reads: Arc<AtomicUsize>,
}

impl EventStore for Counting {
    async fn append(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> Result<Vec<LogPosition>, AppendError> {
        self.store
            .append(aggregate_type, aggregate_id, expected_version, events)
            .await
    }

    async fn read_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.store
            .read_stream(aggregate_type, aggregate_id, after, limit)
            .await
    }

    async fn read_all(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.store.read_all(after, limit).await
    }

    async fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        self.store.load_snapshot(aggregate_type, aggregate_id).await
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        self.store.save_snapshot(snapshot).await
    }

    async fn count_events(&self) -> Result<u64, StoreError> {
        self.store.count_events().await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        self.store.head().await
    }

    async fn find_command(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        command_id: &str,
    ) -> Result<Option<CommandRecord>, StoreError> {
        self.store
            .find_command(aggregate_type, aggregate_id, command_id)
            .await
    }
}

fn capacity(n: usize) -> CacheLimits {
    CacheLimits::entries(n)
}

fn open() -> AccountCommand {
    Open {
        owner: "Ada".into(),
        currency: "EUR".into(),
    }
    .into()
}

#[tokio::test]
async fn cached_commands_read_nothing_and_decide_the_same() {
    let counting = Counting::default();
    let cached = Repository::<Account, _>::new(counting.clone()).cache(capacity(100));
    let plain = Repository::<Account, _>::new(InMemoryStore::new()).no_cache();
    let script: Vec<AccountCommand> = vec![
        open(),
        Deposit { cents: 500 }.into(),
        Withdraw { cents: 9_999 }.into(),
        Withdraw { cents: 200 }.into(),
        open(),
        Deposit { cents: 0 }.into(),
    ];
    let id = "acc-1".to_owned();
    for command in script {
        let a = cached.execute(&id, command.clone()).await;
        let b = plain.execute(&id, command).await;
        match (a, b) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.root.version(), b.root.version());
                assert_eq!(a.root.state(), b.root.state());
            }
            (Err(CommandError::Rejected(a)), Err(CommandError::Rejected(b))) => assert_eq!(a, b),
            (a, b) => panic!("cached {a:?} but plain {b:?}"),
        }
    }
    // One load (the first command), then one tail read per refusal (three), to confirm the
    // cached state was current; the successful commands read nothing.
    assert_eq!(counting.reads.load(Ordering::SeqCst), 4);
    let loaded = cached.load(&id).await.unwrap();
    assert_eq!(loaded.state().balance, 300);
}

#[tokio::test]
async fn a_stale_cached_state_is_reloaded_without_a_retry_policy() {
    let store = InMemoryStore::new();
    // Two services on one store, each with its own cache.
    let first = Repository::<Account, _>::new(store.clone()).cache(capacity(10));
    let second = Repository::<Account, _>::new(store.clone()).cache(capacity(10));
    let id = "acc-1".to_owned();
    first.execute(&id, open()).await.unwrap();
    first.execute(&id, Deposit { cents: 100 }).await.unwrap();
    second.execute(&id, Deposit { cents: 50 }).await.unwrap();
    // The first service's cached state is at version 2; the stream is at 3.
    let done = first.execute(&id, Withdraw { cents: 150 }).await.unwrap();
    assert_eq!(done.root.version(), 4);
    assert_eq!(done.root.state().balance, 0);
    // A decision on the stale state would have refused this withdrawal (balance 100).
    let refused = first.execute(&id, Withdraw { cents: 1 }).await.unwrap_err();
    assert!(matches!(
        refused,
        CommandError::Rejected(BankError::InsufficientFunds {
            balance: 0,
            requested: 1
        })
    ));
}

#[tokio::test]
async fn the_least_recently_used_aggregate_is_evicted() {
    let counting = Counting::default();
    let repo = Repository::<Account, _>::new(counting.clone()).cache(capacity(2));
    for id in ["a", "b", "c"] {
        repo.execute(&id.to_owned(), open()).await.unwrap();
    }
    let before = counting.reads.load(Ordering::SeqCst);
    repo.execute(&"c".to_owned(), Deposit { cents: 1 })
        .await
        .unwrap();
    assert_eq!(
        counting.reads.load(Ordering::SeqCst),
        before,
        "`c` is cached"
    );
    repo.execute(&"a".to_owned(), Deposit { cents: 1 })
        .await
        .unwrap();
    assert_eq!(
        counting.reads.load(Ordering::SeqCst),
        before + 1,
        "`a` was evicted and loaded"
    );
}

/// A refusal decided on a stale cached state is confirmed against the store first: the other
/// writer's deposit makes the withdrawal possible.
#[tokio::test]
async fn a_refusal_on_a_stale_state_is_decided_again() {
    let store = InMemoryStore::new();
    let first = Repository::<Account, _>::new(store.clone()).cache(capacity(10));
    let second = Repository::<Account, _>::new(store.clone());
    let id = "acc-1".to_owned();
    first.execute(&id, open()).await.unwrap();
    second.execute(&id, Deposit { cents: 80 }).await.unwrap();
    // Cached: balance 0. Stored: balance 80.
    let done = first.execute(&id, Withdraw { cents: 50 }).await.unwrap();
    assert_eq!((done.root.version(), done.root.state().balance), (3, 30));
}

/// A repository caches by default: a derived aggregate that is `Clone` is copied into the cache,
/// and `no_cache` turns it off.
#[tokio::test]
async fn the_cache_is_on_by_default_and_can_be_turned_off() {
    let counting = Counting::default();
    let id = "acc-1".to_owned();
    let repo = Repository::<Account, _>::new(counting.clone());
    assert!(repo.is_cached());
    repo.execute(&id, open()).await.unwrap();
    let reads = counting.reads.load(Ordering::Relaxed);
    repo.execute(&id, AccountCommand::from(Deposit { cents: 5 }))
        .await
        .unwrap();
    assert_eq!(
        counting.reads.load(Ordering::Relaxed),
        reads,
        "decided on the cached state"
    );

    let uncached = Repository::<Account, _>::new(counting.clone()).no_cache();
    assert!(!uncached.is_cached());
    uncached
        .execute(&id, AccountCommand::from(Deposit { cents: 5 }))
        .await
        .unwrap();
    assert!(
        counting.reads.load(Ordering::Relaxed) > reads,
        "loaded from the store"
    );
}

/// A derived aggregate that is not `Clone` has no cached copy: every command loads it.
#[tokio::test]
async fn an_aggregate_that_is_not_clone_is_not_cached() {
    use cqrs_runtime::Aggregate;
    assert!(uncloned::Tally::caching().is_none());
    let repo = Repository::<uncloned::Tally, _>::new(InMemoryStore::new());
    assert!(!repo.is_cached());
}

/// An aggregate whose state is not `Clone`.
mod uncloned {
    use cqrs_runtime::{Aggregate, Command, Event, handlers};

    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema, Command)]
    pub struct Add {
        pub n: i64,
    }

    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema, Event)]
    pub struct Added {
        pub n: i64,
    }

    /// Not `Clone`.
    #[derive(Debug, Default, Aggregate)]
    #[aggregate(command = Add, event = Added)]
    pub struct Tally {
        pub total: i64,
    }

    #[handlers]
    impl Tally {
        fn add(&self, add: Add) -> Added {
            Added { n: add.n }
        }

        fn added(&mut self, added: &Added) {
            self.total += added.n;
        }
    }
}

/// The byte limit evicts the least recently used aggregates; the entry limit too.
#[tokio::test]
async fn the_limits_evict_the_least_recently_used() {
    use cqrs_runtime::Aggregate;
    let weight = std::mem::size_of::<Account>() + "acc-0".len();
    let counting = Counting::default();
    // Room for two accounts by bytes, ten by entries.
    let limits = CacheLimits::entries(10).bytes(2 * weight);
    let repo = Repository::<Account, _>::new(counting.clone()).cache(limits);
    for i in 0..3 {
        repo.execute(&format!("acc-{i}"), open()).await.unwrap();
    }
    let reads = counting.reads.load(Ordering::Relaxed);
    repo.execute(
        &"acc-2".to_owned(),
        AccountCommand::from(Deposit { cents: 1 }),
    )
    .await
    .unwrap();
    repo.execute(
        &"acc-1".to_owned(),
        AccountCommand::from(Deposit { cents: 1 }),
    )
    .await
    .unwrap();
    assert_eq!(
        counting.reads.load(Ordering::Relaxed),
        reads,
        "the two newest are cached"
    );
    repo.execute(
        &"acc-0".to_owned(),
        AccountCommand::from(Deposit { cents: 1 }),
    )
    .await
    .unwrap();
    assert!(
        counting.reads.load(Ordering::Relaxed) > reads,
        "the oldest was evicted"
    );
    assert!(Account::caching().is_some());

    let one = Repository::<Account, _>::new(counting.clone()).cache(CacheLimits::entries(1));
    one.execute(
        &"acc-0".to_owned(),
        AccountCommand::from(Deposit { cents: 1 }),
    )
    .await
    .unwrap();
    one.execute(
        &"acc-1".to_owned(),
        AccountCommand::from(Deposit { cents: 1 }),
    )
    .await
    .unwrap();
    let reads = counting.reads.load(Ordering::Relaxed);
    one.execute(
        &"acc-0".to_owned(),
        AccountCommand::from(Deposit { cents: 1 }),
    )
    .await
    .unwrap();
    assert!(
        counting.reads.load(Ordering::Relaxed) > reads,
        "one entry: acc-0 was evicted"
    );
}
