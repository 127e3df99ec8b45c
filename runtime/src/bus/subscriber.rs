//! The consuming side: messages from a broker feed a handler, each in one target transaction
//! that also records the event id, so that a redelivered message takes effect once.

use std::future::Future;
use std::pin::pin;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::FutureExt;
use tracing::Instrument;
use uuid::Uuid;

use ::metrics::counter;

use super::{BusError, DeadLetter, Delivery, Message, MessageHandler, Source};
use crate::contract::error::{BoxError, StoreError};
use crate::contract::trace;
use crate::observe::health::{Health, Probe, State};
use crate::observe::metrics;
use crate::projection::{CommitError, Inbox, PoisonPolicy};

/// Forgets the event ids `consumer` recorded in `target`'s inbox more than `keep` ago, when
/// `keep` is set and no pruning ran for `keep` (or an hour, if shorter) since `pruned_at`:
/// what subscribers and process runners with a source share. A failure is logged; the ids
/// stay until the next time.
pub(crate) async fn prune_inbox<T: Inbox>(
    target: &T,
    consumer: &str,
    keep: Option<Duration>,
    pruned_at: &mut Option<Instant>,
) {
    const AT_LEAST_EVERY: Duration = Duration::from_secs(3600);
    let Some(keep) = keep else {
        return;
    };
    if pruned_at.is_some_and(|at| at.elapsed() < keep.min(AT_LEAST_EVERY)) {
        return;
    }
    *pruned_at = Some(Instant::now());
    let Some(before) = chrono::TimeDelta::from_std(keep)
        .ok()
        .and_then(|keep| Utc::now().checked_sub_signed(keep))
    else {
        return;
    };
    match target.prune(consumer, before).await {
        Ok(0) => {}
        Ok(pruned) => {
            tracing::info!(consumer, pruned, %before, "forgot processed event ids");
        }
        Err(error) => {
            tracing::warn!(consumer, %error, "pruning the inbox failed; the ids stay");
        }
    }
}

/// How many messages a subscriber handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscriberStats {
    /// Applied and committed.
    pub processed: u64,
    /// Already processed before: acknowledged without applying.
    pub duplicates: u64,
    /// Sent to the dead-letter topic or subject.
    pub dead_lettered: u64,
    /// Target transactions committed with processed messages: fewer than `processed` when
    /// messages are applied in batches ([`Subscriber::batch`]).
    pub transactions: u64,
}

/// Why a subscriber stopped.
#[derive(Debug, thiserror::Error)]
pub enum SubscriberError {
    /// A handler kept failing and the policy says stop (not park). The message is not
    /// acknowledged, so it is delivered again when the subscriber restarts.
    #[error(
        "consumer `{consumer}` stopped at event {event_id} (`{event_type}` v{event_version} of {aggregate_type} `{aggregate_id}`) after {attempts} attempt(s): {source}"
    )]
    Handler {
        /// The consumer.
        consumer: String,
        /// The event id.
        event_id: Uuid,
        /// The event type.
        event_type: String,
        /// The event version.
        event_version: u32,
        /// The source aggregate type.
        aggregate_type: String,
        /// The source aggregate id.
        aggregate_id: String,
        /// How many times the handler ran.
        attempts: u32,
        /// The last error.
        #[source]
        source: BoxError,
    },
    /// The read model's database failed; the message is not acknowledged.
    #[error("consumer `{consumer}` stopped: {source}")]
    Store {
        /// The consumer.
        consumer: String,
        /// What failed.
        #[source]
        source: StoreError,
    },
    /// The broker configuration is wrong.
    #[error("consumer `{consumer}` cannot receive: {source}")]
    Bus {
        /// The consumer.
        consumer: String,
        /// What the broker client said.
        #[source]
        source: BusError,
    },
}

/// Feeds messages from a broker ([`Source`]) to a [`MessageHandler`], one target transaction
/// per message that also records its event id ([`Inbox`]): a redelivered message is
/// acknowledged and skipped, so each takes effect once. Messages are handled one at a time in
/// the order the broker delivers them, which keeps each aggregate's order. A message whose
/// handler keeps failing goes to the dead-letter topic or subject with its error, and the next
/// one is handled ([`PoisonPolicy`]; by default three retries from 100 ms, then dead letter).
#[derive(Debug)]
pub struct Subscriber<Src, T, H> {
    name: String,
    source: Src,
    target: T,
    handler: H,
    policy: PoisonPolicy,
    backoff: Duration,
    stats: SubscriberStats,
    /// How long processed ids are kept (`None`: forever), and when they were last pruned.
    keep_ids: Option<Duration>,
    pruned_at: Option<Instant>,
    /// The most messages applied in one transaction.
    batch: usize,
    /// Where it reports its state, if a service asked.
    probe: Option<Probe>,
}

