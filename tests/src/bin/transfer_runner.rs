//! The child process of `tests/transfers.rs`: runs the bank's `Transfers` process manager on an
//! SQLite file until it is killed. `transfer_runner <file>`; prints `running` once started.

use std::time::Duration;

use bank::Account;
use bank::transfers::{Transfer, Transfers};
use cqrs_runtime::Repository;
use cqrs_runtime::process::{Dispatcher, ProcessRunner};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: transfer_runner <file>");
    let store = SqliteStore::open(SqliteConfig::new(path))
        .await
        .expect("open the store");
    let dispatcher = Dispatcher::new()
        .route(Repository::<Account, _>::new(store.clone()))
        .route(Repository::<Transfer, _>::new(store.clone()));
    let manager = Transfers {
        timeout: Duration::from_secs(1),
    };
    let mut runner = ProcessRunner::new(
        store.clone(),
        store.projection_target(),
        manager,
        dispatcher,
    )
    .poll_interval(Duration::from_millis(20))
    // A killed runner's lease expires quickly, so that its successor takes over soon.
    .lease_ttl(Duration::from_millis(500))
    .batch_size(16);
    println!("running");
    runner
        .run(std::future::pending())
        .await
        .expect("the runner stops only when killed");
}
