//! `bank publish nats|kafka [FILE]`: the second demo. The bank publishes its public contract
//! (`bank::public::AccountPublic`, mapped from the domain events) through the transactional
//! outbox to a broker, and a "notifications" service consumes it with an idempotent
//! subscriber. Run it twice: the relay publishes only what committed since, and the consumer
//! group resumes where it acknowledged.
//!
//! The broker: `NATS_URL` (default `nats://127.0.0.1:4222`) or `KAFKA_BROKERS` (default
//! `127.0.0.1:9092`). Built with the `nats` or `kafka` feature of this example.

// Without a broker feature, only `run`'s refusal is reachable; the demo is still compiled, so
// that it stays in step with the runtime.
#![cfg_attr(
    not(any(feature = "nats", feature = "kafka")),
    allow(dead_code, unused_variables)
)]

use std::time::Duration;

use bank::public::{AccountPublic, TOPIC, to_public};
use bank::{Account, Deposit, Open, Withdraw};
use cqrs_runtime::bus::{Message, MessageHandler, Outbox, Publisher, Relay, Source, Subscriber};
use cqrs_runtime::projection::MemoryTarget;
use cqrs_runtime::sqlite::SqliteStore;
use cqrs_runtime::{BoxError, Repository};

use crate::Error;

/// Runs the demo on `broker` (`nats` or `kafka`).
pub async fn run(store: SqliteStore, broker: &str) -> Result<(), Error> {
    match broker {
        #[cfg(feature = "nats")]
        "nats" => {
            use cqrs_runtime::bus::nats::{NatsConfig, NatsPublisher, NatsSource, connect};
            let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
            println!("broker: NATS JetStream at {url}, stream `{TOPIC}`\n");
            let publisher = NatsPublisher::connect(&url, NatsConfig::new()).await?;
            let source = NatsSource::new(connect(&url).await?, NatsConfig::new(), TOPIC, "notifications");
            demo(store, publisher, source.await?).await
        }
        #[cfg(feature = "kafka")]
        "kafka" => {
            use cqrs_runtime::bus::kafka::{KafkaConfig, KafkaPublisher, KafkaSource};
            let brokers =
                std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
            println!("broker: Kafka at {brokers}, topic `{TOPIC}`\n");
            let config = KafkaConfig::new(&brokers).create_topics(3, 1);
            let source = KafkaSource::new(&config, "notifications", &[TOPIC]).await?;
            demo(store, KafkaPublisher::new(config)?, source).await
        }
        other => Err(format!(
            "`{other}`: this build has no such broker; run `cargo run -p cqrs-example-bank --features nats -- publish nats` (or `kafka` for both)"
        )
        .into()),
    }
}

async fn demo(
    store: SqliteStore,
    publisher: impl Publisher,
    source: impl Source,
) -> Result<(), Error> {
    // New events for this run: a fresh account with a few movements.
    let repo = Repository::<Account, _>::new(store.clone());
    let id = format!("acc-{}", uuid::Uuid::now_v7().simple());
    let open = Open {
        owner: "Grace".into(),
        currency: "EUR".into(),
    };
    repo.execute(&id, open).await?;
    repo.execute(&id, Deposit { cents: 12_000 }).await?;
    repo.execute(&id, Withdraw { cents: 4_550 }).await?;
    println!("committed 3 events of {id}");

    // The outbox relay: from its checkpoint in the store's file to the broker, acknowledged.
    let outbox = Outbox::new()
        .integration_events::<Account, _>(to_public)
        .topic(TOPIC);
    let target = store.projection_target();
    let mut relay = Relay::new(store, target, outbox, publisher).name("bank-outbox");
    let published = relay.catch_up().await?;
    println!(
        "relay: published {} message(s) of {} event(s) read; checkpoint at log position {}\n",
        published.published, published.read, published.checkpoint
    );

    // The other service: each message applied once (its inbox here is in memory; with an
    // SQLite or PostgreSQL target it is a table beside the read model).
    let mut notifications = Subscriber::new("notifications", source, MemoryTarget::new(), Notifier);
    let wait = notifications.process_next(published.published as usize);
    let stats = tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .map_err(|_| "the consumer received nothing for 30 s: is the broker up?")??;
    println!(
        "\nnotifications: {} applied, {} duplicate(s) skipped, {} dead-lettered",
        stats.processed, stats.duplicates, stats.dead_lettered
    );
    Ok(())
}

/// The notifications service's handler: prints what happened, from the public contract only.
struct Notifier;

impl MessageHandler<()> for Notifier {
    async fn handle(&mut self, message: &Message, _: &mut ()) -> Result<(), BoxError> {
        let what = match message.decode::<AccountPublic>()? {
            AccountPublic::Opened { currency } => format!("opened, in {currency}"),
            AccountPublic::BalanceChanged { cents } => {
                let (sign, cents) = (if cents < 0 { '-' } else { '+' }, cents.abs());
                format!("balance {sign}{}.{:02}", cents / 100, cents % 100)
            }
            AccountPublic::Closed {} => "closed".to_owned(),
        };
        println!(
            "notifications: {} #{} {} ({} v{}, event {})",
            message.key,
            message.sequence,
            what,
            message.event_type,
            message.event_version,
            message.event_id
        );
        Ok(())
    }
}