/// What became of a message, for the stats and the metrics.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Handled,
    Duplicate,
    DeadLettered,
}

impl<Src: Source, T: Inbox, H: MessageHandler<T::Connection>> Subscriber<Src, T, H> {
    /// A subscriber named `name` (its processed ids are kept under it: keep it stable) that
    /// feeds `handler` from `source`, in transactions of `target`.
    pub fn new(name: impl Into<String>, source: Src, target: T, handler: H) -> Self {
        Subscriber {
            name: name.into(),
            source,
            target,
            handler,
            policy: PoisonPolicy::retry(3, Duration::from_millis(100)).then_park(),
            backoff: Duration::from_millis(200),
            stats: SubscriberStats::default(),
            keep_ids: None,
            pruned_at: None,
            batch: 1,
            probe: None,
        }
    }

    /// Reports this subscriber's state to `health` (see [`Health`]): live while it runs,
    /// stopped, or failed with its error.
    pub fn health(mut self, health: &Health) -> Self {
        self.probe = Some(health.probe("subscriber", self.name.clone()));
        self
    }

    /// Applies up to `max` messages in one target transaction: the first one the source
    /// delivers, and those already received behind it ([`Source::try_next`]; the Kafka and
    /// in-memory sources have them, a NATS consumer holds one message at a time). They are
    /// acknowledged in order once the transaction commits. Fewer commits make a consumer that
    /// is behind catch up faster.
    ///
    /// If a handler fails, the transaction rolls back and the batch is handled again one
    /// message at a time, with the retries and the dead letters of [`on_error`](Self::on_error).
    /// The messages before the failing one then run a second time. That is exact for effects
    /// made through the transaction's connection, but a handler that also keeps state in
    /// `self` (a counter in memory) would count them twice: give such handlers batches of 1,
    /// the default.
    pub fn batch(mut self, max: usize) -> Self {
        self.batch = max.max(1);
        self
    }

    /// Forgets processed event ids once they are `keep` old ([`Inbox::prune`]): when
    /// [`run`](Self::run) starts, then between messages once per `keep` (at least hourly).
    /// Without it the inbox keeps every id. A message delivered again after its id is
    /// forgotten is applied again: keep them longer than the broker may redeliver.
    pub fn keep_processed_ids(mut self, keep: Duration) -> Self {
        self.keep_ids = Some(keep);
        self
    }

