//! The event bus: committed events leave the service through a transactional outbox
//! ([`Relay`]), and other services' events come in through an idempotent [`Subscriber`].
//!
//! The contract:
//! - **Nothing committed is lost, nothing uncommitted is published.** The relay reads the
//!   store's global log (which holds only committed events, and never skips one that committed
//!   late) from its own checkpoint, publishes a batch, waits for the broker's acknowledgements,
//!   and only then moves the checkpoint. A crash or a broker outage in between publishes the
//!   batch again: delivery is *at least once*.
//! - **Order holds per aggregate.** A message's key is its aggregate id (one Kafka partition,
//!   one NATS subject per aggregate), and a [`Publisher`] never lets a message of an aggregate
//!   be stored before an earlier one of the same aggregate was.
//! - **Each message takes effect once.** The subscriber records each processed event id in
//!   the transaction that updates the read model ([`Inbox`]); a duplicate is acknowledged
//!   and skipped.
//! - **Poison never blocks the flow.** A message whose handler keeps failing goes to a
//!   dead-letter topic (Kafka) or subject (NATS) with the error, and the next one is processed.
//!
//! Brokers: [`kafka`] (feature `kafka`, through rdkafka) and [`nats`] (feature `nats`, NATS
//! JetStream through async-nats); [`memory`] is an in-process broker for tests and demos.
//!
//! What leaves the service is chosen by an [`Outbox`]: the domain events of an aggregate as
//! they are stored, or integration events mapped from them (a separate, versioned public
//! contract, so that the domain events can change freely).

use std::collections::BTreeMap;
use std::future::Future;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::contract::error::BoxError;
use crate::contract::event::{DecodeError, DomainEvent, LogPosition, Metadata, StoredEvent};

mod command;
mod erased;
mod handler;
mod outbox;
mod relay;
mod subscriber;

#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub mod kafka;
pub mod memory;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub mod nats;

/// Moved beside the other target traits; re-exported here where it was first declared.
pub use crate::projection::Inbox;
pub use command::{CommandHandler, CommandStats};
pub(crate) use erased::{ErasedPublisher, ErasedReceipt, ErasedSource};
pub use handler::{DeadLetter, MessageHandler, ProjectionHandler};
pub use outbox::Outbox;
pub use relay::{Relay, RelayError, RelayProgress};
pub(crate) use subscriber::prune_inbox;
pub use subscriber::{Subscriber, SubscriberError, SubscriberStats};

/// The header names a message carries (Kafka record headers, NATS message headers).
pub mod headers {
    /// The event id (a UUID): the key of idempotency.
    pub const EVENT_ID: &str = "event-id";
    /// The event's type name.
    pub const EVENT_TYPE: &str = "event-type";
    /// The version its payload is written as.
    pub const EVENT_VERSION: &str = "event-version";
    /// The aggregate type of the source stream.
    pub const AGGREGATE_TYPE: &str = "aggregate-type";
    /// The aggregate id (also the Kafka key).
    pub const AGGREGATE_ID: &str = "aggregate-id";
    /// The sequence of the source event in its stream.
    pub const SEQUENCE: &str = "sequence";
    /// When the source event was recorded (RFC 3339).
    pub const RECORDED_AT: &str = "recorded-at";
    /// The correlation id, if any.
    pub const CORRELATION_ID: &str = "correlation-id";
    /// The causation id, if any.
    pub const CAUSATION_ID: &str = "causation-id";
    /// The idempotency key of the command that recorded the event (or of the command a
    /// message carries), if any: how a process manager finds the instance whose command
    /// another service ran.
    pub const COMMAND_ID: &str = "command-id";
    /// The metadata's free key/values as a JSON object, if any (the trace context aside).
    pub const METADATA: &str = "metadata";
    /// The W3C trace parent of the span that recorded the event, if any.
    pub const TRACEPARENT: &str = crate::contract::trace::TRACEPARENT;
    /// The W3C trace state, if any.
    pub const TRACESTATE: &str = crate::contract::trace::TRACESTATE;
    /// Always `application/json`.
    pub const CONTENT_TYPE: &str = "content-type";
    /// On a dead letter: the error of the last attempt.
    pub const ERROR: &str = "dead-letter-error";
    /// On a dead letter: the consumer that gave up.
    pub const CONSUMER: &str = "dead-letter-consumer";
    /// On a dead letter: how many times the handler ran.
    pub const ATTEMPTS: &str = "dead-letter-attempts";
    /// On a dead letter: the topic (or NATS subject) the message came from.
    pub const SOURCE: &str = "dead-letter-source";
}

