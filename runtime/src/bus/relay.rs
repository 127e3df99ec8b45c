//! The outbox relay: follows the global log from its own checkpoint and publishes what the
//! [`Outbox`] selects, moving the checkpoint only after the broker acknowledged the batch.

use std::future::Future;
use std::time::Duration;

use futures::FutureExt;
use tracing::Instrument;
use uuid::Uuid;

use super::{BusError, Message, Outbox, Publisher};
use crate::contract::error::StoreError;
use crate::contract::event::LogPosition;
use crate::contract::store::EventStore;
use crate::observe::metrics::{self, Lag};
use crate::projection::follower::{Batch, Follow, Follower, Idle, Shutdown, follow_settings};
use crate::projection::{Advance, Checkpoints, CommitError, FollowerId, Leases};

/// Publishes committed events to a broker: at least once, in order per aggregate, in batches,
/// retrying with backoff while the broker is down.
///
/// The relay reads the store's global log, which holds only committed events and never skips
/// one that committed late, so nothing is published that did not commit and nothing committed
/// is left out. Its checkpoint lives in a [`Checkpoints`] target (the store's own database for
/// SQLite and PostgreSQL) under its name, and moves only after the broker acknowledged every
/// message of a batch; after a crash the unacknowledged batch is published again, and the
/// consumers' idempotency absorbs the duplicates. Like a projection runner, it takes its
/// target's lease, so that one relay publishes while the others of a service stand by.
///
/// ```
/// use cqrs_runtime::bus::memory::MemoryBroker;
/// use cqrs_runtime::bus::{Outbox, Relay};
/// use cqrs_runtime::doc_support::{Counter, CounterCommand};
/// use cqrs_runtime::projection::MemoryTarget;
/// use cqrs_runtime::{InMemoryStore, Repository};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = InMemoryStore::new();
/// let repo = Repository::<Counter, _>::new(store.clone());
/// repo.execute(&"c-1".to_owned(), CounterCommand::Add(5)).await.unwrap();
///
/// let broker = MemoryBroker::new();
/// let outbox = Outbox::new().domain_events::<Counter>();
/// let mut relay = Relay::new(store, MemoryTarget::new(), outbox, broker.publisher());
/// let progress = relay.catch_up().await.unwrap();
/// assert_eq!(progress.published, 1);
/// assert_eq!(broker.messages("counter")[0].key, "c-1");
/// # });
/// ```
#[derive(Debug)]
pub struct Relay<S, T: Leases, P> {
    follow: Follow<S, T>,
    core: Core<P>,
}

/// What the relay does per batch: the [`Follower`] the leased-follower driver runs.
#[derive(Debug)]
struct Core<P> {
    outbox: Outbox,
    /// The outbox's aggregate types, the only ones the relay reads.
    types: Vec<&'static str>,
    publisher: P,
    name: &'static str,
    /// Since the start of the current `run` or `catch_up`.
    progress: RelayProgress,
}

/// How far a relay got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayProgress {
    /// Events read from the log.
    pub read: u64,
    /// Messages published (acknowledged by the broker).
    pub published: u64,
    /// The checkpoint at the end.
    pub checkpoint: LogPosition,
}

/// Why a relay stopped. Broker failures are not among them: those are retried.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Another relay of the same name moved the checkpoint: this one stopped publishing.
    #[error("outbox relay `{0}` is being run by another process; this one stopped publishing")]
    Fenced(&'static str),
    /// The store or the target failed, or an event could not be turned into a message (an
    /// integration mapping's decode or encode). The checkpoint stays before that event.
    #[error("outbox relay `{relay}` stopped: {source}")]
    Store {
        /// The relay's name.
        relay: &'static str,
        /// What failed.
        #[source]
        source: StoreError,
    },
    /// The broker configuration is wrong (not a passing failure).
    #[error("outbox relay `{relay}` cannot publish: {source}")]
    Bus {
        /// The relay's name.
        relay: &'static str,
        /// What the broker client said.
        #[source]
        source: BusError,
    },
}

