//! East's interbank runner in a process of its own, for the test that kills it:
//! `interbank_runner <east.db> <nats|kafka> <broker address> <commands topic> <events topic>`.
//! Prints `running` once it follows, and runs until killed.

use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_tests::brokers::Kind;
use cqrs_tests::interbank::east_runner;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, kind, address, commands, events] = &args[..] else {
        panic!("usage: interbank_runner <east.db> <nats|kafka> <address> <commands> <events>");
    };
    let kind: Kind = kind.parse().unwrap_or_else(|e: String| panic!("{e}"));
    let store = SqliteStore::open(SqliteConfig::new(path))
        .await
        .expect("open the store");
    let mut runner = east_runner(store, kind, address, commands, events).await;
    println!("running");
    runner
        .run(std::future::pending())
        .await
        .expect("the runner stops only when killed");
}