/// One event on the bus: where it goes, its envelope, and its JSON payload.
///
/// The relay builds these from stored events; a subscriber gets them back from the broker's
/// headers ([`Message::from_headers`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The Kafka topic, or the NATS stream, it is published to.
    pub topic: String,
    /// The aggregate id: the Kafka key and the last token of the NATS subject.
    pub key: String,
    /// The id of the event, kept from the stored event it comes from: the broker's and the
    /// consumer's key for dropping duplicates.
    pub event_id: Uuid,
    /// The event's type name (a domain event's, or an integration event's).
    pub event_type: String,
    /// The version its payload is written as.
    pub event_version: u32,
    /// The aggregate type of the stream it comes from.
    pub aggregate_type: String,
    /// The sequence of the source event in its stream.
    pub sequence: u64,
    /// When the source event was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Correlation, causation and free key/values, from the source event.
    pub metadata: Metadata,
    /// The JSON payload.
    pub payload: String,
}

impl Message {
    /// A message carrying a stored event as it is.
    pub fn from_stored(topic: impl Into<String>, event: &StoredEvent) -> Self {
        Message {
            topic: topic.into(),
            key: event.aggregate_id.clone(),
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            event_version: event.event_version,
            aggregate_type: event.aggregate_type.clone(),
            sequence: event.sequence,
            recorded_at: event.recorded_at,
            metadata: event.metadata.clone(),
            payload: event.event.clone(),
        }
    }

    /// A command for aggregate `aggregate_id` of another service, as a process manager
    /// publishes it ([`Effects::publish`](crate::process::Effects::publish)) and a
    /// [`CommandHandler`] runs it: `event_type` is the command's name, the payload its JSON,
    /// and the command's idempotency key goes in `metadata` ([`Metadata::command_id`]).
    ///
    /// The message's id is derived from the key (a UUID v5), so that a command published
    /// again after a crash is the same message to the broker's and the consumer's duplicate
    /// checks.
    pub fn command(
        topic: impl Into<String>,
        aggregate_id: impl Into<String>,
        command_name: impl Into<String>,
        payload: String,
        recorded_at: DateTime<Utc>,
        metadata: Metadata,
    ) -> Self {
        let key = metadata.command_id.as_deref().unwrap_or_default();
        let event_id = Uuid::new_v5(&COMMAND_NAMESPACE, key.as_bytes());
        let topic = topic.into();
        Message {
            aggregate_type: topic.clone(),
            topic,
            key: aggregate_id.into(),
            event_id,
            event_type: command_name.into(),
            event_version: 1,
            sequence: 0,
            recorded_at,
            metadata,
            payload,
        }
    }

