//! The outbox relay against a raw producer sending the same messages, in the same run, on
//! each broker (a tansu Kafka broker and a NATS server started by the bench from
//! `TANSU_BIN` / `NATS_SERVER_BIN`, as `scripts/brokers.sh` installs them; or `KAFKA_BROKERS`
//! / `NATS_URL`):
//!
//! - `raw_producer`: the 10,000 messages, built beforehand, sent by the broker's client as fast
//!   as it takes them (rdkafka's idempotent producer with every delivery awaited; JetStream
//!   publishes with every acknowledgement awaited, up to 4,096 in flight: just below the
//!   client's own limit);
//! - `relay`: a relay publishing the same 10,000 events (1,000 aggregates) from an SQLite store
//!   from position 0: log reads, message building, publishing (NATS: an aggregate's next message after its previous one's acknowledgement),
//!   and the checkpoint commits in the store's file.
//!
//! - `consume_batch_1`, `consume_batch_64` (Kafka): a subscriber applying 3,000 messages
//!   (see [`CONSUMED`]) to an SQLite table, one transaction per message or up to 64 per transaction (NATS holds
//!   one message at a time, so there is nothing to batch).
//!
//! After each group, the commit-to-consumer latency (p50, p99) on that broker: see [`latency`].
//!
//! A broker that is not configured skips its group, saying so.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use cqrs_benches::fill_tallies;
use cqrs_runtime::bus::nats::subject;
use cqrs_runtime::bus::{Message, MessageHandler, Outbox, Publisher, Relay, Subscriber};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_runtime::{EventStoreExt, LogPosition, Repository};
use cqrs_tests::brokers::{Broker, Kind};
use cqrs_tests::bus::AnyPublisher;
use cqrs_tests::eventually;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::TryStreamExt;
use rdkafka::producer::{FutureProducer, FutureRecord};

const EVENTS: u64 = 10_000;

/// The messages of the consumer benchmark: tansu 0.6 stalls when a new consumer group reads a
/// backlog of 10,000 messages from the start (3,300 came in 30 s, then none), and serves 3,000.
const CONSUMED: usize = 3_000;

/// An outbox of the benches' tally aggregate onto `topic`.
fn outbox(topic: &str) -> Outbox {
    Outbox::new()
        .domain_events::<cqrs_benches::Tally>()
        .topic(topic)
}

fn bus(c: &mut Criterion) {
    let rt = cqrs_benches::runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(async {
        let store = SqliteStore::open(SqliteConfig::new(dir.path().join("events.db")))
            .await
            .unwrap();
        fill_tallies(&store, EVENTS).await;
        store
    });
    let messages: Vec<Message> = rt.block_on(async {
        let log: Vec<_> = store
            .log_events(LogPosition::START)
            .try_collect()
            .await
            .unwrap();
        log.iter()
            .map(|e| outbox("t").message(e).unwrap().unwrap())
            .collect()
    });
    assert_eq!(messages.len() as u64, EVENTS);

    for kind in [Kind::Kafka, Kind::Nats] {
        let Some(broker) = Broker::start(kind, "bus benchmarks") else {
            continue;
        };
        let name = match kind {
            Kind::Kafka => "kafka",
            Kind::Nats => "nats",
        };
        let mut group = c.benchmark_group(format!("bus/{name}"));
        group.throughput(Throughput::Elements(EVENTS));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(20));
        let mut round = 0u64;

        group.bench_function("raw_producer", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        round += 1;
                        let topic = format!("raw-{round}-{}", uuid::Uuid::now_v7().simple());
                        total += raw(kind, broker.address(), &topic, &messages).await;
                    }
                    total
                })
            });
        });

        group.bench_function("relay", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        round += 1;
                        let topic = format!("relay-{round}-{}", uuid::Uuid::now_v7().simple());
                        // The topic exists before the clock starts, as for the raw producer.
                        prepare(kind, broker.address(), &topic).await;
                        let publisher = AnyPublisher::connect(kind, broker.address()).await;
                        let relay_name: &'static str =
                            Box::leak(format!("bench-{round}").into_boxed_str());
                        let mut relay = Relay::new(
                            store.clone(),
                            store.projection_target(),
                            outbox(&topic),
                            publisher,
                        )
                        .name(relay_name);
                        let start = Instant::now();
                        let progress = relay.catch_up().await.unwrap();
                        total += start.elapsed();
                        assert_eq!(progress.published, EVENTS);
                    }
                    total
                })
            });
        });
        group.finish();
        drop(broker);
        // The consumer, on a broker of its own: tansu serves a backlog slowly once it holds the
        // throughput runs' data.
        if kind == Kind::Kafka
            && let Some(broker) = Broker::start(kind, "bus benchmarks")
        {
            let mut group = c.benchmark_group(format!("bus/{name}"));
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(20));
            // The consumer: 3,000 of the messages, published once, read from the start by a new
            // consumer group each pass and applied to a table of a fresh SQLite database.
            round += 1;
            let topic = format!("consume-{round}-{}", uuid::Uuid::now_v7().simple());
            rt.block_on(async {
                let mut publisher = prepare(kind, broker.address(), &topic).await;
                let mut all = messages[..CONSUMED].to_vec();
                all.iter_mut().for_each(|m| m.topic.clone_from(&topic));
                publisher.publish(&all).await.unwrap();
            });
            for batch in [1, 64] {
                group.throughput(Throughput::Elements(CONSUMED as u64));
                group.bench_function(format!("consume_batch_{batch}"), |b| {
                    b.iter_custom(|iters| {
                        rt.block_on(async {
                            let mut total = Duration::ZERO;
                            for _ in 0..iters {
                                total += consume(&broker, &topic, batch).await;
                            }
                            total
                        })
                    });
                });
            }
            group.finish();
        }
        // A broker of its own, without the throughput runs' data.
        if let Some(broker) = Broker::start(kind, "bus benchmarks") {
            rt.block_on(latency(&broker, name));
        }
    }
}

