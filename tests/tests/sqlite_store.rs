//! The SQLite store: the conformance suite on real files in both durability modes, persistence,
//! configuration errors, snapshots that no longer fit, and corrupt rows.

use std::sync::atomic::{AtomicUsize, Ordering};

use bank::{Account, Deposit, Open};
use cqrs_runtime::doc_support::{Counter, CounterCommand};
use cqrs_runtime::sqlite::{Durability, SqliteConfig, SqliteStore};
use cqrs_runtime::{EventStore, LogPosition, Repository, StoreError};

async fn conformance_in(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    cqrs_runtime::testing::conformance(|| {
        let path = dir
            .path()
            .join(format!("store-{}.db", n.fetch_add(1, Ordering::Relaxed)));
        async move {
            SqliteStore::open(SqliteConfig::new(path).durability(durability))
                .await
                .unwrap()
        }
    })
    .await;
}

/// Counts the counter's events in the append's transaction.
#[derive(Debug, Clone, Default)]
struct Appended;

#[cqrs_runtime::projection(aggregates(Counter), name = "appended", version = 1)]
impl Appended {
    #[reset]
    async fn create(&mut self, conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
        sqlx::query("CREATE TABLE IF NOT EXISTS appended (n INTEGER NOT NULL)")
            .execute(conn)
            .await
            .map(drop)
    }

    async fn any(
        &mut self,
        _: &cqrs_runtime::StoredEvent,
        conn: &mut sqlx::SqliteConnection,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO appended VALUES (1)")
            .execute(conn)
            .await
            .map(drop)
    }
}

/// A store with inline projections commits through a sqlx connection on a writer task (the
/// connection type their handlers take), not through the rusqlite connection: the same suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_with_inline_projections_conforms() {
    use cqrs_runtime::projection::{InlineProjections, Projector};
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    cqrs_runtime::testing::conformance(|| {
        let path = dir
            .path()
            .join(format!("inline-{}.db", n.fetch_add(1, Ordering::Relaxed)));
        async move {
            let config = SqliteConfig::new(path);
            let store = SqliteStore::open(config.clone()).await.unwrap();
            let target = store.projection_target();
            Projector::new(store, target, Appended)
                .catch_up()
                .await
                .unwrap();
            let inline = InlineProjections::new().with(Appended);
            SqliteStore::open_with_inline(config, inline).await.unwrap()
        }
    })
    .await;
    // And the projection ran in the appends' transactions.
    let config = SqliteConfig::new(dir.path().join("inline-0.db"));
    let store = SqliteStore::open_with_inline(
        config,
        cqrs_runtime::projection::InlineProjections::new().with(Appended),
    )
    .await
    .unwrap();
    let repo = Repository::<Counter, _>::new(store.clone());
    repo.execute(&"c".to_owned(), CounterCommand::Add(1))
        .await
        .unwrap();
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM appended")
        .fetch_one(store.read_pool())
        .await
        .unwrap();
    assert!(rows >= 1, "the inline projection wrote {rows} rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_sqlite_store_conforms() {
    conformance_in(Durability::Full).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaxed_sqlite_store_conforms() {
    conformance_in(Durability::Relaxed).await;
}

#[tokio::test]
async fn events_survive_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.db");
    let id = "acc-1".to_owned();
    {
        let repo = Repository::<Account, _>::new(
            SqliteStore::open(SqliteConfig::new(&path)).await.unwrap(),
        );
        repo.execute(
            &id,
            Open {
                owner: "ada".into(),
                currency: "EUR".into(),
            },
        )
        .await
        .unwrap();
        repo.execute(&id, Deposit { cents: 700 }).await.unwrap();
    }
    let repo =
        Repository::<Account, _>::new(SqliteStore::open(SqliteConfig::new(&path)).await.unwrap());
    let account = repo.load(&id).await.unwrap();
    assert_eq!((account.version(), account.state().balance), (2, 700));
}