    /// The headers to send, in a fixed order.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            (headers::EVENT_ID, self.event_id.to_string()),
            (headers::EVENT_TYPE, self.event_type.clone()),
            (headers::EVENT_VERSION, self.event_version.to_string()),
            (headers::AGGREGATE_TYPE, self.aggregate_type.clone()),
            (headers::AGGREGATE_ID, self.key.clone()),
            (headers::SEQUENCE, self.sequence.to_string()),
            (headers::RECORDED_AT, self.recorded_at.to_rfc3339()),
            (headers::CONTENT_TYPE, "application/json".to_owned()),
        ];
        if let Some(id) = self.metadata.correlation_id {
            out.push((headers::CORRELATION_ID, id.to_string()));
        }
        if let Some(id) = self.metadata.causation_id {
            out.push((headers::CAUSATION_ID, id.to_string()));
        }
        if let Some(key) = &self.metadata.command_id {
            out.push((headers::COMMAND_ID, key.clone()));
        }
        // The trace context goes in the headers tracing tools read.
        let mut extra = self.metadata.extra.clone();
        for name in [headers::TRACEPARENT, headers::TRACESTATE] {
            if let Some(value) = extra.remove(name) {
                out.push((name, value));
            }
        }
        if !extra.is_empty() {
            // A map of strings always serializes.
            let extra = serde_json::to_string(&extra).unwrap_or_default();
            out.push((headers::METADATA, extra));
        }
        out
    }

    /// Reads a message back from what a broker delivered. `header` looks a header up by name.
    ///
    /// Fails with [`BusError::Malformed`], naming the header, if one is missing or does not
    /// parse: such a message was not written by a [`Relay`].
    pub fn from_headers<'h>(
        topic: &str,
        header: impl Fn(&str) -> Option<&'h str>,
        payload: &[u8],
    ) -> Result<Self, BusError> {
        let required = |name: &'static str| {
            header(name).ok_or_else(|| BusError::malformed(topic, format!("no `{name}` header")))
        };
        fn parse<T: FromStr>(topic: &str, name: &'static str, value: &str) -> Result<T, BusError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e| {
                BusError::malformed(topic, format!("header `{name}` = `{value}`: {e}"))
            })
        }
        let optional_id = |name: &'static str| -> Result<Option<Uuid>, BusError> {
            header(name).map(|v| parse(topic, name, v)).transpose()
        };
        let mut extra: BTreeMap<String, String> = match header(headers::METADATA) {
            Some(json) => serde_json::from_str(json).map_err(|e| {
                BusError::malformed(topic, format!("header `{}`: {e}", headers::METADATA))
            })?,
            None => BTreeMap::new(),
        };
        for name in [headers::TRACEPARENT, headers::TRACESTATE] {
            if let Some(value) = header(name) {
                extra.insert(name.to_owned(), value.to_owned());
            }
        }
        let payload = std::str::from_utf8(payload)
            .map_err(|e| BusError::malformed(topic, format!("the payload is not UTF-8: {e}")))?;
        let recorded_at = required(headers::RECORDED_AT)?;
        Ok(Message {
            topic: topic.to_owned(),
            key: required(headers::AGGREGATE_ID)?.to_owned(),
            event_id: parse(topic, headers::EVENT_ID, required(headers::EVENT_ID)?)?,
            event_type: required(headers::EVENT_TYPE)?.to_owned(),
            event_version: parse(
                topic,
                headers::EVENT_VERSION,
                required(headers::EVENT_VERSION)?,
            )?,
            aggregate_type: required(headers::AGGREGATE_TYPE)?.to_owned(),
            sequence: parse(topic, headers::SEQUENCE, required(headers::SEQUENCE)?)?,
            recorded_at: DateTime::parse_from_rfc3339(recorded_at)
                .map_err(|e| {
                    BusError::malformed(
                        topic,
                        format!("header `{}` = `{recorded_at}`: {e}", headers::RECORDED_AT),
                    )
                })?
                .with_timezone(&Utc),
            metadata: Metadata {
                correlation_id: optional_id(headers::CORRELATION_ID)?,
                causation_id: optional_id(headers::CAUSATION_ID)?,
                command_id: header(headers::COMMAND_ID).map(str::to_owned),
                extra,
            },
            payload: payload.to_owned(),
        })
    }

    /// Decodes the payload as `E`, through `E`'s upcasters (so an older version of a public
    /// event still reads).
    pub fn decode<E: DomainEvent>(&self) -> Result<E, DecodeError> {
        E::decode(&self.event_type, self.event_version, &self.payload)
    }

    /// The message as a stored event, for handlers written for the log (projections). The
    /// position is the start: positions belong to the producing service's store.
    pub fn to_stored(&self) -> StoredEvent {
        StoredEvent {
            aggregate_type: self.aggregate_type.clone(),
            aggregate_id: self.key.clone(),
            sequence: self.sequence,
            position: LogPosition::START,
            event_id: self.event_id,
            event_type: self.event_type.clone(),
            event_version: self.event_version,
            recorded_at: self.recorded_at,
            metadata: self.metadata.clone(),
            event: self.payload.clone(),
        }
    }
}