    /// What to do with a message whose handler fails; [`PoisonPolicy::parks`] means the
    /// dead-letter topic or subject.
    pub fn on_error(mut self, policy: PoisonPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The handler (to read an in-memory model).
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The target.
    pub fn target(&self) -> &T {
        &self.target
    }

    /// What was handled so far.
    pub fn stats(&self) -> SubscriberStats {
        self.stats
    }

    /// Handles messages until `shutdown` completes (checked between messages).
    pub async fn run(
        &mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<SubscriberStats, SubscriberError> {
        self.set_state(|| State::Live);
        let result = self.receive_until(shutdown).await;
        match &result {
            Ok(_) => self.set_state(|| State::Stopped {
                why: "shut down".to_owned(),
            }),
            Err(error) => {
                // It handles nothing more: say so at once, with what stopped it.
                tracing::error!(consumer = %self.name, %error, "stopped on an error");
                self.set_state(|| State::Failed {
                    error: error.to_string(),
                });
            }
        }
        result
    }

    fn set_state(&self, state: impl FnOnce() -> State) {
        if let Some(probe) = &self.probe {
            probe.set(state());
        }
    }

    /// The body of [`run`](Self::run).
    async fn receive_until(
        &mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<SubscriberStats, SubscriberError> {
        let mut shutdown = pin!(shutdown.fuse());
        loop {
            self.prune_when_due().await;
            let first = futures::select! {
                next = self.receive().fuse() => next?,
                () = shutdown.as_mut() => return Ok(self.stats),
            };
            let mut batch = vec![first];
            while batch.len() < self.batch {
                match self.source.try_next().await {
                    Ok(Some(next)) => batch.push(next),
                    Ok(None) => break,
                    // Handled below as it is; the next receive waits the failure out.
                    Err(BusError::Broker(_)) => break,
                    Err(source) => return Err(self.bus_error(source)),
                }
            }
            self.process_batch(batch).await?;
        }
    }

    /// Closes the source ([`Source::close`]): after a [`run`](Self::run) that ended on
    /// `shutdown`, so that the next consumer of the group takes over without waiting for the
    /// broker to give up on this one. Waits for the broker, as long as it takes: wrap it in a
    /// timeout when the broker may be gone.
    pub async fn close(mut self) -> Result<SubscriberStats, SubscriberError> {
        match self.source.close().await {
            Ok(()) => Ok(self.stats),
            Err(source) => Err(self.bus_error(source)),
        }
    }

    /// Handles the next `count` messages, waiting for them; for tests and tools.
    pub async fn process_next(&mut self, count: usize) -> Result<SubscriberStats, SubscriberError> {
        for _ in 0..count {
            let (message, receipt) = self.receive().await?;
            self.process(message, receipt).await?;
        }
        Ok(self.stats)
    }

    /// The next message, waiting out broker failures (the clients reconnect by themselves).
    async fn receive(&mut self) -> Result<Delivery<Src::Receipt>, SubscriberError> {
        loop {
            match self.source.next().await {
                Ok(next) => return Ok(next),
                Err(BusError::Broker(error)) => {
                    tracing::warn!(consumer = %self.name, %error, "receiving failed; retrying");
                    tokio::time::sleep(self.backoff).await;
                }
                Err(source) => return Err(self.bus_error(source)),
            }
        }
    }

    /// Applies a batch in one transaction, or one message at a time when it holds a
    /// malformed message or a handler fails.
    async fn process_batch(
        &mut self,
        batch: Vec<Delivery<Src::Receipt>>,
    ) -> Result<(), SubscriberError> {
        if batch.len() > 1 && batch.iter().all(|(message, _)| message.is_ok()) {
            let messages: Vec<&Message> =
                batch.iter().filter_map(|(m, _)| m.as_ref().ok()).collect();
            let span = work_span!(
                "subscriber batch",
                consumer = %self.name,
                "messaging.batch.message_count" = messages.len(),
            );
            match self.apply(&messages, 1).instrument(span).await? {
                Ok(fresh) => {
                    for ((_, receipt), fresh) in batch.into_iter().zip(fresh) {
                        self.count(if fresh {
                            Outcome::Handled
                        } else {
                            Outcome::Duplicate
                        });
                        self.ack(receipt).await;
                    }
                    return Ok(());
                }
                Err(error) => {
                    tracing::warn!(consumer = %self.name, %error, "a handler failed in a batch; handling its messages one at a time");
                }
            }
        }
        for (message, receipt) in batch {
            self.process(message, receipt).await?;
        }
        Ok(())
    }

    async fn process(
        &mut self,
        message: Result<Message, BusError>,
        receipt: Src::Receipt,
    ) -> Result<(), SubscriberError> {
        let message = match message {
            Ok(message) => message,
            Err(malformed) => {
                tracing::warn!(consumer = %self.name, error = %malformed, "dead-lettering a malformed message");
                let letter = DeadLetter {
                    consumer: self.name.clone(),
                    error: malformed.to_string(),
                    attempts: 0,
                };
                return self.dead_letter(receipt, letter).await;
            }
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let error = match self
                .apply(&[&message], attempts)
                .await?
                .map(|fresh| fresh[0])
            {
                Ok(true) => {
                    self.count(Outcome::Handled);
                    break;
                }
                Ok(false) => {
                    self.count(Outcome::Duplicate);
                    break;
                }
                Err(error) => error,
            };
            tracing::warn!(consumer = %self.name, event_id = %message.event_id, attempts, %error, "a message handler failed");
            if attempts <= self.policy.retries() {
                tokio::time::sleep(self.policy.delay(attempts)).await;
                continue;
            }
            if !self.policy.parks() {
                return Err(SubscriberError::Handler {
                    consumer: self.name.clone(),
                    event_id: message.event_id,
                    event_type: message.event_type,
                    event_version: message.event_version,
                    aggregate_type: message.aggregate_type,
                    aggregate_id: message.key,
                    attempts,
                    source: error,
                });
            }
            let letter = DeadLetter {
                consumer: self.name.clone(),
                error: error.to_string(),
                attempts,
            };
            return self.dead_letter(receipt, letter).await;
        }
        self.ack(receipt).await;
        Ok(())
    }

    /// Applies `messages` in one transaction that records each event id: a message whose id
    /// is already recorded is skipped (`false` in the result). Commits unless all were
    /// duplicates; a handler's error rolls everything back.
    /// Each message is handled inside its own span (`attempt` is the how-manieth time it is).
    async fn apply(
        &mut self,
        messages: &[&Message],
        attempt: u32,
    ) -> Result<Result<Vec<bool>, BoxError>, SubscriberError> {
        let mut tx = self.target.begin().await.map_err(|e| self.store_error(e))?;
        let mut fresh = Vec::with_capacity(messages.len());
        for message in messages {
            let span = work_span!(
                "subscriber message",
                consumer = %self.name,
                "messaging.destination.name" = %message.topic,
                "messaging.message.id" = %message.event_id,
                attempt,
                outcome = tracing::field::Empty,
            );
            trace::continue_trace(&span, &message.metadata);
            let recorded = self
                .target
                .record(&mut tx, &self.name, message.event_id)
                .instrument(span.clone())
                .await;
            let new = match recorded {
                Ok(new) => new,
                Err(error) => {
                    self.target.rollback(tx).await;
                    return Err(self.store_error(error));
                }
            };
            if new {
                let handled = self.handler.handle(message, T::connection(&mut tx));
                if let Err(error) = handled.instrument(span.clone()).await {
                    span.record("outcome", "failed");
                    self.target.rollback(tx).await;
                    return Ok(Err(error));
                }
                span.record("outcome", "processed");
            } else {
                span.record("outcome", "duplicate");
                tracing::debug!(parent: &span, consumer = %self.name, event_id = %message.event_id, "skipping a duplicate");
            }
            fresh.push(new);
        }
        if !fresh.contains(&true) {
            self.target.rollback(tx).await;
            return Ok(Ok(fresh));
        }
        match self.target.commit(tx, None).await {
            Ok(()) => {
                self.stats.transactions += 1;
                Ok(Ok(fresh))
            }
            Err(CommitError::Store(e)) => Err(self.store_error(e)),
            // No checkpoint was asked to move.
            Err(CommitError::Moved(id)) => Err(self.store_error(StoreError::Corrupt(format!(
                "a commit without a checkpoint reported the checkpoint of `{id}` moved"
            )))),
        }
    }

    /// Counts a message's outcome in the stats and the metrics.
    fn count(&mut self, outcome: Outcome) {
        let (stat, label) = match outcome {
            Outcome::Handled => (&mut self.stats.processed, "handled"),
            Outcome::Duplicate => (&mut self.stats.duplicates, "duplicate"),
            Outcome::DeadLettered => (&mut self.stats.dead_lettered, "dead_lettered"),
        };
        *stat += 1;
        let name = self.name.clone();
        counter!(metrics::SUBSCRIBER_MESSAGES, "subscriber" => name.clone(), "outcome" => label)
            .increment(1);
        match outcome {
            Outcome::Handled => {}
            Outcome::Duplicate => {
                counter!(metrics::INBOX_DUPLICATES, "subscriber" => name).increment(1)
            }
            Outcome::DeadLettered => {
                counter!(metrics::DEAD_LETTERS, "follower" => name).increment(1)
            }
        }
    }

    /// Sends to the dead-letter topic (retrying while the broker is down), then acknowledges.
    async fn dead_letter(
        &mut self,
        receipt: Src::Receipt,
        letter: DeadLetter,
    ) -> Result<(), SubscriberError> {
        loop {
            match self.source.dead_letter(&receipt, &letter).await {
                Ok(()) => break,
                Err(BusError::Broker(error)) => {
                    tracing::warn!(consumer = %self.name, %error, "dead-lettering failed; retrying");
                    tokio::time::sleep(self.backoff).await;
                }
                Err(source) => return Err(self.bus_error(source)),
            }
        }
        tracing::warn!(consumer = %self.name, error = %letter.error, "sent a message to the dead letters");
        self.count(Outcome::DeadLettered);
        self.ack(receipt).await;
        Ok(())
    }

    /// Prunes the inbox if [`keep_processed_ids`](Self::keep_processed_ids) asks and it is
    /// time. A failure is logged and tried again at the next interval: the ids stay, so nothing
    /// is applied twice.
    async fn prune_when_due(&mut self) {
        prune_inbox(&self.target, &self.name, self.keep_ids, &mut self.pruned_at).await;
    }

    /// A lost acknowledgement only means a redelivery, which the inbox absorbs.
    async fn ack(&mut self, receipt: Src::Receipt) {
        if let Err(error) = self.source.ack(receipt).await {
            tracing::warn!(consumer = %self.name, %error, "acknowledging failed; the message will be delivered again and skipped");
        }
    }

    fn store_error(&self, source: StoreError) -> SubscriberError {
        SubscriberError::Store {
            consumer: self.name.clone(),
            source,
        }
    }

    fn bus_error(&self, source: BusError) -> SubscriberError {
        SubscriberError::Bus {
            consumer: self.name.clone(),
            source,
        }
    }
}