impl<S, T, P> Relay<S, T, P>
where
    S: EventStore,
    T: Checkpoints + Leases,
    P: Publisher,
{
    /// A relay named `"outbox"` that publishes what `outbox` selects from `store`'s log
    /// through `publisher`, with its checkpoint and lease in `target`. Defaults: batches of
    /// 1,000 events, a poll every second, backoff from 100 ms doubling to 30 s, leases of 30 s.
    pub fn new(store: S, target: T, outbox: Outbox, publisher: P) -> Self {
        Relay {
            follow: Follow::new(store, target, 1000),
            core: Core {
                types: outbox.aggregate_types(),
                outbox,
                publisher,
                name: "outbox",
                progress: RelayProgress::default(),
            },
        }
    }

    /// The name its checkpoint and lease are stored under (`"outbox"` by default); give each
    /// relay of a store its own name, and none the name of a projection.
    pub fn name(mut self, name: &'static str) -> Self {
        self.core.name = name;
        self
    }

    follow_settings!("relay");

    /// The wait after a failed publish, doubling after each further failure up to `max`.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.follow.backoff = first;
        self.follow.max_backoff = max.max(first);
        self
    }

    /// The publisher.
    pub fn publisher(&self) -> &P {
        &self.core.publisher
    }

    /// Where the relay's checkpoint is: the last event it published or passed over.
    pub async fn checkpoint(&self) -> Result<LogPosition, RelayError> {
        let checkpoint = self.follow.target.checkpoint(self.core.id()).await;
        Ok(checkpoint
            .map_err(|e| self.core.store_error(e))?
            .unwrap_or_default())
    }

    /// Publishes everything the log holds now, then returns, giving up the lease. Fails with
    /// [`RelayError::Fenced`] if another relay of the same name runs.
    pub async fn catch_up(&mut self) -> Result<RelayProgress, RelayError> {
        self.core.progress = RelayProgress::default();
        let result = self.follow.catch_up(&mut self.core, |_, _| {}).await;
        self.follow.release().await;
        result.map(|_| self.core.progress)
    }

    /// Publishes until `shutdown` completes (checked between batches and during backoff, so an
    /// acknowledged batch always moves the checkpoint). Stands by while another relay of the
    /// same name runs.
    pub async fn run(
        &mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<RelayProgress, RelayError> {
        self.core.progress = RelayProgress::default();
        self.follow.run(&mut self.core, shutdown).await
    }
}

impl<S, T, P> Follower<S, T> for Core<P>
where
    S: EventStore,
    T: Checkpoints + Leases,
    P: Publisher,
{
    type Stop = RelayProgress;
    type Error = RelayError;

    fn id(&self) -> FollowerId {
        self.id()
    }

    fn fenced(&self) -> RelayError {
        RelayError::Fenced(self.name)
    }

    fn is_fenced(error: &RelayError) -> bool {
        matches!(error, RelayError::Fenced(_))
    }

    fn store_error(&self, source: StoreError) -> RelayError {
        self.store_error(source)
    }

    fn shut_down(&mut self) -> RelayProgress {
        self.progress
    }

    fn record(&self, batch: Batch, lag: Lag) {
        metrics::record_batch(
            [
                metrics::RELAY_EVENTS,
                metrics::RELAY_LAG_EVENTS,
                metrics::RELAY_LAG_SECONDS,
            ],
            &[::metrics::Label::from_static_parts("relay", self.name)],
            batch.read,
            lag,
        );
    }

    /// The checkpoint to publish from; a relay that never ran starts at the log's start.
    async fn start(&mut self, follow: &mut Follow<S, T>) -> Result<LogPosition, RelayError> {
        let stored = follow.target.checkpoint(self.id()).await;
        let checkpoint = match stored.map_err(|e| self.store_error(e))? {
            Some(checkpoint) => checkpoint,
            None => {
                self.commit(&follow.target, None, LogPosition::START)
                    .await?;
                tracing::info!(relay = self.name, "first run: publishing from position 0");
                LogPosition::START
            }
        };
        self.progress.checkpoint = checkpoint;
        Ok(checkpoint)
    }

    /// Reads one batch after the checkpoint, publishes it (retrying until the broker takes
    /// it, or until `shutdown`), and moves the checkpoint. Returns how many events it read;
    /// on shutdown during backoff, 0 and the checkpoint stays.
    async fn step(
        &mut self,
        follow: &mut Follow<S, T>,
        at: &mut LogPosition,
        shutdown: &mut Shutdown<'_>,
    ) -> Result<Batch, RelayError> {
        let span = work_span!(
            "relay batch",
            relay.name = self.name,
            batch.from = %at,
            batch.events = tracing::field::Empty,
            "messaging.batch.message_count" = tracing::field::Empty,
            "messaging.destination.name" = tracing::field::Empty,
        );
        self.relay_batch(follow, at, shutdown, &span)
            .instrument(span.clone())
            .await
    }

    async fn idle(
        &mut self,
        _follow: &mut Follow<S, T>,
        _moment: Idle,
    ) -> Result<Option<RelayProgress>, RelayError> {
        Ok(None)
    }
}