/// The namespace of the ids of command messages ([`Message::command`]).
const COMMAND_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a9e_4b7d_4e0f_9a53_c8d2_17e4_b6a1);

/// The default topic (Kafka) or stream (NATS) name of an aggregate type: its type name in
/// kebab-case, e.g. `bank_account` → `bank-account`.
pub fn default_topic(aggregate_type: &str) -> String {
    heck::ToKebabCase::to_kebab_case(aggregate_type)
}

/// The broker side of a [`Relay`]: sends batches and waits until the broker stored them.
pub trait Publisher: Send + 'static {
    /// Publishes `messages` and returns once the broker acknowledged every one of them.
    ///
    /// On error, any part of the batch may have been stored, and the relay publishes the whole
    /// batch again. Implementations must keep per-key order: a message must never be stored
    /// while an earlier message of the same key (in this batch or an earlier one) is not.
    fn publish(
        &mut self,
        messages: &[Message],
    ) -> impl Future<Output = Result<(), BusError>> + Send;
}

/// A delivered message, or why it is not one (a message without a relay's headers), with the
/// receipt that acknowledges it.
pub type Delivery<R> = (Result<Message, BusError>, R);

/// A received message and how to acknowledge it.
pub trait Source: Send + 'static {
    /// What acknowledges one delivered message.
    type Receipt: Send;

    /// Waits for the next message. A message that is not a relay's (missing headers) comes
    /// back as `Ok((Err(malformed), receipt))`, so that it can be dead-lettered.
    ///
    /// Must be cancel-safe: subscribers and process runners wait on it beside other things
    /// (a shutdown, the log), and drop it when those come first; a message it had not
    /// returned yet must then come from the next call.
    fn next(&mut self) -> impl Future<Output = Result<Delivery<Self::Receipt>, BusError>> + Send;

    /// The next message if one is already here, without waiting: what lets a [`Subscriber`]
    /// with [`batch`](Subscriber::batch) apply several messages in one transaction. The
    /// default has none ready, so that every message is a batch of its own.
    fn try_next(
        &mut self,
    ) -> impl Future<Output = Result<Option<Delivery<Self::Receipt>>, BusError>> + Send {
        async { Ok(None) }
    }

    /// Acknowledges a message: it is not delivered to this consumer again.
    fn ack(&mut self, receipt: Self::Receipt) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Publishes a message that cannot be processed to the dead-letter topic or subject of
    /// its topic, with the error, and waits for the broker's acknowledgement.
    fn dead_letter(
        &mut self,
        receipt: &Self::Receipt,
        letter: &DeadLetter,
    ) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Stops consuming and waits until the broker knows: a Kafka consumer commits what was
    /// acknowledged and leaves its group, so that the partitions go to the other members at
    /// once rather than when the broker gives up on this one. Dropping a source closes it too,
    /// in the background; `close` is for a shutdown that should finish before its successor
    /// starts. The default does nothing (a NATS durable consumer has nothing to leave).
    fn close(&mut self) -> impl Future<Output = Result<(), BusError>> + Send {
        async { Ok(()) }
    }
}

