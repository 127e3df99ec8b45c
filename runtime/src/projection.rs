//! Projections: read models derived from the global log, kept up to date by a checkpointed
//! runner ([`Projector`]).
//!
//! The contract:
//! - A projection ([`Projection`] + [`ProjectionHandlers`], written with `#[projection]`) turns
//!   events of the aggregates it follows into a read model. Its handlers get each event with its
//!   envelope, and, when the read model lives in a database, the open transaction.
//! - A [`ProjectionTarget`] is where the read model and the projection's checkpoint live. When
//!   both are in one database transaction (the SQLite and PostgreSQL targets), each event takes
//!   effect exactly once: the checkpoint moves in the transaction that applied the events, and
//!   only if it is still where the runner read it (another runner that moved it fences this
//!   one off). When the read model lives elsewhere, delivery is at least once and handlers
//!   make themselves idempotent with the envelope's ids.
//! - The runner never skips an event: a handler error stops the projection before the event,
//!   retries it, or parks it in a dead-letter table to be listed and replayed
//!   ([`PoisonPolicy`]); never a silent skip.
//! - Versions build side by side: a checkpoint belongs to a projection's name and version, and
//!   a new version that caught up becomes the active one ([`Versions::active_version`]),
//!   which stops the runners of older versions.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use uuid::Uuid;

use crate::contract::error::{BoxError, StoreError};
use crate::contract::event::{LogPosition, StoredEvent};

pub(crate) mod follower;
mod inline;
mod lease;
mod memory;
mod runner;
mod target;

pub use inline::{InlineProjection, InlineProjections};
pub use memory::{MemoryLease, MemoryTarget};
pub use runner::{CatchUp, Progress, Projector, Stopped};
pub use target::{
    Advance, Checkpoints, CommitError, DeadLetters, DueDeadline, FollowerId, Inbox, InstanceChange,
    Instances, Leases, ParkedEvent, ProcessTarget, ProjectionTarget, StoredInstance, Versions,
};

/// A read model's identity: what its checkpoint, lease and dead letters are stored under.
///
/// Implemented by `#[projection]`; see [`ProjectionHandlers`] for the routing.
pub trait Projection: Send + 'static {
    /// A stable name, e.g. `"account-summaries"`. Renaming it starts a new projection.
    const NAME: &'static str;
    /// The version of the read model's shape. A new version builds its own read model side by
    /// side with the old one, from position 0, and takes over once it has caught up.
    const VERSION: u32;
    /// The aggregate types whose events it reads; others are skipped without decoding.
    const AGGREGATES: &'static [&'static str];

    /// The name and version, as stored.
    fn id() -> ProjectionId {
        ProjectionId {
            name: Self::NAME,
            version: Self::VERSION,
        }
    }
}

/// The routing of a projection's events to its handlers, for handlers that run with a
/// connection of type `C` (a projection whose handlers take no connection runs with any).
pub trait ProjectionHandlers<C: Send>: Projection {
    /// Whether the projection has a `reset` handler (marked `#[reset]`), so that it can be
    /// rebuilt and is set up on its first run.
    const CAN_RESET: bool;

    /// Whether a handler takes a batch (`&[(Payload, &StoredEvent)]` or `&[StoredEvent]`):
    /// then the runner hands each batch to [`handle_batch`](Self::handle_batch) at once.
    const BATCHED: bool = false;

    /// Decodes `event` (through its upcasters) and runs the handlers of its type, if any (a
    /// batch handler with a batch of this one event). An event this projection has no handler
    /// for is skipped with `Ok`.
    fn handle<'a>(
        &'a mut self,
        event: &'a StoredEvent,
        conn: &'a mut C,
    ) -> impl Future<Output = Result<(), BoxError>> + Send + 'a;

    /// Runs the handlers over a batch of events, in one transaction of the target: the
    /// per-event handlers event by event, then each batch handler once, with every event of
    /// its type in the batch (or the whole batch), in log order. An error fails the whole
    /// batch: the runner then applies it again event by event to find the event that fails.
    /// The default runs [`handle`](Self::handle) for each event.
    fn handle_batch<'a>(
        &'a mut self,
        events: &'a [StoredEvent],
        conn: &'a mut C,
    ) -> impl Future<Output = Result<(), BoxError>> + Send + 'a {
        async move {
            for event in events {
                self.handle(event, conn).await?;
            }
            Ok(())
        }
    }

    /// Empties the read model, creating it if needed. Runs before the first event, and at the
    /// start of a rebuild, in the transaction that sets the checkpoint to the start.
    fn reset<'a>(
        &'a mut self,
        conn: &'a mut C,
    ) -> impl Future<Output = Result<(), BoxError>> + Send + 'a;
}

/// A projection's name and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectionId {
    /// See [`Projection::NAME`].
    pub name: &'static str,
    /// See [`Projection::VERSION`].
    pub version: u32,
}

