//! NATS JetStream through async-nats: a publisher for the [`Relay`](super::Relay) and a
//! durable-consumer [`Source`] for the [`Subscriber`](super::Subscriber).
//!
//! A message's topic names a JetStream stream (created on first use, capturing
//! `<topic>.>`), and its subject is `<topic>.<aggregate id>`, with characters NATS reserves in
//! subjects escaped ([`subject`]). `Nats-Msg-Id` is the event id, so that the server drops a
//! duplicate published within the stream's duplicate window; the publisher awaits every
//! acknowledgement. A message is published only once the previous message of the same
//! aggregate was acknowledged (different aggregates' messages are in flight together, up to
//! 1,024), so a reconnect can never store an aggregate's events out of order.
//!
//! Dead letters go to the stream `<topic>-dead-letter`, subject
//! `<topic>-dead-letter.<aggregate id>`, with the original headers and payload plus the error
//! headers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::{BusError, DeadLetter, Delivery, Message, Publisher, Source, headers};

/// The subject of an aggregate's messages: `<topic>.<escaped aggregate id>`. Bytes NATS gives
/// a meaning in subjects (`.`, `*`, `>`, whitespace, and `%` itself) are written as `%XX`.
///
/// ```
/// use cqrs_runtime::bus::nats::subject;
///
/// assert_eq!(subject("bank-account", "acc-1"), "bank-account.acc-1");
/// assert_eq!(subject("order", "eu.42 *"), "order.eu%2E42%20%2A");
/// ```
pub fn subject(topic: &str, aggregate_id: &str) -> String {
    let mut out = String::with_capacity(topic.len() + 1 + aggregate_id.len());
    out.push_str(topic);
    out.push('.');
    for c in aggregate_id.chars() {
        if matches!(c, '.' | '*' | '>' | '%') || c.is_whitespace() || c.is_control() {
            let mut buf = [0; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if aggregate_id.is_empty() {
        out.push_str("%00");
    }
    out
}

/// How streams are made: shared by [`NatsPublisher`] and [`NatsSource`].
#[derive(Debug, Clone)]
pub struct NatsConfig {
    duplicate_window: Duration,
    replicas: usize,
    max_age: Duration,
    ack_wait: Duration,
    max_ack_pending: i64,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
            max_age: Duration::ZERO,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 1,
        }
    }
}

impl NatsConfig {
    /// Defaults: a 2-minute duplicate window, one replica, no age limit; consumers with one
    /// message in flight, redelivered after 30 s without an acknowledgement.
    pub fn new() -> Self {
        NatsConfig::default()
    }

    /// How long the server remembers message ids to drop duplicates.
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// Replicas of each stream created (in a clustered server).
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas.max(1);
        self
    }

    /// How long a stream keeps messages (zero: forever).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// How long a consumer's message may go unacknowledged before it is delivered again: the
    /// longest a restarted consumer waits for the message its predecessor held.
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }

    /// How many messages a consumer may hold unacknowledged (1 by default). Above 1, a consumer
    /// that stops holding messages gets them again only after [`ack_wait`](Self::ack_wait),
    /// after later ones: faster, but an aggregate's events may then arrive out of order.
    pub fn max_ack_pending(mut self, messages: i64) -> Self {
        self.max_ack_pending = messages.max(1);
        self
    }

    async fn ensure_stream(
        &self,
        js: &jetstream::Context,
        name: &str,
    ) -> Result<stream::Stream, BusError> {
        js.get_or_create_stream(stream::Config {
            name: name.to_owned(),
            subjects: vec![format!("{name}.>")],
            duplicate_window: self.duplicate_window,
            num_replicas: self.replicas,
            max_age: self.max_age,
            ..stream::Config::default()
        })
        .await
        .map_err(|e| BusError::broker(format!("cannot get or create stream `{name}`: {e}")))
    }
}

/// Publishes in flight at most, below async-nats's own limit (5,000) that holds publishes back.
const MAX_IN_FLIGHT: usize = 1024;

/// Publishes to JetStream, awaiting each acknowledgement.
#[derive(Debug)]
pub struct NatsPublisher {
    js: jetstream::Context,
    config: NatsConfig,
    streams: HashSet<String>,
}

impl NatsPublisher {
    /// A publisher over a connected client.
    pub fn new(client: async_nats::Client, config: NatsConfig) -> Self {
        NatsPublisher {
            js: jetstream::new(client),
            config,
            streams: HashSet::new(),
        }
    }

    /// Connects to `url` (retrying in the background while the server is down) and makes a
    /// publisher.
    pub async fn connect(url: &str, config: NatsConfig) -> Result<Self, BusError> {
        Ok(NatsPublisher::new(connect(url).await?, config))
    }
}

impl Publisher for NatsPublisher {
    async fn publish(&mut self, messages: &[Message]) -> Result<(), BusError> {
        for message in messages {
            if !self.streams.contains(&message.topic) {
                self.config.ensure_stream(&self.js, &message.topic).await?;
                self.streams.insert(message.topic.clone());
            }
        }
        // Each aggregate's messages, in order. An aggregate's next message goes out once its
        // previous one was acknowledged; different aggregates' messages are in flight together,
        // up to a window below the client's own limit (beyond it, the client holds publishes
        // back until acknowledgements are awaited).
        let mut queues: Vec<VecDeque<&Message>> = Vec::new();
        let mut index: HashMap<(&str, &str), usize> = HashMap::new();
        for message in messages {
            let slot = *index
                .entry((message.topic.as_str(), message.key.as_str()))
                .or_insert_with(|| {
                    queues.push(VecDeque::new());
                    queues.len() - 1
                });
            queues[slot].push_back(message);
        }
        let mut ready: VecDeque<usize> = (0..queues.len()).collect();
        let mut in_flight = FuturesUnordered::new();
        loop {
            while in_flight.len() < MAX_IN_FLIGHT {
                let Some(slot) = ready.pop_front() else { break };
                let Some(message) = queues[slot].pop_front() else {
                    continue;
                };
                let ack = self.send(message).await?;
                in_flight.push(async move { ack.await.map(|_| slot) });
            }
            match in_flight.next().await {
                None => return Ok(()),
                Some(acked) => {
                    let slot = acked.map_err(BusError::broker)?;
                    if !queues[slot].is_empty() {
                        ready.push_back(slot);
                    }
                }
            }
        }
    }
}

