//! One publisher and one source type over both brokers, so that each bus test is written once
//! and runs on Kafka and on NATS.

use std::time::Duration;

use cqrs_runtime::bus::kafka::{KafkaConfig, KafkaPublisher, KafkaSource};
use cqrs_runtime::bus::nats::{NatsConfig, NatsPublisher, NatsSource};
use cqrs_runtime::bus::{BusError, DeadLetter, Delivery, Message, Publisher, Source};

use crate::brokers::{Broker, Kind};

/// A Kafka or NATS publisher.
#[derive(Debug)]
pub enum AnyPublisher {
    /// Kafka.
    Kafka(KafkaPublisher),
    /// NATS JetStream.
    Nats(NatsPublisher),
}

impl AnyPublisher {
    /// A publisher to `broker` (Kafka topics are created with 3 partitions).
    pub async fn connect(kind: Kind, address: &str) -> AnyPublisher {
        match kind {
            Kind::Kafka => AnyPublisher::Kafka(
                KafkaPublisher::new(kafka_config(address)).expect("a Kafka producer"),
            ),
            Kind::Nats => AnyPublisher::Nats(
                NatsPublisher::connect(address, NatsConfig::new())
                    .await
                    .expect("a NATS client"),
            ),
        }
    }
}

impl Publisher for AnyPublisher {
    async fn publish(&mut self, messages: &[Message]) -> Result<(), BusError> {
        match self {
            AnyPublisher::Kafka(p) => p.publish(messages).await,
            AnyPublisher::Nats(p) => p.publish(messages).await,
        }
    }
}

/// A Kafka or NATS source.
#[derive(Debug)]
pub enum AnySource {
    /// Kafka.
    Kafka(KafkaSource),
    /// NATS JetStream (boxed: its client state is large).
    Nats(Box<NatsSource>),
}

/// The receipt of an [`AnySource`].
#[derive(Debug)]
pub enum AnyReceipt {
    /// Kafka.
    Kafka(<KafkaSource as Source>::Receipt),
    /// NATS JetStream (boxed: a message with its headers is large).
    Nats(Box<<NatsSource as Source>::Receipt>),
}

impl AnySource {
    /// A consumer `group` of `topic` on `broker`.
    pub async fn connect(broker: &Broker, topic: &str, group: &str) -> AnySource {
        AnySource::connect_to(broker.kind(), broker.address(), topic, group).await
    }

    /// A consumer `group` of `topic` on the broker of `kind` at `address`.
    pub async fn connect_to(kind: Kind, address: &str, topic: &str, group: &str) -> AnySource {
        match kind {
            Kind::Kafka => AnySource::Kafka(
                KafkaSource::new(&consumer_config(address), group, &[topic])
                    .await
                    .expect("a Kafka consumer"),
            ),
            Kind::Nats => {
                let client = cqrs_runtime::bus::nats::connect(address)
                    .await
                    .expect("a NATS client");
                AnySource::Nats(Box::new(
                    NatsSource::new(client, nats_config(), topic, group)
                        .await
                        .expect("a NATS consumer"),
                ))
            }
        }
    }
}

impl Source for AnySource {
    type Receipt = AnyReceipt;

    async fn next(&mut self) -> Result<Delivery<AnyReceipt>, BusError> {
        Ok(match self {
            AnySource::Kafka(s) => {
                let (message, receipt) = s.next().await?;
                (message, AnyReceipt::Kafka(receipt))
            }
            AnySource::Nats(s) => {
                let (message, receipt) = s.next().await?;
                (message, AnyReceipt::Nats(Box::new(receipt)))
            }
        })
    }

    async fn try_next(&mut self) -> Result<Option<Delivery<AnyReceipt>>, BusError> {
        Ok(match self {
            AnySource::Kafka(s) => s
                .try_next()
                .await?
                .map(|(message, receipt)| (message, AnyReceipt::Kafka(receipt))),
            AnySource::Nats(s) => s
                .try_next()
                .await?
                .map(|(message, receipt)| (message, AnyReceipt::Nats(Box::new(receipt)))),
        })
    }

    async fn ack(&mut self, receipt: AnyReceipt) -> Result<(), BusError> {
        match (self, receipt) {
            (AnySource::Kafka(s), AnyReceipt::Kafka(r)) => s.ack(r).await,
            (AnySource::Nats(s), AnyReceipt::Nats(r)) => s.ack(*r).await,
            _ => Err(BusError::Config("a receipt of another source".into())),
        }
    }

    async fn dead_letter(
        &mut self,
        receipt: &AnyReceipt,
        letter: &DeadLetter,
    ) -> Result<(), BusError> {
        match (self, receipt) {
            (AnySource::Kafka(s), AnyReceipt::Kafka(r)) => s.dead_letter(r, letter).await,
            (AnySource::Nats(s), AnyReceipt::Nats(r)) => s.dead_letter(r, letter).await,
            _ => Err(BusError::Config("a receipt of another source".into())),
        }
    }

    async fn close(&mut self) -> Result<(), BusError> {
        match self {
            AnySource::Kafka(s) => s.close().await,
            AnySource::Nats(s) => s.close().await,
        }
    }
}

/// The tests' Kafka configuration: topics created on first use, 3 partitions, 1 replica.
pub fn kafka_config(address: &str) -> KafkaConfig {
    KafkaConfig::new(address)
        .create_topics(3, 1)
        .set("message.timeout.ms", "120000")
        .set("socket.connection.setup.timeout.ms", "5000")
}

/// The tests' Kafka consumers: a fetch returns after 10 ms without data. tansu answers a fetch
/// when its wait is over rather than when data arrives, so librdkafka's default wait (500 ms)
/// would be every message's latency.
pub fn consumer_config(address: &str) -> KafkaConfig {
    kafka_config(address).set("fetch.wait.max.ms", "10")
}

/// The tests' NATS configuration: a message held by a stopped consumer comes back after 3 s.
pub fn nats_config() -> NatsConfig {
    NatsConfig::new().ack_wait(Duration::from_secs(3))
}

/// How long a bus test waits for messages before it fails.
pub const PATIENCE: Duration = Duration::from_secs(120);