impl fmt::Display for ProjectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} v{}", self.name, self.version)
    }
}

/// What the runner does with an event whose handler fails (or that does not decode).
///
/// ```
/// use std::time::Duration;
/// use cqrs_runtime::projection::PoisonPolicy;
///
/// // Three more tries, 100 ms apart then doubling, then into the dead-letter table.
/// let policy = PoisonPolicy::retry(3, Duration::from_millis(100)).then_park();
/// assert_eq!(policy.retries(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoisonPolicy {
    retries: u32,
    backoff: Duration,
    max_backoff: Duration,
    park: bool,
}

impl Default for PoisonPolicy {
    fn default() -> Self {
        PoisonPolicy::stop()
    }
}

impl PoisonPolicy {
    /// Stop the projection with an error naming the event; its checkpoint stays before it.
    /// The default.
    pub fn stop() -> Self {
        PoisonPolicy {
            retries: 0,
            backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
            park: false,
        }
    }

    /// Park the event in the dead-letter table and go on with the next one.
    pub fn park() -> Self {
        PoisonPolicy {
            park: true,
            ..PoisonPolicy::stop()
        }
    }

    /// Run the handler up to `retries` more times, waiting `backoff` before the first retry
    /// and twice as long before each next one (at most 30 s by default), then stop.
    pub fn retry(retries: u32, backoff: Duration) -> Self {
        PoisonPolicy {
            retries,
            backoff,
            max_backoff: Duration::from_secs(30),
            park: false,
        }
    }

    /// After the retries, park the event instead of stopping.
    pub fn then_park(mut self) -> Self {
        self.park = true;
        self
    }

    /// The longest wait between two retries.
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// How many times a failed event is run again.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Whether an event that still fails is parked (or stops the projection).
    pub fn parks(&self) -> bool {
        self.park
    }

    /// The wait before retry number `retry` (1-based).
    pub(crate) fn delay(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// Names one stored event in an error: type, version, stream, sequence, position and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    /// The aggregate type.
    pub aggregate_type: String,
    /// The aggregate id.
    pub aggregate_id: String,
    /// Its sequence in the stream.
    pub sequence: u64,
    /// Its place in the log.
    pub position: LogPosition,
    /// Its stored type name.
    pub event_type: String,
    /// Its stored version.
    pub event_version: u32,
    /// Its id.
    pub event_id: Uuid,
}

impl EventRef {
    /// The reference of a stored event.
    pub fn of(event: &StoredEvent) -> Self {
        EventRef {
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            position: event.position,
            event_type: event.event_type.clone(),
            event_version: event.event_version,
            event_id: event.event_id,
        }
    }
}

impl fmt::Display for EventRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event `{}` v{} #{} of {} `{}` (log position {}, id {})",
            self.event_type,
            self.event_version,
            self.sequence,
            self.aggregate_type,
            self.aggregate_id,
            self.position.event,
            self.event_id
        )
    }
}

/// Why a projection stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// A handler failed (or the event did not decode) and the policy said stop. The checkpoint
    /// is just before the event; fix the handler (or the data's upcaster) and run again, or
    /// choose [`PoisonPolicy::park`].
    #[error("projection `{projection}` stopped at {event} after {attempts} attempt(s): {source}")]
    Handler {
        /// The projection.
        projection: ProjectionId,
        /// The event it could not apply.
        event: EventRef,
        /// How many times the handler ran.
        attempts: u32,
        /// The last error.
        #[source]
        source: BoxError,
    },
    /// Another runner moved the checkpoint; this one stopped so that no event applies twice.
    #[error("projection `{0}` is being run by another runner; this one stopped applying events")]
    Fenced(ProjectionId),
    /// A rebuild was asked of a projection without a `#[reset]` handler.
    #[error(
        "projection `{0}` cannot be rebuilt: it has no `#[reset]` handler to empty its read model; add one, or bump its version to build a new read model beside the old one"
    )]
    NoReset(ProjectionId),
    /// The `reset` handler failed.
    #[error("the reset handler of projection `{projection}` failed: {source}")]
    Reset {
        /// The projection.
        projection: ProjectionId,
        /// The handler's error.
        #[source]
        source: BoxError,
    },
    /// A replay named an event that is not parked.
    #[error("event {event_id} is not parked for projection `{projection}`")]
    NotParked {
        /// The projection.
        projection: ProjectionId,
        /// The event id asked for.
        event_id: Uuid,
    },
    /// The store or the target failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CommitError> for ProjectionError {
    fn from(error: CommitError) -> Self {
        match error {
            CommitError::Moved(follower) => {
                let (name, version) = follower.key();
                ProjectionError::Fenced(ProjectionId { name, version })
            }
            CommitError::Store(error) => ProjectionError::Store(error),
        }
    }
}
