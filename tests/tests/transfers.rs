//! The bank's transfers through the `Transfers` process manager, with its runner killed
//! (SIGKILL) ten times while 200 transfers run: every transfer ends completed or refunded,
//! money is conserved, and every balance is what the completed transfers make it, so no
//! debit or credit was applied twice or lost.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bank::transfers::{Ending, Transfer, TransferCommand};
use bank::{Account, AccountCommand, Close, Deposit, Open};
use cqrs_runtime::Repository;
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};

const ACCOUNTS: usize = 10;
const TRANSFERS: usize = 200;
const KILLS: usize = 10;

fn spawn_runner(path: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_transfer_runner"))
        .arg(path)
        .stdout(Stdio::null())
        .spawn()
        .expect("start the runner")
}

/// A small seeded generator, so that a failing run can be replayed (`TRANSFERS_SEED`).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_survive_a_killed_runner_and_conserve_money() {
    let seed = std::env::var("TRANSFERS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("transfers seed {seed}: TRANSFERS_SEED={seed} replays it");
    let mut random = Lcg(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("transfers.db");
    let store = SqliteStore::open(SqliteConfig::new(&path)).await.unwrap();
    let accounts = Repository::<Account, _>::new(store.clone());
    let transfers = Repository::<Transfer, _>::new(store.clone());

    // acc-0..7 hold 100.00; acc-8 is empty (its debits are refused); acc-9 is closed (its
    // credits are refused, and the money goes back).
    let mut initial = BTreeMap::new();
    for i in 0..ACCOUNTS {
        let id = format!("acc-{i}");
        let open = Open {
            owner: format!("owner {i}"),
            currency: "EUR".into(),
        };
        accounts
            .execute(&id, AccountCommand::from(open))
            .await
            .unwrap();
        let cents = if i < 8 { 10_000 } else { 0 };
        if cents > 0 {
            accounts.execute(&id, Deposit { cents }).await.unwrap();
        }
        initial.insert(id, cents);
    }
    accounts
        .execute(&"acc-9".to_owned(), Close {})
        .await
        .unwrap();
    let total: i64 = initial.values().sum();

    let mut runner = spawn_runner(&path);
    let mut requested = Vec::new();
    for t in 0..TRANSFERS {
        let from = random.below(ACCOUNTS as u64);
        let to = (from + 1 + random.below(ACCOUNTS as u64 - 1)) % ACCOUNTS as u64;
        let request = TransferCommand::Request {
            from: format!("acc-{from}"),
            to: format!("acc-{to}"),
            cents: 1 + random.below(3_000) as i64,
        };
        let id = format!("t-{t}");
        transfers.execute(&id, request).await.unwrap();
        requested.push(id);
        if t % (TRANSFERS / KILLS) == TRANSFERS / KILLS - 1 {
            tokio::time::sleep(Duration::from_millis(random.below(150))).await;
            runner.kill().unwrap();
            runner.wait().unwrap();
            runner = spawn_runner(&path);
        } else {
            tokio::time::sleep(Duration::from_millis(random.below(8))).await;
        }
    }

    // Every transfer ends.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut endings = BTreeMap::new();
    for id in &requested {
        loop {
            let transfer = transfers.load(id).await.unwrap();
            if let Some(ending) = &transfer.state().ended {
                endings.insert(id.clone(), (transfer.state().clone(), ending.clone()));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "seed {seed}: transfer {id} did not end: {:?}",
                transfer.state()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    runner.kill().unwrap();
    runner.wait().unwrap();

    // Every balance is what the completed transfers make it: nothing applied twice or lost.
    let mut expected = initial.clone();
    let mut completed = 0;
    for (transfer, ending) in endings.values() {
        if *ending == Ending::Completed {
            completed += 1;
            *expected.get_mut(&transfer.from).unwrap() -= transfer.cents;
            *expected.get_mut(&transfer.to).unwrap() += transfer.cents;
        }
    }
    let mut balances = BTreeMap::new();
    for id in initial.keys() {
        let balance = accounts.load(id).await.unwrap().state().balance;
        balances.insert(id.clone(), balance);
    }
    assert_eq!(balances, expected, "seed {seed}: balances");
    assert_eq!(balances.values().sum::<i64>(), total, "money is conserved");
    let refunded = TRANSFERS - completed;
    eprintln!("{completed} transfers completed, {refunded} refunded");
    assert!(
        completed > 0 && refunded > 0,
        "seed {seed}: both endings ran"
    );
    let unexplained: Vec<&String> = endings
        .iter()
        .filter(|(_, (_, ending))| match ending {
            Ending::Completed => false,
            Ending::Refunded(reason) => ![
                "refused the debit",
                "refused the credit",
                "did not happen within",
            ]
            .iter()
            .any(|why| reason.contains(why)),
        })
        .map(|(id, _)| id)
        .collect();
    assert!(
        unexplained.is_empty(),
        "seed {seed}: refunds without a reason: {unexplained:?}"
    );
}