#[tokio::test]
async fn bad_configuration_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (SqliteConfig::new(""), "not a file name"),
        (SqliteConfig::new(":memory:"), "not a file"),
        (SqliteConfig::new(dir.path()), "is a directory"),
        (
            SqliteConfig::new(dir.path().join("missing/x.db")),
            "does not exist",
        ),
        (
            SqliteConfig::new(dir.path().join("x.db")).table_prefix("x; DROP TABLE y; --"),
            "table prefix",
        ),
        (
            SqliteConfig::new(dir.path().join("x.db")).table_prefix("bad\"name"),
            "table prefix",
        ),
        (
            SqliteConfig::new(dir.path().join("x.db")).table_prefix(""),
            "table prefix \"\" is not allowed",
        ),
    ];
    for (config, expected) in cases {
        let error = SqliteStore::open(config.clone()).await.unwrap_err();
        assert!(
            matches!(error, StoreError::Config(_)),
            "{config:?}: {error:?}"
        );
        assert!(error.to_string().contains(expected), "{config:?}: {error}");
    }
}

#[tokio::test]
async fn table_prefixes_keep_stores_apart_in_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let a = SqliteStore::open(SqliteConfig::new(&path).table_prefix("a_"))
        .await
        .unwrap();
    let b = SqliteStore::open(SqliteConfig::new(&path).table_prefix("b_"))
        .await
        .unwrap();
    a.append("t", "1", 0, &[cqrs_runtime::testing::new_event(1)])
        .await
        .unwrap();
    assert_eq!(
        a.read_all(cqrs_runtime::LogPosition::START, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        b.read_all(cqrs_runtime::LogPosition::START, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Rows damaged behind the store's back are errors naming the row, never panics or skips.
#[tokio::test]
async fn corrupt_rows_are_errors_naming_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let store = SqliteStore::open(SqliteConfig::new(&path)).await.unwrap();
    let repo = Repository::<Counter, _>::new(store.clone());
    repo.execute(&"c".to_owned(), CounterCommand::Add(1))
        .await
        .unwrap();
    repo.execute(&"c".to_owned(), CounterCommand::Add(2))
        .await
        .unwrap();

    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let damage = [
        (
            "UPDATE cqrs_events SET payload = '{oops' WHERE sequence = 2",
            "sequence 2",
        ),
        (
            "UPDATE cqrs_events SET payload = '2', event_type = 'Multiplied' WHERE sequence = 2",
            "unknown event type `Multiplied`",
        ),
        (
            "UPDATE cqrs_events SET event_type = 'Added', event_version = 7 WHERE sequence = 2",
            "version 7",
        ),
        (
            "UPDATE cqrs_events SET event_version = 1, metadata = 'not json' WHERE sequence = 2",
            "metadata",
        ),
        (
            "UPDATE cqrs_events SET metadata = '{}', payload = X'00FF' WHERE sequence = 2",
            "sequence 2 (position 2): its payload is a BLOB, expected TEXT",
        ),
    ];
    for (sql, expected) in damage {
        sqlx::query(sql).execute(&raw).await.unwrap();
        let error = repo.load(&"c".to_owned()).await.unwrap_err();
        let message = error.to_string();
        assert!(message.contains("counter `c`"), "{sql}: {message}");
        assert!(message.contains(expected), "{sql}: {message}");
    }
    // The log reader names the row too.
    let error = store.read_all(LogPosition::START, 10).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("counter `c` sequence 2 (position 2): its payload is a BLOB"),
        "{error}"
    );
    sqlx::query("UPDATE cqrs_events SET aggregate_id = X'01' WHERE sequence = 2")
        .execute(&raw)
        .await
        .unwrap();
    let error = store.read_all(LogPosition::START, 10).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the event at position 2: its aggregate id is a BLOB"),
        "{error}"
    );
}

#[tokio::test]
async fn a_database_from_a_newer_release_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    drop(SqliteStore::open(SqliteConfig::new(&path)).await.unwrap());
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("INSERT INTO cqrs_schema_migrations (version, applied_at) VALUES (99, 0)")
        .execute(&raw)
        .await
        .unwrap();
    let error = SqliteStore::open(SqliteConfig::new(&path))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::SchemaTooNew { found: 99, .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the database schema is at version 99, newer than this code knows (6); run a newer release of the service"
    );
}