/// Commit-to-consumer latency: 2,000 commands, one every 2 ms, each committing one event to a
/// fresh SQLite store, with a live relay and a subscriber applying each message to a table in
/// another SQLite database (inbox included). A message's latency is the time from its event's
/// `recorded_at` (set as its command is handled, before the commit) to its handler. The
/// percentiles go to stdout and to `target/criterion/bus-latency-<broker>.json`.
async fn latency(broker: &Broker, name: &str) {
    const COMMANDS: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("events.db")))
        .await
        .unwrap();
    let target = consumer_target(&dir).await;
    let topic = format!("latency-{}", uuid::Uuid::now_v7().simple());
    // The relay publishes with the client that sent the warm-up message: connected, and (for
    // Kafka) with its producer id and the topic's metadata, as in a service that runs.
    let publisher = prepare(broker.kind(), broker.address(), &topic).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = {
        let mut relay = Relay::new(
            store.clone(),
            store.projection_target(),
            outbox(&topic),
            publisher,
        )
        .poll_interval(Duration::from_millis(200));
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            relay
                .run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
                .unwrap()
        })
    };
    let samples = Samples::default();
    let subscriber = {
        let source = cqrs_tests::bus::AnySource::connect(broker, &topic, "latency").await;
        let mut subscriber = Subscriber::new("latency", source, target, samples.clone());
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            subscriber
                .run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
                .unwrap()
        })
    };
    // The clock starts once the consumer receives the warm-up message: it has joined.
    let patience = Duration::from_secs(120);
    eventually(patience, Duration::from_millis(20), async || {
        samples.len() > 0
    })
    .await;
    assert_eq!(samples.take().len(), 1, "the warm-up message");
    let repo = Repository::<cqrs_benches::Tally, _>::new(store.clone());
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    for i in 0..COMMANDS {
        tick.tick().await;
        let id = format!("l-{}", i % 100);
        repo.execute(&id, cqrs_benches::Add { n: 1 }).await.unwrap();
    }
    eventually(patience, Duration::from_millis(50), async || {
        samples.len() >= COMMANDS
    })
    .await;
    let _ = stop.send(true);
    relay.await.unwrap();
    subscriber.await.unwrap();
    let mut micros = samples.take();
    micros.sort_unstable();
    assert!(
        micros.len() == COMMANDS,
        "only {} messages arrived",
        micros.len()
    );
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    let (p50, p99) = (at(0.50), at(0.99));
    println!(
        "bus/{name}/latency: p50 {p50:.2} ms, p99 {p99:.2} ms over {} messages",
        micros.len()
    );
    let json = serde_json::json!({ "broker": name, "p50_ms": p50, "p99_ms": p99, "messages": micros.len() });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/criterion")
        .join(format!("bus-latency-{name}.json"));
    let _ = std::fs::create_dir_all(path.parent().unwrap());
    std::fs::write(path, json.to_string()).unwrap();
}

