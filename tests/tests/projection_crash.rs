//! A projection runner SIGKILLed mid-batch, again and again, then finished: its read model ends
//! exactly as a from-scratch rebuild builds it (every event once), on SQLite and PostgreSQL.

use std::process::Command;
use std::time::Duration;

use bank::{Account, AccountCommand, Deposit, Open};
use cqrs_runtime::projection::ProjectionTarget;
use cqrs_runtime::{EventStore, LogPosition, Projection, Projector, Repository};
use cqrs_tests::{PgLedger, Row, SqliteLedger, expected_rows};

const CHILD: &str = env!("CARGO_BIN_EXE_projection_runner");
const KILLS: usize = 12;

/// Kill delays from a small deterministic generator, seeded by the clock (printed).
struct Lcg(u64);

impl Lcg {
    fn seeded() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        println!("kill delay seed: {seed}");
        Lcg(seed)
    }

    fn next_in(&mut self, low: u64, high: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        low + (self.0 >> 33) % (high - low)
    }
}

/// Appends round `round`: 20 accounts opened, 29 deposits each (600 events), written by 20
/// concurrent tasks.
async fn fill<S: EventStore + Clone>(store: &S, round: usize) -> usize {
    let tasks: Vec<_> = (0..20)
        .map(|a| {
            let repo = Repository::<Account, _>::new(store.clone());
            tokio::spawn(async move {
                let id = format!("acc-{round}-{a}");
                let open = Open {
                    owner: id.clone(),
                    currency: "EUR".into(),
                };
                repo.execute(&id, AccountCommand::from(open)).await.unwrap();
                for d in 0..29 {
                    repo.execute(&id, AccountCommand::from(Deposit { cents: 100 + d }))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    600
}

/// `KILLS` times: appends a round of events, starts the child and kills it at a random point.
/// Most kills must land mid-run (the checkpoint short of the log's end), or the test proves
/// nothing. Returns the number of events written.
async fn kill_repeatedly<S, T>(
    store: &S,
    target: &T,
    args: &[&str],
    id: cqrs_runtime::projection::ProjectionId,
) -> usize
where
    S: EventStore + Clone,
    T: ProjectionTarget,
{
    let mut delays = Lcg::seeded();
    let mut written = 0;
    let mut mid_run = 0;
    let mut positions = Vec::new();
    for round in 0..KILLS {
        written += fill(store, round).await;
        let before = target.checkpoint(id).await.unwrap().map_or(0, |p| p.event);
        // Kill once the runner is a random way into this round (its checkpoint past that
        // point), so the kill lands while it is applying batches.
        let kill_at = before + delays.next_in(10, 150);
        let mut child = Command::new(CHILD)
            .args(args)
            .spawn()
            .expect("start the runner");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while target.checkpoint(id).await.unwrap().map_or(0, |p| p.event) < kill_at
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        child.kill().expect("SIGKILL the runner");
        child.wait().unwrap();
        let position = target.checkpoint(id).await.unwrap().map_or(0, |p| p.event);
        let applied = cqrs_runtime::testing::read_log_until(store, LogPosition::START, written)
            .await
            .iter()
            .take_while(|e| e.position.event <= position)
            .count();
        if applied < written {
            mid_run += 1;
        }
        positions.push((applied, written));
    }
    println!("(events applied, events written) after each kill: {positions:?}");
    assert!(
        positions.windows(2).all(|w| w[0].0 <= w[1].0),
        "a checkpoint never moves back: {positions:?}"
    );
    assert!(
        mid_run >= 10,
        "only {mid_run} of {KILLS} kills landed mid-run: {positions:?}"
    );
    written
}

fn check(rows: &[Row], rebuilt: &[Row], log: &[cqrs_runtime::StoredEvent]) {
    assert_eq!(rows.len(), log.len(), "one row per event, none twice");
    assert_eq!(rows, expected_rows(log));
    assert_eq!(rows, rebuilt, "the same as a from-scratch rebuild");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_runner_killed_mid_batch_ends_as_a_rebuild() {
    use cqrs_runtime::sqlite::{Durability, SqliteConfig, SqliteStore};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let store = SqliteStore::open(SqliteConfig::new(&path).durability(Durability::Relaxed))
        .await
        .unwrap();
    let target = store.projection_target();
    let owner = uuid::Uuid::now_v7();
    let owner_arg = owner.to_string();
    let args = ["sqlite", path.to_str().unwrap(), &owner_arg];
    let total = kill_repeatedly(&store, &target, &args, SqliteLedger::id()).await;

    let mut runner =
        Projector::new(store.clone(), target.clone(), SqliteLedger::default()).owner(owner);
    runner.catch_up().await.unwrap();
    let rows = SqliteLedger::rows(target.pool()).await;
    runner.rebuild(|_| {}).await.unwrap();
    let rebuilt = SqliteLedger::rows(target.pool()).await;
    let log = store.read_all(LogPosition::START, total + 1).await.unwrap();
    check(&rows, &rebuilt, &log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_runner_killed_mid_batch_ends_as_a_rebuild() {
    use cqrs_runtime::postgres::{PostgresConfig, PostgresStore};
    let Some(url) = cqrs_tests::database_url("PostgreSQL crash test") else {
        return;
    };
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    let store = PostgresStore::connect(PostgresConfig::new(&url).schema(&schema))
        .await
        .unwrap();
    let target = store.projection_target();
    let owner = uuid::Uuid::now_v7();
    let owner_arg = owner.to_string();
    let args = [
        "postgres",
        url.as_str(),
        schema.as_str(),
        owner_arg.as_str(),
    ];
    let total = kill_repeatedly(&store, &target, &args, PgLedger::id()).await;
    let log = cqrs_runtime::testing::read_log_until(&store, LogPosition::START, total).await;

    let ledger = PgLedger::new(&schema);
    let mut runner = Projector::new(store.clone(), target.clone(), ledger.clone()).owner(owner);
    // The killed runner's session (and lock) ends when the server sees its socket close.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let result = loop {
        match runner.catch_up().await {
            Err(cqrs_runtime::ProjectionError::Fenced(_))
                if std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other,
        }
    };
    result.unwrap();
    let rows = ledger.rows(store.pool()).await;
    runner.rebuild(|_| {}).await.unwrap();
    let rebuilt = ledger.rows(store.pool()).await;
    check(&rows, &rebuilt, &log);
}
