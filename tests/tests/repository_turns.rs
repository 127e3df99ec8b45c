//! Commands on one aggregate inside one process take turns: 8 tasks on one SQLite aggregate
//! land every command, with the default retry policy and even with none (no conflict arises).

use cqrs_runtime::doc_support::{Counter, CounterCommand};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_runtime::{EventStore, InMemoryStore, Repository, RetryPolicy};

const TASKS: u64 = 8;
const COMMANDS: u64 = 250;

/// Runs `TASKS` tasks adding 1 to the counter `shared` `COMMANDS` times each; returns how many
/// commands failed, and checks the stream holds one event per command that landed.
async fn contend<S: EventStore + Clone>(repo: Repository<Counter, S>) -> u64 {
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move {
                let mut failed = 0;
                for _ in 0..COMMANDS {
                    if let Err(error) = repo
                        .execute(&"shared".to_owned(), CounterCommand::Add(1))
                        .await
                    {
                        eprintln!("an add failed: {error}");
                        failed += 1;
                    }
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        failed += task.await.unwrap();
    }
    let events = repo
        .store()
        .read_stream("counter", "shared", 0, usize::MAX)
        .await
        .unwrap();
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    let landed = TASKS * COMMANDS - failed;
    assert_eq!(
        sequences,
        (1..=landed).collect::<Vec<_>>(),
        "one event per landed command"
    );
    assert_eq!(
        repo.load(&"shared".to_owned()).await.unwrap().state().total,
        landed
    );
    failed
}

async fn sqlite(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(SqliteConfig::new(dir.path().join("turns.db")))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_tasks_on_one_sqlite_aggregate_land_every_command_with_the_default_policy() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::<Counter, _>::new(sqlite(&dir).await);
    assert_eq!(repo.retry_policy(), RetryPolicy::default());
    assert_eq!(contend(repo).await, 0, "commands failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_of_one_aggregate_take_turns_so_none_conflicts_even_without_retries() {
    let dir = tempfile::tempdir().unwrap();
    let on_sqlite = Repository::<Counter, _>::new(sqlite(&dir).await).retry(RetryPolicy::NONE);
    assert_eq!(
        contend(on_sqlite).await,
        0,
        "a command conflicted on SQLite"
    );
    let uncached = Repository::<Counter, _>::new(InMemoryStore::new())
        .retry(RetryPolicy::NONE)
        .no_cache();
    assert_eq!(contend(uncached).await, 0, "a command conflicted in memory");
}
