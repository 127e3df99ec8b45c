//! The runner: follows the global log from a projection's checkpoint, in batches, through one
//! target transaction per batch.

use std::future::Future;
use std::time::Duration;

use tracing::Instrument;
use uuid::Uuid;

use super::follower::{Batch, Follow, Follower, Idle, Shutdown, follow_settings};
use super::target::{FollowerId, ParkedEvent, ProjectionTarget};
use super::{EventRef, PoisonPolicy, ProjectionError, ProjectionHandlers, ProjectionId};
use crate::contract::error::StoreError;
use crate::contract::event::LogPosition;
use crate::contract::store::{EventStore, Wake};
use crate::observe::metrics::{self, Lag};
use apply::Slice;

mod apply;

/// Runs one projection: catch-up from its checkpoint, then live (woken by the store's commits,
/// polling as a fallback), a batch per transaction; rebuilds; dead letters.
///
/// Only one runner applies a projection's events at a time: a runner first takes the
/// projection's lease from the target (a PostgreSQL advisory lock, a lease row in SQLite, a
/// lock in the process for memory), and [`run`](Self::run) waits as a standby while another
/// runner holds it. Even without the lease, a commit only moves the checkpoint from where the
/// runner read it, so two runners can never both apply a batch.
///
/// ```
/// use cqrs_runtime::projection::{MemoryTarget, Projector};
/// use cqrs_runtime::doc_support::{Counted, Counter, CounterCommand};
/// use cqrs_runtime::{InMemoryStore, Repository};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = InMemoryStore::new();
/// let repo = Repository::<Counter, _>::new(store.clone());
/// repo.execute(&"c-1".to_owned(), CounterCommand::Add(5)).await.unwrap();
///
/// let counted = Counted::default();
/// let mut runner = Projector::new(store, MemoryTarget::new(), counted.clone());
/// runner.catch_up().await.unwrap();
/// assert_eq!(counted.total(), 5);
/// # });
/// ```
#[derive(Debug)]
pub struct Projector<S, T: ProjectionTarget, P> {
    follow: Follow<S, T>,
    core: Core<P>,
}

/// What the runner applies: the [`Follower`] the leased-follower driver runs.
#[derive(Debug)]
struct Core<P> {
    projection: P,
    policy: PoisonPolicy,
}

/// How far a catch-up went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    /// Events read from the log (handled or skipped).
    pub read: u64,
    /// The checkpoint at the end.
    pub checkpoint: LogPosition,
}

/// How far a rebuild is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Events read so far.
    pub read: u64,
    /// Events in the log when the rebuild started (more may come).
    pub total: u64,
    /// The checkpoint now.
    pub checkpoint: LogPosition,
}

/// Why [`Projector::run`] returned without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The shutdown future completed.
    Shutdown,
    /// A newer version of the projection caught up and is active now.
    Superseded {
        /// The active version.
        active: u32,
    },
}

