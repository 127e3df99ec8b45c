//! Random histories checked against a sequential model (`cqrs_tests::history`), on every
//! store: 8 writers with their own repositories (so conflicts are real, as between instances)
//! issue random commands and loads on 3 counters, with the default retries and snapshots every
//! four events, while a projection runner follows the log; then the history is checked against
//! what the store kept, and the projection against a rebuild. SQLite is also written by two
//! processes at once.
//!
//! Each run prints its seed; `HISTORY_SEED=<seed>` replays the same operations, and
//! `HISTORY_OPS=<n>` makes the history longer and `HISTORY_WRITERS=<n>` wider (the bounded
//! default runs in the test command; `scripts/histories-long.sh` is the long mode).

use std::time::Duration;

use cqrs_runtime::doc_support::{Counted, Counter};
use cqrs_runtime::postgres::{PostgresConfig, PostgresStore};
use cqrs_runtime::projection::MemoryTarget;
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_runtime::{EventStore, InMemoryStore, Projector, Repository};
use cqrs_tests::history::{self, Call, Plan};
use futures::future::join_all;

/// Writers per process: `HISTORY_WRITERS`, else 8.
fn writers() -> u64 {
    std::env::var("HISTORY_WRITERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(8)
}
const OPERATIONS: usize = 60;
const COUNTERS: usize = 3;

/// Runs `plan` with `writers()` writers on `store`, a projection following the log meanwhile,
/// and checks the history, the projection and a rebuild.
async fn run_and_check<S: EventStore + Clone>(
    store: S,
    plan: Plan,
    others: impl std::future::Future<Output = Vec<Call>>,
) {
    eprintln!(
        "history seed {} ({} writers, {} operations each): HISTORY_SEED={} replays it",
        plan.seed,
        writers(),
        plan.operations,
        plan.seed
    );
    let repos: Vec<Repository<Counter, S>> = (0..writers())
        .map(|_| Repository::new(store.clone()))
        .collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let counted = Counted::default();
    let mut runner = Projector::new(store.clone(), MemoryTarget::new(), counted.clone())
        .poll_interval(Duration::from_millis(5));
    let following = tokio::spawn(async move {
        let mut stopped = stopped;
        runner
            .run(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
            .map(|_| runner)
    });
    let writers = repos
        .iter()
        .enumerate()
        .map(|(w, repo)| history::write(repo, plan, w as u64));
    let (mine, theirs) = tokio::join!(join_all(writers), others);
    let mut calls: Vec<Call> = mine.into_iter().flatten().collect();
    calls.extend(theirs);
    let _ = stop.send(true);
    let mut runner = following.await.unwrap().expect("the projection runs");

    let streams = history::streams(&store, plan).await;
    let totals = match history::check(&calls, &streams) {
        Ok(totals) => totals,
        Err(errors) => panic!(
            "seed {}: the history breaks the model:\n{}",
            plan.seed,
            errors.join("\n")
        ),
    };
    assert!(
        calls
            .iter()
            .any(|c| matches!(c.outcome, history::Outcome::Committed { .. })),
        "seed {}: nothing was committed",
        plan.seed
    );
    runner.catch_up().await.unwrap();
    let expected: u64 = totals.values().sum();
    assert_eq!(
        counted.total(),
        expected as i64,
        "seed {}: the projection followed the log",
        plan.seed
    );
    let rebuilt = Counted::default();
    Projector::new(store, MemoryTarget::new(), rebuilt.clone())
        .rebuild(|_| {})
        .await
        .unwrap();
    assert_eq!(
        rebuilt.total(),
        counted.total(),
        "seed {}: the projection equals a rebuild",
        plan.seed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_on_the_memory_store_match_the_model() {
    let plan = Plan::from_env(OPERATIONS, COUNTERS);
    run_and_check(InMemoryStore::new(), plan, async { Vec::new() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_on_sqlite_match_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("h.db")))
        .await
        .unwrap();
    run_and_check(store, Plan::from_env(OPERATIONS, COUNTERS), async {
        Vec::new()
    })
    .await;
}

/// Another process writes the same file at the same time, with writers numbered after this
/// one's; its history joins this one's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_of_two_processes_on_one_sqlite_file_match_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let store = SqliteStore::open(SqliteConfig::new(&path)).await.unwrap();
    let plan = Plan::from_env(OPERATIONS, COUNTERS);
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sqlite_writer"))
        .args(["history", path.to_str().unwrap()])
        .args([
            plan.seed.to_string(),
            plan.operations.to_string(),
            COUNTERS.to_string(),
            writers().to_string(),
            writers().to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let theirs = async move {
        let output = child.wait_with_output().await.unwrap();
        assert!(output.status.success(), "the other process failed");
        let calls: Vec<Call> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(calls.len(), writers() as usize * plan.operations);
        calls
    };
    run_and_check(store, plan, theirs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_on_postgres_match_the_model() {
    let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the PostgreSQL histories: set DATABASE_URL (scripts/test.sh does)"
        );
        eprintln!("SKIPPED: the PostgreSQL histories need DATABASE_URL");
        return;
    };
    let schema = format!("h_{}", uuid::Uuid::now_v7().simple());
    let store = PostgresStore::connect(PostgresConfig::new(&url).schema(&schema))
        .await
        .unwrap();
    run_and_check(store, Plan::from_env(OPERATIONS, COUNTERS), async {
        Vec::new()
    })
    .await;
}
