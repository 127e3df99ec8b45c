//! Rows written by older releases of the bank domain (a fixture committed to the repository)
//! read back through today's upcast chain, and today's code keeps appending after them.

use bank::{Account, AccountEvent, Deposit, Money};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_runtime::{CommandError, EventStoreExt, Repository};
use futures::TryStreamExt;

async fn store_from_fixture() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(include_str!("../fixtures/bank-v1.sql"))
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    let store = SqliteStore::open(SqliteConfig::new(&path)).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn old_rows_load_as_todays_types() {
    let (_dir, store) = store_from_fixture().await;
    let repo = Repository::<Account, _>::new(store.clone());
    let grace = repo.load(&"acc-old-1".into()).await.unwrap();
    assert_eq!(grace.version(), 4);
    assert_eq!(grace.state().owner, "Grace");
    assert_eq!(grace.state().balance, 12_000 - 2000 + 55);
    let alan = repo.load(&"acc-old-2".into()).await.unwrap();
    assert!(alan.state().closed);

    let events: Vec<_> = store
        .stream_events("bank_account", "acc-old-1", 0)
        .map_ok(|stored| stored.decode::<AccountEvent>())
        .try_collect()
        .await
        .unwrap();
    let events: Vec<_> = events.into_iter().collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(
        (events[0].event_type.as_str(), events[0].event_version),
        ("Opened", 1),
        "the envelope keeps what was stored"
    );
    assert_eq!(
        events[1].event,
        AccountEvent::Deposited {
            amount: Money::eur(12_000)
        }
    );
    assert_eq!(events[2].event, AccountEvent::Withdrawn { cents: 2000 });
    assert!(events[0].metadata.correlation_id.is_some());
}

#[tokio::test]
async fn todays_code_appends_after_old_rows() {
    let (_dir, store) = store_from_fixture().await;
    let repo = Repository::<Account, _>::new(store);
    let done = repo
        .execute(&"acc-old-1".into(), Deposit { cents: 45 })
        .await
        .unwrap();
    assert_eq!(done.events[0].sequence, 5);
    assert_eq!(
        done.events[0].event_version, 3,
        "new rows are written at the current version"
    );
    assert_eq!(
        repo.load(&"acc-old-1".into())
            .await
            .unwrap()
            .state()
            .balance,
        10_100
    );
    let refused = repo
        .execute(&"acc-old-2".into(), Deposit { cents: 1 })
        .await
        .unwrap_err();
    assert!(matches!(
        refused,
        CommandError::Rejected(bank::BankError::Closed)
    ));
}
