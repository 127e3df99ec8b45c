//! Kafka through rdkafka: an idempotent producer for the [`Relay`](super::Relay) and a
//! consumer-group [`Source`] for the [`Subscriber`](super::Subscriber).
//!
//! A message goes to its topic (one per aggregate type by default) with the aggregate id as
//! its key, so one aggregate's events share a partition and keep their order; the envelope
//! travels as headers ([`super::headers`]) and the payload as JSON. The producer is
//! idempotent (`enable.idempotence`, which implies `acks=all`) with the gapless guarantee, so
//! that a partition never holds a later event of a producer without the earlier ones; a
//! producer that hits a fatal error is replaced, and the batch published again. While a broker
//! is down, librdkafka retries on its own until `message.timeout.ms` (5 minutes by default) and
//! only then fails the batch, which the relay publishes again after its backoff.
//!
//! Dead letters go to `<topic>-dead-letter`, with the original key, payload and headers plus
//! the error headers.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use futures::FutureExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message as _, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::oneshot;

use super::{BusError, DeadLetter, Delivery, Message, Publisher, Source, headers};

/// Where the brokers are and how topics are made: shared by [`KafkaPublisher`] and
/// [`KafkaSource`].
///
/// ```
/// use cqrs_runtime::bus::kafka::KafkaConfig;
///
/// let config = KafkaConfig::new("127.0.0.1:9092")
///     .create_topics(6, 3)
///     .set("client.id", "bank");
/// assert_eq!(config.brokers(), "127.0.0.1:9092");
/// ```
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    brokers: String,
    create_topics: Option<(i32, i32)>,
    extra: Vec<(String, String)>,
}

impl KafkaConfig {
    /// Brokers as `host:port[,host:port...]`.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            create_topics: None,
            extra: Vec::new(),
        }
    }

    /// The bootstrap brokers.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// Creates a missing topic (and its dead-letter topic) before the first use, with this
    /// many partitions and replicas. Off by default: in production topics are declared, e.g.
    /// as Strimzi `KafkaTopic` resources (`cargo cqrs strimzi`).
    pub fn create_topics(mut self, partitions: i32, replication: i32) -> Self {
        self.create_topics = Some((partitions, replication));
        self
    }

    /// Sets a librdkafka property (security, timeouts, ...), applied after this crate's own.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((key.into(), value.into()));
        self
    }

    fn client(&self, own: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in own {
            config.set(*key, *value);
        }
        for (key, value) in &self.extra {
            config.set(key, value);
        }
        config
    }

    fn producer(&self) -> Result<FutureProducer, BusError> {
        self.client(&[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("enable.gapless.guarantee", "true"),
            ("linger.ms", "2"),
        ])
        .create()
        .map_err(config_error)
    }
}

/// Creates the topics in `topics` that do not exist yet, remembering those it saw.
struct Topics {
    admin: Option<(AdminClient<DefaultClientContext>, i32, i32)>,
    known: HashSet<String>,
}

impl Topics {
    fn new(config: &KafkaConfig) -> Result<Self, BusError> {
        let admin = match config.create_topics {
            Some((partitions, replication)) => {
                let admin = config.client(&[]).create().map_err(config_error)?;
                Some((admin, partitions, replication))
            }
            None => None,
        };
        Ok(Topics {
            admin,
            known: HashSet::new(),
        })
    }

