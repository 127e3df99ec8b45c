//! The child process of the relay crash test: publishes the bank's account events from an
//! SQLite store to a broker, until killed.
//!
//! `bus_relay <sqlite file> kafka|nats <broker address> <topic> <owner uuid>`

use std::time::Duration;

use bank::Account;
use cqrs_runtime::bus::{Outbox, Relay};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_tests::brokers::Kind;
use cqrs_tests::bus::AnyPublisher;
use uuid::Uuid;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, kind, address, topic, owner] = &args[..] else {
        eprintln!("usage: bus_relay <sqlite file> kafka|nats <broker address> <topic> <owner>");
        std::process::exit(2);
    };
    let kind: Kind = kind.parse().unwrap_or_else(|e: String| panic!("{e}"));
    let store = SqliteStore::open(SqliteConfig::new(path))
        .await
        .expect("open the store");
    let target = store.projection_target();
    let outbox = Outbox::new()
        .domain_events::<Account>()
        .topic(topic.as_str());
    let publisher = AnyPublisher::connect(kind, address).await;
    let mut relay = Relay::new(store, target, outbox, publisher)
        .batch_size(7)
        .poll_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .owner(owner.parse::<Uuid>().expect("an owner uuid"));
    relay
        .run(std::future::pending::<()>())
        .await
        .expect("run the relay");
}