impl<S, T, P> Projector<S, T, P>
where
    S: EventStore,
    T: ProjectionTarget,
    P: ProjectionHandlers<T::Connection>,
{
    /// A runner of `projection`, reading `store`'s log into `target`. Defaults: batches of
    /// 500 events, a poll every second, [`PoisonPolicy::stop`], leases of 30 s.
    pub fn new(store: S, target: T, projection: P) -> Self {
        Projector {
            follow: Follow::new(store, target, 500),
            core: Core {
                projection,
                policy: PoisonPolicy::stop(),
            },
        }
    }

    follow_settings!("runner");

    /// What to do when a handler fails.
    pub fn on_error(mut self, policy: PoisonPolicy) -> Self {
        self.core.policy = policy;
        self
    }

    /// The projection (to read an in-memory model, or its configuration).
    pub fn projection(&self) -> &P {
        &self.core.projection
    }

    /// The target.
    pub fn target(&self) -> &T {
        &self.follow.target
    }

    /// The projection's name and version.
    pub fn id(&self) -> ProjectionId {
        P::id()
    }

    /// Applies everything the log holds now, then returns, giving up the lease. Fails with
    /// [`ProjectionError::Fenced`] if another runner holds the projection.
    pub async fn catch_up(&mut self) -> Result<CatchUp, ProjectionError> {
        let result = self.follow.catch_up(&mut self.core, |_, _| {}).await;
        self.follow.release().await;
        let (read, checkpoint) = result?;
        Ok(CatchUp { read, checkpoint })
    }

    /// Follows the log until `shutdown` completes (checked between batches, so a batch is never
    /// cut short) or a newer version takes over. Waits as a standby while another runner holds
    /// the projection.
    pub async fn run(
        &mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<Stopped, ProjectionError> {
        self.follow.run(&mut self.core, shutdown).await
    }

    /// Empties the read model (the `#[reset]` handler) and replays the whole log into it,
    /// reporting progress after each batch to `progress` and as `tracing` events.
    pub async fn rebuild(
        &mut self,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<CatchUp, ProjectionError> {
        let result = self.rebuild_held(progress).await;
        self.release().await;
        result
    }

    async fn rebuild_held(
        &mut self,
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<CatchUp, ProjectionError> {
        if !P::CAN_RESET {
            return Err(ProjectionError::NoReset(self.id()));
        }
        self.follow.require(&mut self.core).await?;
        let id = self.id();
        let follow = &mut self.follow;
        let mut tx = follow.target.begin().await?;
        follow.target.clear_checkpoint(&mut tx, id).await?;
        // The checkpoint was cleared in this transaction: it starts again from none.
        self.core.reset_to_start(&follow.target, tx).await?;
        tracing::info!(projection = %id, "rebuild started from position 0");
        let total = follow.store.count_events().await?;
        let (read, checkpoint) = follow
            .catch_up(&mut self.core, |read, checkpoint| {
                tracing::info!(projection = %id, read, total, "rebuilding");
                progress(Progress {
                    read,
                    total,
                    checkpoint,
                });
            })
            .await?;
        tracing::info!(projection = %id, read, "rebuild finished");
        Ok(CatchUp { read, checkpoint })
    }

    /// The events parked in the dead-letter table, in log order.
    pub async fn parked(&self) -> Result<Vec<ParkedEvent>, ProjectionError> {
        Ok(self.follow.target.parked(self.id()).await?)
    }

    /// Runs the handler of a parked event again (after a fix); on success the event leaves
    /// the dead-letter table in the same transaction. The event applies after later events
    /// did: handlers that depend on order should check the envelope's sequence.
    pub async fn replay_parked(&mut self, event_id: Uuid) -> Result<(), ProjectionError> {
        let result = self.replay_held(event_id).await;
        self.release().await;
        result
    }

    async fn replay_held(&mut self, event_id: Uuid) -> Result<(), ProjectionError> {
        let id = self.id();
        let parked = self.follow.target.parked(id).await?;
        let Some(parked) = parked.into_iter().find(|p| p.event.event_id == event_id) else {
            return Err(ProjectionError::NotParked {
                projection: id,
                event_id,
            });
        };
        self.follow.require(&mut self.core).await?;
        let target = &self.follow.target;
        let mut tx = target.begin().await?;
        let handled = self
            .core
            .projection
            .handle(&parked.event, T::connection(&mut tx))
            .await;
        if let Err(source) = handled {
            target.rollback(tx).await;
            return Err(ProjectionError::Handler {
                projection: id,
                event: EventRef::of(&parked.event),
                attempts: 1,
                source,
            });
        }
        if !target.unpark(&mut tx, id, event_id).await? {
            target.rollback(tx).await;
            return Err(ProjectionError::NotParked {
                projection: id,
                event_id,
            });
        }
        target.commit(tx, None).await?;
        tracing::info!(projection = %id, %event_id, "replayed a parked event");
        Ok(())
    }

    /// Gives up the lease, if held, so that a standby takes over at once.
    pub async fn release(&mut self) {
        self.follow.release().await;
    }
}

impl<S, T, P> Follower<S, T> for Core<P>
where
    S: EventStore,
    T: ProjectionTarget,
    P: ProjectionHandlers<T::Connection>,
{
    type Stop = Stopped;
    type Error = ProjectionError;

    fn id(&self) -> FollowerId {
        P::id().into()
    }

    fn fenced(&self) -> ProjectionError {
        ProjectionError::Fenced(P::id())
    }

    fn is_fenced(error: &ProjectionError) -> bool {
        matches!(error, ProjectionError::Fenced(_))
    }

    fn store_error(&self, error: StoreError) -> ProjectionError {
        ProjectionError::Store(error)
    }

    fn shut_down(&mut self) -> Stopped {
        Stopped::Shutdown
    }

    fn why_stopped(stop: &Stopped) -> String {
        match stop {
            Stopped::Shutdown => "shut down".to_owned(),
            Stopped::Superseded { active } => format!("superseded by version {active}"),
        }
    }

    fn record(&self, batch: Batch, lag: Lag) {
        metrics::record_batch(
            [
                metrics::PROJECTION_EVENTS,
                metrics::PROJECTION_LAG_EVENTS,
                metrics::PROJECTION_LAG_SECONDS,
            ],
            &metrics::projection_labels(P::NAME, P::VERSION),
            batch.read,
            lag,
        );
    }

    /// The checkpoint to follow from. A projection that never ran is set up first: its
    /// `#[reset]` handler runs in the transaction that creates its checkpoint.
    async fn start(&mut self, follow: &mut Follow<S, T>) -> Result<LogPosition, ProjectionError> {
        let id = P::id();
        if let Some(position) = follow.target.checkpoint(id).await? {
            return Ok(position);
        }
        let tx = follow.target.begin().await?;
        self.reset_to_start(&follow.target, tx).await?;
        tracing::info!(projection = %id, "first run: starting from position 0");
        Ok(LogPosition::START)
    }

    /// Reads one batch after `checkpoint` and applies it; returns how many events it read.
    async fn step(
        &mut self,
        follow: &mut Follow<S, T>,
        checkpoint: &mut LogPosition,
        _shutdown: &mut Shutdown<'_>,
    ) -> Result<Batch, ProjectionError> {
        let span = work_span!(
            "projection batch",
            projection.name = P::NAME,
            projection.version = P::VERSION,
            batch.from = %checkpoint,
            batch.to = tracing::field::Empty,
            batch.events = tracing::field::Empty,
        );
        self.apply_batch(follow, checkpoint)
            .instrument(span.clone())
            .await
            .inspect(|batch| {
                span.record("batch.to", tracing::field::display(*checkpoint));
                span.record("batch.events", batch.read);
            })
    }

    /// Activates this version once caught up; stops when a newer version took over (checked
    /// before taking the lease and on each poll).
    async fn idle(
        &mut self,
        follow: &mut Follow<S, T>,
        moment: Idle,
    ) -> Result<Option<Stopped>, ProjectionError> {
        let target = &follow.target;
        match moment {
            Idle::CaughtUp => {
                let mut tx = target.begin().await?;
                target.activate(&mut tx, P::id()).await?;
                target.commit(tx, None).await?;
                tracing::info!(projection = %P::id(), "caught up; following the log");
                Ok(None)
            }
            Idle::Standby | Idle::Woken(Wake::Polled) => {
                // A newer version that caught up takes over.
                let active = target.active_version(P::NAME).await?;
                let newer = active.filter(|&v| v > P::VERSION);
                Ok(newer.map(|active| Stopped::Superseded { active }))
            }
            Idle::Woken(Wake::Notified) | Idle::Timer | Idle::Received => Ok(None),
        }
    }
}

impl<P> Core<P> {
    /// The body of a projection's step, inside its span.
    async fn apply_batch<S, T>(
        &mut self,
        follow: &mut Follow<S, T>,
        checkpoint: &mut LogPosition,
    ) -> Result<Batch, ProjectionError>
    where
        S: EventStore,
        T: ProjectionTarget,
        P: ProjectionHandlers<T::Connection>,
    {
        // Only the aggregate types it follows: the others are never read.
        let batch = follow
            .store
            .read_all_of(P::AGGREGATES, *checkpoint, follow.batch_size)
            .await?;
        let target = &follow.target;
        let mut start = 0;
        while start < batch.len() {
            match self.apply(target, &batch[start..], *checkpoint).await? {
                Slice::Done => {
                    *checkpoint = batch[batch.len() - 1].position;
                    break;
                }
                Slice::FailedAt(k, error) => {
                    if k > 0 {
                        *checkpoint = batch[start + k - 1].position;
                    }
                    let event = &batch[start + k];
                    self.poison(target, event, error, *checkpoint).await?;
                    *checkpoint = event.position;
                    start += k + 1;
                }
            }
        }
        Ok(Batch {
            read: batch.len(),
            newest: batch.last().map(|e| e.recorded_at),
        })
    }
}