/// Applies the topic's warm-up message and [`CONSUMED`] messages from its start, in a new consumer
/// group, to a fresh SQLite database with `batch`; the time from the subscriber's start to the
/// last message applied (the group's join included).
async fn consume(broker: &Broker, topic: &str, batch: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let target = consumer_target(&dir).await;
    let group = format!("consume-{}", uuid::Uuid::now_v7().simple());
    let source = cqrs_tests::bus::AnySource::connect(broker, topic, &group).await;
    let samples = Samples::default();
    let mut subscriber = Subscriber::new(group, source, target, samples.clone()).batch(batch);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(300);
    subscriber
        .run(async {
            // A plain loop: `eventually`'s borrowing closure would not be `Send` here.
            while samples.len() <= CONSUMED && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(
        samples.len(),
        CONSUMED + 1,
        "the warm-up message and every one sent"
    );
    subscriber.close().await.unwrap();
    elapsed
}

/// The consuming service's database in `dir`, with the table [`Samples`] writes to.
async fn consumer_target(dir: &tempfile::TempDir) -> cqrs_runtime::sqlite::SqliteTarget {
    let consumer = SqliteStore::open(SqliteConfig::new(dir.path().join("consumer.db")))
        .await
        .unwrap();
    let target = consumer.projection_target();
    sqlx::query("CREATE TABLE seen (id TEXT NOT NULL)")
        .execute(target.pool())
        .await
        .unwrap();
    target
}

/// Latencies in microseconds, shared by clones.
#[derive(Clone, Default)]
struct Samples(std::sync::Arc<std::sync::Mutex<Vec<i64>>>);

impl Samples {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn take(&self) -> Vec<i64> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl MessageHandler<sqlx::SqliteConnection> for Samples {
    async fn handle(
        &mut self,
        message: &Message,
        conn: &mut sqlx::SqliteConnection,
    ) -> Result<(), cqrs_runtime::BoxError> {
        use sqlx::Executor;
        conn.execute(sqlx::query("INSERT INTO seen (id) VALUES (?1)").bind(&message.key))
            .await?;
        let latency = chrono::Utc::now() - message.recorded_at;
        self.0
            .lock()
            .unwrap()
            .push(latency.num_microseconds().unwrap_or(i64::MAX));
        Ok(())
    }
}

/// Creates `topic` (a Kafka topic of 3 partitions, or a JetStream stream) with one message;
/// returns the publisher that sent it, connected and with the topic's metadata.
async fn prepare(kind: Kind, address: &str, topic: &str) -> AnyPublisher {
    let mut warm = sample();
    warm.topic = topic.to_owned();
    let mut publisher = AnyPublisher::connect(kind, address).await;
    publisher.publish(&[warm]).await.unwrap();
    publisher
}

fn sample() -> Message {
    Message {
        topic: String::new(),
        key: "warm-up".into(),
        event_id: uuid::Uuid::now_v7(),
        event_type: "Added".into(),
        event_version: 1,
        aggregate_type: "tally".into(),
        sequence: 1,
        recorded_at: chrono::Utc::now(),
        metadata: Default::default(),
        payload: "{\"n\":1}".into(),
    }
}

/// Sends `messages` to `topic` with the broker's own client, all in flight, every
/// acknowledgement awaited; returns the time from the first send to the last acknowledgement.
async fn raw(kind: Kind, address: &str, topic: &str, messages: &[Message]) -> Duration {
    prepare(kind, address, topic).await;
    match kind {
        Kind::Kafka => {
            let producer: FutureProducer = rdkafka::ClientConfig::new()
                .set("bootstrap.servers", address)
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "2")
                .create()
                .unwrap();
            let start = Instant::now();
            let mut pending = Vec::with_capacity(messages.len());
            for m in messages {
                let headers = m.headers().iter().fold(
                    rdkafka::message::OwnedHeaders::new(),
                    |all, (key, value)| {
                        all.insert(rdkafka::message::Header {
                            key,
                            value: Some(value.as_str()),
                        })
                    },
                );
                let record = FutureRecord::to(topic)
                    .key(&m.key)
                    .payload(&m.payload)
                    .headers(headers);
                pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
            }
            for delivery in pending {
                delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
            }
            start.elapsed()
        }
        Kind::Nats => {
            let client = async_nats::connect(address).await.unwrap();
            let js = async_nats::jetstream::new(client);
            let start = Instant::now();
            // All in flight up to the client's limit (5,000; publishes beyond it wait for
            // acknowledgements to be awaited): a sliding window just below it.
            let mut acks = std::collections::VecDeque::with_capacity(4096);
            for m in messages {
                if acks.len() == 4096 {
                    let ack: async_nats::jetstream::context::PublishAckFuture =
                        acks.pop_front().unwrap();
                    ack.await.unwrap();
                }
                let mut map = HeaderMap::new();
                map.insert("Nats-Msg-Id", m.event_id.to_string().as_str());
                for (name, value) in m.headers() {
                    map.insert(name, value.as_str());
                }
                let ack = js
                    .publish_with_headers(subject(topic, &m.key), map, m.payload.clone().into())
                    .await
                    .unwrap();
                acks.push_back(ack);
            }
            for ack in acks {
                ack.await.unwrap();
            }
            start.elapsed()
        }
    }
}

criterion_group!(benches, bus);
criterion_main!(benches);