    async fn ensure<'a>(&mut self, topics: impl Iterator<Item = &'a str>) -> Result<(), BusError> {
        let Some((admin, partitions, replication)) = &self.admin else {
            return Ok(());
        };
        let missing: Vec<&str> = topics.filter(|t| !self.known.contains(*t)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut unique = missing.clone();
        unique.sort_unstable();
        unique.dedup();
        let new: Vec<NewTopic<'_>> = unique
            .iter()
            .map(|t| NewTopic::new(t, *partitions, TopicReplication::Fixed(*replication)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin
            .create_topics(&new, &options)
            .await
            .map_err(BusError::broker)?;
        for result in results {
            match result {
                Ok(topic) | Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    self.known.insert(topic);
                }
                Err((topic, code)) => {
                    return Err(BusError::broker(format!(
                        "cannot create topic `{topic}`: {code}"
                    )));
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Topics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topics")
            .field("create", &self.admin.as_ref().map(|(_, p, r)| (p, r)))
            .field("known", &self.known)
            .finish()
    }
}

/// Publishes to Kafka through an idempotent producer.
pub struct KafkaPublisher {
    config: KafkaConfig,
    producer: FutureProducer,
    topics: Topics,
}

impl fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("config", &self.config)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl KafkaPublisher {
    /// A publisher to the brokers of `config`. Connects lazily: a broker that is down now
    /// only delays the first batch.
    pub fn new(config: KafkaConfig) -> Result<Self, BusError> {
        Ok(KafkaPublisher {
            producer: config.producer()?,
            topics: Topics::new(&config)?,
            config,
        })
    }

    async fn send_all(&mut self, messages: &[Message]) -> Result<(), BusError> {
        self.topics
            .ensure(messages.iter().map(|m| m.topic.as_str()))
            .await?;
        let mut pending = Vec::with_capacity(messages.len());
        for message in messages {
            let headers = record_headers(message.headers());
            let mut record = FutureRecord::to(&message.topic)
                .key(&message.key)
                .payload(&message.payload)
                .headers(headers);
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The local queue is full: let deliveries drain, then enqueue again.
                        record = back;
                        self.producer.poll(Duration::from_millis(10));
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((error, _)) => return Err(BusError::broker(error)),
                }
            }
        }
        for delivery in pending {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => return Err(BusError::broker(error)),
                Err(_canceled) => return Err(BusError::broker("the producer was dropped")),
            }
        }
        Ok(())
    }
}

impl Publisher for KafkaPublisher {
    async fn publish(&mut self, messages: &[Message]) -> Result<(), BusError> {
        let result = self.send_all(messages).await;
        if result.is_err()
            && let Some((code, reason)) = self.producer.client().fatal_error()
        {
            // An idempotent producer that lost its guarantees refuses all further sends:
            // start a new one (a new producer id) and let the relay publish the batch again.
            tracing::warn!(?code, %reason, "the Kafka producer hit a fatal error; replacing it");
            self.producer = self.config.producer()?;
        }
        result
    }
}

/// Consumes topics in a Kafka consumer group. The offset of each acknowledged message is
/// committed (asynchronously) and no other, so a restarted consumer resumes after the last
/// acknowledged message of each partition: a message received but not processed is delivered
/// again, never skipped.
pub struct KafkaSource {
    /// Always `Some` until dropped.
    consumer: Option<StreamConsumer>,
    /// The dead letters' producer, made at the first dead letter.
    producer: Option<FutureProducer>,
    config: KafkaConfig,
    topics: Topics,
}

impl fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSource")
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl KafkaSource {
    /// Joins consumer group `group` on `topics`, starting from the earliest message where the
    /// group has no committed offset.
    pub async fn new(config: &KafkaConfig, group: &str, topics: &[&str]) -> Result<Self, BusError> {
        let mut known = Topics::new(config)?;
        known.ensure(topics.iter().copied()).await?;
        let consumer: StreamConsumer = config
            .client(&[
                ("group.id", group),
                // Offsets are committed one by one, for acknowledged messages only.
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", "earliest"),
            ])
            .create()
            .map_err(config_error)?;
        consumer.subscribe(topics).map_err(config_error)?;
        Ok(KafkaSource {
            consumer: Some(consumer),
            producer: None,
            config: config.clone(),
            topics: known,
        })
    }
}

impl KafkaSource {
    fn consumer(&self) -> Result<&StreamConsumer, BusError> {
        self.consumer
            .as_ref()
            .ok_or_else(|| BusError::Config("the Kafka consumer was closed".into()))
    }
}

impl KafkaSource {
    /// Closes the consumer: it flushes the pending commits and leaves the group. That waits
    /// for the broker, as long as it takes when the broker is gone, so it runs on a thread of
    /// its own (not on an async worker, and not in the runtime's blocking pool, which a
    /// runtime's shutdown waits for). The receiver hears when it is done.
    fn close_in_background(&mut self) -> Option<oneshot::Receiver<()>> {
        let consumer = self.consumer.take()?;
        let (done, closed) = oneshot::channel();
        let closing = std::thread::Builder::new().name("kafka-close".into());
        let started = closing.spawn(move || {
            drop(consumer);
            let _ = done.send(());
        });
        match started {
            Ok(_) => Some(closed),
            Err(error) => {
                tracing::warn!(%error, "cannot start a thread to close the Kafka consumer; closed it here");
                None
            }
        }
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        self.close_in_background();
    }
}

impl Source for KafkaSource {
    type Receipt = OwnedMessage;

    async fn next(&mut self) -> Result<Delivery<OwnedMessage>, BusError> {
        let received = self.consumer()?.recv().await.map_err(BusError::broker)?;
        Ok(delivered(received.detach()))
    }

    async fn try_next(&mut self) -> Result<Option<Delivery<OwnedMessage>>, BusError> {
        // `recv` polls librdkafka's queue without blocking and only then waits; a message
        // already fetched is returned at the first poll, and nothing is taken otherwise.
        match self.consumer()?.recv().now_or_never() {
            Some(Ok(received)) => Ok(Some(delivered(received.detach()))),
            Some(Err(error)) => Err(BusError::broker(error)),
            None => Ok(None),
        }
    }

    async fn ack(&mut self, receipt: OwnedMessage) -> Result<(), BusError> {
        // The committed offset is the next one to read. An asynchronous commit keeps order
        // with the earlier ones; a lost one only means a redelivery, skipped by the inbox.
        let mut offsets = TopicPartitionList::with_capacity(1);
        offsets
            .add_partition_offset(
                receipt.topic(),
                receipt.partition(),
                Offset::Offset(receipt.offset() + 1),
            )
            .map_err(BusError::broker)?;
        self.consumer()?
            .commit(&offsets, CommitMode::Async)
            .map_err(BusError::broker)
    }

    async fn dead_letter(
        &mut self,
        receipt: &OwnedMessage,
        letter: &DeadLetter,
    ) -> Result<(), BusError> {
        let topic = format!("{}-dead-letter", receipt.topic());
        self.topics.ensure(std::iter::once(topic.as_str())).await?;
        let mut copied: Vec<(&str, String)> = receipt
            .headers()
            .map(|h| {
                h.iter()
                    .filter(|h| !h.key.starts_with("dead-letter-"))
                    .filter_map(|h| Some((h.key, String::from_utf8_lossy(h.value?).into_owned())))
                    .collect()
            })
            .unwrap_or_default();
        copied.extend([
            (headers::ERROR, letter.error.clone()),
            (headers::CONSUMER, letter.consumer.clone()),
            (headers::ATTEMPTS, letter.attempts.to_string()),
            (
                headers::SOURCE,
                format!(
                    "{}/{}/{}",
                    receipt.topic(),
                    receipt.partition(),
                    receipt.offset()
                ),
            ),
        ]);
        let mut record = FutureRecord::<[u8], [u8]>::to(&topic).headers(record_headers(copied));
        if let Some(key) = receipt.key() {
            record = record.key(key);
        }
        if let Some(payload) = receipt.payload() {
            record = record.payload(payload);
        }
        let producer = match &mut self.producer {
            Some(producer) => producer,
            empty => empty.insert(self.config.producer()?),
        };
        match producer.send(record, Timeout::Never).await {
            Ok(_) => Ok(()),
            Err((error, _)) => Err(BusError::broker(error)),
        }
    }

    async fn close(&mut self) -> Result<(), BusError> {
        if let Some(closed) = self.close_in_background() {
            // The thread drops the sender only once the consumer is closed (or if it panics).
            let _ = closed.await;
        }
        Ok(())
    }
}

/// A received record as a [`Message`] (or why it is not one) with its receipt.
fn delivered(owned: OwnedMessage) -> Delivery<OwnedMessage> {
    let found: Vec<(String, String)> = owned
        .headers()
        .map(|h| {
            h.iter()
                .filter_map(|h| {
                    let value = std::str::from_utf8(h.value?).ok()?;
                    Some((h.key.to_owned(), value.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    let lookup = |name: &str| {
        found
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let message = Message::from_headers(owned.topic(), lookup, owned.payload().unwrap_or(b""));
    (message, owned)
}

fn record_headers<K: AsRef<str>>(pairs: Vec<(K, String)>) -> OwnedHeaders {
    pairs.iter().fold(
        OwnedHeaders::new_with_capacity(pairs.len()),
        |all, (key, value)| {
            all.insert(Header {
                key: key.as_ref(),
                value: Some(value.as_str()),
            })
        },
    )
}

fn config_error(error: KafkaError) -> BusError {
    BusError::Config(format!("Kafka client: {error}"))
}