impl NatsPublisher {
    /// Publishes one message; the returned future resolves with the server's acknowledgement.
    async fn send(
        &self,
        message: &Message,
    ) -> Result<jetstream::context::PublishAckFuture, BusError> {
        let mut map = HeaderMap::new();
        map.insert("Nats-Msg-Id", message.event_id.to_string().as_str());
        for (name, value) in message.headers() {
            map.insert(name, value.as_str());
        }
        self.js
            .publish_with_headers(
                subject(&message.topic, &message.key),
                map,
                message.payload.clone().into(),
            )
            .await
            .map_err(BusError::broker)
    }
}

/// Consumes one stream through a durable pull consumer with explicit acknowledgements, in
/// stream order. The consumer's settings are fixed when it is first created.
pub struct NatsSource {
    js: jetstream::Context,
    config: NatsConfig,
    topic: String,
    messages: consumer::pull::Stream,
    dead_letter_stream: bool,
}

impl std::fmt::Debug for NatsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSource")
            .field("topic", &self.topic)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl NatsSource {
    /// Consumes `topic`'s stream (created if missing) as durable consumer `durable`, from the
    /// first message the consumer has not acknowledged. One message is in flight at a time
    /// (see [`NatsConfig::max_ack_pending`]), so each aggregate's events arrive in order even
    /// across restarts; a message not acknowledged within [`NatsConfig::ack_wait`] is
    /// delivered again.
    pub async fn new(
        client: async_nats::Client,
        config: NatsConfig,
        topic: &str,
        durable: &str,
    ) -> Result<Self, BusError> {
        let js = jetstream::new(client);
        let stream = config.ensure_stream(&js, topic).await?;
        let consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(
                durable,
                consumer::pull::Config {
                    durable_name: Some(durable.to_owned()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    deliver_policy: consumer::DeliverPolicy::All,
                    ack_wait: config.ack_wait,
                    max_ack_pending: config.max_ack_pending,
                    ..consumer::pull::Config::default()
                },
            )
            .await
            .map_err(|e| {
                BusError::broker(format!(
                    "cannot create consumer `{durable}` on `{topic}`: {e}"
                ))
            })?;
        let messages = consumer.messages().await.map_err(BusError::broker)?;
        Ok(NatsSource {
            js,
            config,
            topic: topic.to_owned(),
            messages,
            dead_letter_stream: false,
        })
    }
}

impl Source for NatsSource {
    type Receipt = jetstream::Message;

    async fn next(&mut self) -> Result<Delivery<jetstream::Message>, BusError> {
        let received = match self.messages.next().await {
            Some(received) => received.map_err(BusError::broker)?,
            None => return Err(BusError::broker("the NATS consumer's message stream ended")),
        };
        let message = {
            let found = received.headers.as_ref();
            let lookup = |name: &str| found.and_then(|h| h.get(name)).map(|v| v.as_str());
            Message::from_headers(&self.topic, lookup, &received.payload)
        };
        Ok((message, received))
    }

    async fn ack(&mut self, receipt: jetstream::Message) -> Result<(), BusError> {
        receipt.double_ack().await.map_err(BusError::broker)
    }

    async fn dead_letter(
        &mut self,
        receipt: &jetstream::Message,
        letter: &DeadLetter,
    ) -> Result<(), BusError> {
        let stream = format!("{}-dead-letter", self.topic);
        if !self.dead_letter_stream {
            self.config.ensure_stream(&self.js, &stream).await?;
            self.dead_letter_stream = true;
        }
        let mut map = HeaderMap::new();
        if let Some(original) = &receipt.headers {
            for (name, values) in original.iter() {
                let name: &str = name.as_ref();
                if name == "Nats-Msg-Id" || name.starts_with("dead-letter-") {
                    continue;
                }
                for value in values {
                    map.append(name, value.as_str());
                }
            }
        }
        map.insert(headers::ERROR, letter.error.as_str());
        map.insert(headers::CONSUMER, letter.consumer.as_str());
        map.insert(headers::ATTEMPTS, letter.attempts.to_string().as_str());
        map.insert(headers::SOURCE, receipt.subject.as_str());
        let tail = receipt
            .subject
            .as_str()
            .strip_prefix(&format!("{}.", self.topic))
            .unwrap_or("%00");
        let ack = self
            .js
            .publish_with_headers(format!("{stream}.{tail}"), map, receipt.payload.clone())
            .await
            .map_err(BusError::broker)?;
        ack.await.map_err(BusError::broker)?;
        Ok(())
    }
}

/// Connects to a NATS server, retrying in the background while it is down.
pub async fn connect(url: &str) -> Result<async_nats::Client, BusError> {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(url)
        .await
        .map_err(|e| BusError::Config(format!("cannot connect to NATS at `{url}`: {e}")))
}