/// Why a broker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker refused, timed out or is unreachable. Retried with backoff.
    #[error("the broker failed: {0}")]
    Broker(#[source] BoxError),
    /// A delivered message lacks what a relay writes.
    #[error("malformed message on `{topic}`: {reason}")]
    Malformed {
        /// Where it was received.
        topic: String,
        /// What is wrong.
        reason: String,
    },
    /// The configuration is invalid (a topic name, a URL).
    #[error("invalid bus configuration: {0}")]
    Config(String),
}

impl BusError {
    /// A broker failure.
    pub fn broker(error: impl Into<BoxError>) -> Self {
        BusError::Broker(error.into())
    }

    fn malformed(topic: &str, reason: String) -> Self {
        BusError::Malformed {
            topic: topic.to_owned(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            topic: "bank-account".into(),
            key: "acc-1".into(),
            event_id: Uuid::now_v7(),
            event_type: "MoneyDeposited".into(),
            event_version: 2,
            aggregate_type: "bank_account".into(),
            sequence: 7,
            recorded_at: DateTime::parse_from_rfc3339("2026-11-27T10:00:00.123456Z")
                .unwrap()
                .with_timezone(&Utc),
            metadata: Metadata::correlated(Uuid::now_v7())
                .caused_by(Uuid::now_v7())
                .command_id("transfers/t-1/0c8e/1")
                .with("user", "ada"),
            payload: r#"{"amount":5}"#.into(),
        }
    }

    #[test]
    fn headers_round_trip() {
        let sent = message();
        let headers = sent.headers();
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        let back = Message::from_headers("bank-account", find, sent.payload.as_bytes()).unwrap();
        assert_eq!(back, sent);
    }

    #[test]
    fn the_trace_context_travels_in_its_own_headers() {
        let mut sent = message();
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        sent.metadata = sent
            .metadata
            .with(headers::TRACEPARENT, parent)
            .with(headers::TRACESTATE, "vendor=1");
        let headers = sent.headers();
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(find(headers::TRACEPARENT), Some(parent));
        assert_eq!(find(headers::TRACESTATE), Some("vendor=1"));
        assert_eq!(find(headers::METADATA), Some(r#"{"user":"ada"}"#));
        let back = Message::from_headers("bank-account", find, sent.payload.as_bytes()).unwrap();
        assert_eq!(back.metadata.traceparent(), Some(parent));
        assert_eq!(back, sent);
    }

    #[test]
    fn a_missing_or_bad_header_is_named() {
        let sent = message();
        let mut sent_headers = sent.headers();
        sent_headers.retain(|(name, _)| *name != headers::SEQUENCE);
        let find = |name: &str| {
            sent_headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        let error = Message::from_headers("t", find, b"{}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "malformed message on `t`: no `sequence` header"
        );

        let bad = |name: &str| match name {
            headers::SEQUENCE => Some("seven"),
            _ => find(name),
        };
        let error = Message::from_headers("t", bad, b"{}").unwrap_err();
        assert!(
            error.to_string().contains("header `sequence` = `seven`"),
            "{error}"
        );
    }

    #[test]
    fn a_command_message_has_an_id_of_its_key() {
        let at = Utc::now();
        let key = |k: &str| Metadata::default().command_id(k);
        let first = Message::command("t", "acc-1", "Deposit", "{}".into(), at, key("m/i/c/0"));
        let again = Message::command("t", "acc-1", "Deposit", "{}".into(), at, key("m/i/c/0"));
        let other = Message::command("t", "acc-1", "Deposit", "{}".into(), at, key("m/i/c/1"));
        assert_eq!(first.event_id, again.event_id);
        assert_ne!(first.event_id, other.event_id);
        let headers = first.headers();
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(find(headers::COMMAND_ID), Some("m/i/c/0"));
    }

    #[test]
    fn default_topics_are_kebab_case() {
        assert_eq!(default_topic("bank_account"), "bank-account");
        assert_eq!(default_topic("BankAccount"), "bank-account");
        assert_eq!(default_topic("order"), "order");
    }
}