impl<P: Publisher> Core<P> {
    /// The body of a relay's step, inside its span.
    async fn relay_batch<S, T>(
        &mut self,
        follow: &mut Follow<S, T>,
        at: &mut LogPosition,
        shutdown: &mut Shutdown<'_>,
        span: &tracing::Span,
    ) -> Result<Batch, RelayError>
    where
        S: EventStore,
        T: Checkpoints + Leases,
    {
        // Only the aggregate types that leave the service.
        let batch = follow
            .store
            .read_all_of(&self.types, *at, follow.batch_size)
            .await;
        let batch = batch.map_err(|e| self.store_error(e))?;
        let Some(last) = batch.last() else {
            return Ok(Batch::default());
        };
        let mut messages: Vec<Message> = Vec::with_capacity(batch.len());
        for event in &batch {
            let message = self
                .outbox
                .message(event)
                .map_err(|e| self.store_error(e))?;
            messages.extend(message);
        }
        span.record("batch.events", batch.len());
        span.record("messaging.batch.message_count", messages.len());
        if !span.is_disabled() {
            let mut topics: Vec<&str> = messages.iter().map(|m| m.topic.as_str()).collect();
            topics.sort_unstable();
            topics.dedup();
            span.record("messaging.destination.name", topics.join(","));
        }
        if !messages.is_empty() && !self.publish(follow, &messages, shutdown).await? {
            return Ok(Batch::default());
        }
        self.commit(&follow.target, Some(*at), last.position)
            .await?;
        *at = last.position;
        self.progress.read += batch.len() as u64;
        self.progress.published += messages.len() as u64;
        self.progress.checkpoint = last.position;
        Ok(Batch {
            read: batch.len(),
            newest: Some(last.recorded_at),
        })
    }

    fn id(&self) -> FollowerId {
        FollowerId::Relay(self.name)
    }

    fn store_error(&self, source: StoreError) -> RelayError {
        RelayError::Store {
            relay: self.name,
            source,
        }
    }

    /// Publishes until acknowledged (`true`), or until `shutdown` completes (`false`),
    /// keeping the lease through a long outage.
    async fn publish<S, T>(
        &mut self,
        follow: &mut Follow<S, T>,
        messages: &[Message],
        shutdown: &mut Shutdown<'_>,
    ) -> Result<bool, RelayError>
    where
        S: EventStore,
        T: Checkpoints + Leases,
    {
        let mut delay = follow.backoff;
        let mut failures = 0u32;
        loop {
            match self.publisher.publish(messages).await {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(
                            relay = self.name,
                            failures,
                            "the broker is back; published"
                        );
                    }
                    return Ok(true);
                }
                Err(error @ BusError::Broker(_)) => {
                    failures += 1;
                    tracing::warn!(relay = self.name, %error, failures, retry_in = ?delay, "publishing failed; retrying");
                }
                Err(source) => {
                    return Err(RelayError::Bus {
                        relay: self.name,
                        source,
                    });
                }
            }
            futures::select! {
                () = tokio::time::sleep(delay).fuse() => {}
                () = &mut *shutdown => return Ok(false),
            }
            delay = delay.saturating_mul(2).min(follow.max_backoff);
            // A long outage must not let the lease expire under a standby's feet.
            follow.require(self).await?;
        }
    }

    /// Moves the checkpoint from `from` to `to`, by compare-and-set.
    async fn commit<T: Checkpoints>(
        &mut self,
        target: &T,
        from: Option<LogPosition>,
        to: LogPosition,
    ) -> Result<(), RelayError> {
        let advance = Advance {
            follower: self.id(),
            from,
            to,
        };
        let tx = target.begin().await.map_err(|e| self.store_error(e))?;
        match target.commit(tx, Some(advance)).await {
            Ok(()) => Ok(()),
            Err(CommitError::Moved(_)) => Err(RelayError::Fenced(self.name)),
            Err(CommitError::Store(e)) => Err(self.store_error(e)),
        }
    }
}
