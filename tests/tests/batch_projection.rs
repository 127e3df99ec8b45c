//! Batch handlers of projections: every event of one payload type in a batch at once (or the
//! whole batch), written with one statement; a failing batch is applied again event by event,
//! so that the poison policy still names the event that fails.

use bank::{Account, AccountEvent, Deposited, Money, Opened};
use cqrs_runtime::projection::{PoisonPolicy, Projector};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_runtime::{EventStore, NewEvent, StoredEvent, projection};
use sqlx::{Executor, Row, SqliteConnection};

/// The most deposits one call of `Balances::deposited` received.
static LARGEST_BATCH: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Deposits per account in one statement per batch; owners one by one. A deposit of 13 cents
/// fails.
#[derive(Debug, Clone, Default)]
struct Balances;

#[projection(aggregates(Account), name = "balances", version = 1)]
impl Balances {
    #[reset]
    async fn create(&mut self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        conn.execute(
            "DROP TABLE IF EXISTS balances; \
             CREATE TABLE balances (id TEXT PRIMARY KEY, owner TEXT, cents INTEGER NOT NULL DEFAULT 0, deposits INTEGER NOT NULL DEFAULT 0)",
        )
        .await
        .map(drop)
    }

    async fn opened(
        &mut self,
        event: &Opened,
        envelope: &StoredEvent,
        conn: &mut SqliteConnection,
    ) -> Result<(), sqlx::Error> {
        conn.execute(
            sqlx::query("INSERT INTO balances (id, owner) VALUES (?1, ?2)")
                .bind(&envelope.aggregate_id)
                .bind(&event.owner),
        )
        .await
        .map(drop)
    }

    async fn deposited(
        &mut self,
        events: &[(Deposited, &StoredEvent)],
        conn: &mut SqliteConnection,
    ) -> Result<(), String> {
        LARGEST_BATCH.fetch_max(events.len(), std::sync::atomic::Ordering::Relaxed);
        if events.iter().any(|(d, _)| d.amount.cents == 13) {
            return Err("13 cents are refused".into());
        }
        // One multi-row upsert for the whole batch.
        let mut sql = String::from("INSERT INTO balances (id, cents, deposits) VALUES ");
        for i in 0..events.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(?{}, ?{}, 1)", 2 * i + 1, 2 * i + 2));
        }
        sql.push_str(
            " ON CONFLICT (id) DO UPDATE SET cents = cents + excluded.cents, deposits = deposits + 1",
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (deposited, envelope) in events {
            query = query
                .bind(&envelope.aggregate_id)
                .bind(deposited.amount.cents);
        }
        query
            .execute(conn)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// Counts every event of the batch in one statement.
#[derive(Debug, Clone, Default)]
struct Counted;

#[projection(aggregates(Account), name = "counted", version = 1)]
impl Counted {
    #[reset]
    async fn create(&mut self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        conn.execute("DROP TABLE IF EXISTS counted; CREATE TABLE counted (events INTEGER NOT NULL); INSERT INTO counted VALUES (0)")
            .await
            .map(drop)
    }

    async fn all(
        &mut self,
        events: &[StoredEvent],
        conn: &mut SqliteConnection,
    ) -> Result<(), sqlx::Error> {
        assert!(
            events
                .iter()
                .all(|e| e.aggregate_type == bank::ACCOUNT_TYPE)
        );
        conn.execute(
            sqlx::query("UPDATE counted SET events = events + ?1").bind(events.len() as i64),
        )
        .await
        .map(drop)
    }
}

fn stored(events: Vec<AccountEvent>) -> Vec<NewEvent> {
    use cqrs_runtime::DomainEvent;
    events
        .into_iter()
        .map(|e| {
            NewEvent::raw(
                e.event_type(),
                e.event_version(),
                serde_json::from_str(&e.encode().unwrap()).unwrap(),
            )
        })
        .collect()
}

/// `accounts` accounts, each opened then given `deposits` deposits of 1, 2, 3, ... cents.
async fn seed(store: &SqliteStore, accounts: usize, deposits: i64) {
    for a in 0..accounts {
        let mut events = vec![AccountEvent::from(Opened {
            owner: format!("owner {a}"),
            currency: "EUR".into(),
        })];
        events.extend((1..=deposits).map(|c| {
            AccountEvent::from(Deposited {
                amount: Money::eur(c),
            })
        }));
        store
            .append(bank::ACCOUNT_TYPE, &format!("acc-{a}"), 0, &stored(events))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_handler_writes_each_batch_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("batch.db")))
        .await
        .unwrap();
    seed(&store, 30, 12).await;
    let mut balances = Projector::new(store.clone(), store.projection_target(), Balances);
    let caught_up = balances.catch_up().await.unwrap();
    let rows = sqlx::query("SELECT id, owner, cents, deposits FROM balances ORDER BY id")
        .fetch_all(store.read_pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 30, "{caught_up:?}");
    let largest = LARGEST_BATCH.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        largest > 12,
        "the deposits came in batches, the largest of {largest}"
    );
    for row in rows {
        assert!(row.get::<String, _>(1).starts_with("owner "));
        assert_eq!(row.get::<i64, _>(2), (1..=12).sum::<i64>());
        assert_eq!(row.get::<i64, _>(3), 12);
    }

    let mut counted = Projector::new(store.clone(), store.projection_target(), Counted);
    counted.catch_up().await.unwrap();
    let (events,): (i64,) = sqlx::query_as("SELECT events FROM counted")
        .fetch_one(store.read_pool())
        .await
        .unwrap();
    assert_eq!(events, 30 * 13);
}

/// A batch that fails is applied again event by event: the events before the failing one are
/// committed, the failing one is parked, and the rest of the batch goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_batch_is_applied_event_by_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("poison.db")))
        .await
        .unwrap();
    seed(&store, 3, 15).await;
    let mut balances = Projector::new(store.clone(), store.projection_target(), Balances)
        .on_error(PoisonPolicy::park());
    balances.catch_up().await.unwrap();
    let parked = balances.parked().await.unwrap();
    assert_eq!(parked.len(), 3, "the 13-cent deposit of each account");
    assert!(parked.iter().all(|p| p.event.sequence == 14), "{parked:?}");
    let totals: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT id, cents, deposits FROM balances ORDER BY id")
            .fetch_all(store.read_pool())
            .await
            .unwrap();
    for (id, cents, deposits) in totals {
        assert_eq!(cents, (1..=15).sum::<i64>() - 13, "{id}");
        assert_eq!(deposits, 14, "{id}");
    }
}

mod pass_case {
    include!("pass/batch-projection.rs");
}

/// On a target that cannot roll back (memory), a projection with batch handlers applies its
/// events one by one: each batch handler gets batches of one.
#[tokio::test]
async fn on_a_memory_target_batches_are_single_events() {
    use cqrs_runtime::projection::MemoryTarget;
    let store = cqrs_runtime::InMemoryStore::new();
    let mut events = stored(vec![AccountEvent::from(Opened {
        owner: "Ada".into(),
        currency: "EUR".into(),
    })]);
    events.extend(stored(vec![
        AccountEvent::from(Deposited {
            amount: Money::eur(5)
        });
        3
    ]));
    store
        .append(bank::ACCOUNT_TYPE, "acc-1", 0, &events)
        .await
        .unwrap();
    let mut projector = Projector::new(store, MemoryTarget::new(), pass_case::Batched::default());
    projector.catch_up().await.unwrap();
    let batched = projector.projection();
    assert_eq!(batched.owners, ["Ada"]);
    assert_eq!(batched.deposits, [1, 1, 1]);
    assert_eq!(batched.events, 4);
}