/// A failing insert inside a group commit fails alone: the appends batched with it commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_append_does_not_fail_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("b.db")))
        .await
        .unwrap();
    let taken = cqrs_runtime::testing::new_event(0);
    store
        .append("t", "first", 0, std::slice::from_ref(&taken))
        .await
        .unwrap();
    // Sent together, these queue up behind each other and share commits; one reuses an id.
    let appends = (0..32).map(|i| {
        let store = store.clone();
        let mut event = cqrs_runtime::testing::new_event(i);
        if i == 7 {
            event.event_id = taken.event_id;
        }
        async move { (i, store.append("t", &format!("s{i}"), 0, &[event]).await) }
    });
    for (i, result) in futures::future::join_all(appends).await {
        if i == 7 {
            assert!(
                matches!(result, Err(cqrs_runtime::AppendError::Store(_))),
                "{result:?}"
            );
        } else {
            result.unwrap_or_else(|e| panic!("append {i} failed with its batch: {e}"));
        }
    }
    assert_eq!(
        store
            .read_all(cqrs_runtime::LogPosition::START, 100)
            .await
            .unwrap()
            .len(),
        32
    );
}

/// One batch holding chained appends to one stream, a stale append, other streams and an
/// append larger than one grouped insert: each gets exactly its own outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_batch_gets_each_append_its_own_outcome() {
    use cqrs_runtime::testing::new_event;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("m.db")))
        .await
        .unwrap();
    let requests: Vec<(&str, u64, usize)> = vec![
        ("chain", 0, 2),
        ("chain", 2, 1),
        ("stale", 5, 1),
        ("big", 0, 300),
        ("chain", 3, 4),
        ("other", 0, 1),
        ("chain", 3, 1), // stale: `chain` is at 7 by now
    ];
    // `join_all` polls in order, so the appends enter the writer's queue in this order.
    let results = futures::future::join_all(requests.iter().map(|&(stream, expected, n)| {
        let store = store.clone();
        let events: Vec<_> = (0..n as u64).map(new_event).collect();
        async move { store.append("t", stream, expected, &events).await }
    }))
    .await;
    let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
    assert_eq!(
        ok,
        [true, true, false, true, true, true, false],
        "{results:?}"
    );
    match &results[2] {
        Err(cqrs_runtime::AppendError::Conflict(c)) => assert_eq!((c.expected, c.actual), (5, 0)),
        other => panic!("{other:?}"),
    }
    match &results[6] {
        Err(cqrs_runtime::AppendError::Conflict(c)) => assert_eq!((c.expected, c.actual), (3, 7)),
        other => panic!("{other:?}"),
    }
    let big = results[3].as_ref().unwrap();
    assert_eq!(big.len(), 300);
    assert!(
        big.windows(2).all(|w| w[0] < w[1]),
        "positions in event order"
    );
    let chain = store.read_stream("t", "chain", 0, 100).await.unwrap();
    assert_eq!(
        chain.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<_>>()
    );
    let positions = results[0].as_ref().unwrap();
    assert_eq!(
        chain[..2].iter().map(|e| e.position).collect::<Vec<_>>(),
        *positions,
        "returned positions match the stored rows"
    );
}

/// Opening outside a tokio runtime is an error that says what to do, not tokio's panic.
#[test]
fn opening_outside_a_tokio_runtime_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let open = SqliteStore::open(SqliteConfig::new(dir.path().join("x.db")));
    let error = futures::executor::block_on(open).unwrap_err();
    assert!(
        error.to_string().contains("inside a tokio runtime"),
        "{error}"
    );
}

/// Command ids older than the retention are forgotten, and deleted from the table by later
/// appends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_ids_expire_after_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("retention.db");
    let retention = std::time::Duration::from_millis(50);
    let store = SqliteStore::open(SqliteConfig::new(&path).command_retention(retention))
        .await
        .unwrap();
    cqrs_runtime::testing::command_ids_expire(store.clone(), retention).await;
    tokio::time::sleep(retention * 3).await;
    let repo = Repository::<Counter, _>::new(store.clone());
    repo.execute_with(
        &"other".to_owned(),
        CounterCommand::Add(1),
        cqrs_runtime::Metadata::default().command_id("later"),
    )
    .await
    .unwrap();
    let (kept,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM cqrs_commands")
        .fetch_one(store.read_pool())
        .await
        .unwrap();
    assert_eq!(kept, 1, "the expired ids were deleted; the new one kept");
}
