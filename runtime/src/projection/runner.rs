//! The runner: follows the global log from a projection's checkpoint, in batches, through one
//! target transaction per batch.

use std::future::Future;
use std::time::Duration;

use uuid::Uuid;

use super::follower::{Follow, Follower, Idle, LeaseOf, Shutdown, follow_settings};
use super::target::{Advance, FollowerId, ParkedEvent, ProjectionTarget};
use super::{EventRef, PoisonPolicy, ProjectionError, ProjectionHandlers, ProjectionId};
use crate::contract::error::{BoxError, StoreError};
use crate::contract::event::{LogPosition, StoredEvent};
use crate::contract::store::{EventStore, LogWatch, Wake};

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
    core: Core<S, T, P>,
    follow: Follow<T::Lease>,
}

/// What the runner applies: the [`Follower`] the leased-follower driver runs.
#[derive(Debug)]
struct Core<S, T, P> {
    store: S,
    target: T,
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

/// How a run of a slice of a batch ended.
enum Slice {
    Done,
    /// The event at this index failed; everything before it is committed.
    FailedAt(usize, BoxError),
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
            core: Core {
                store,
                target,
                projection,
                policy: PoisonPolicy::stop(),
            },
            follow: Follow::new(500),
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
        &self.core.target
    }

    /// The projection's name and version.
    pub fn id(&self) -> ProjectionId {
        P::id()
    }

    /// Applies everything the log holds now, then returns, giving up the lease. Fails with
    /// [`ProjectionError::Fenced`] if another runner holds the projection.
    pub async fn catch_up(&mut self) -> Result<CatchUp, ProjectionError> {
        let result = self.follow.catch_up(&mut self.core, |_, _| {}).await;
        self.release().await;
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
        let core = &mut self.core;
        let mut tx = core.target.begin().await?;
        core.target.clear_checkpoint(&mut tx, id).await?;
        // The checkpoint was cleared in this transaction: it starts again from none.
        core.reset_to_start(tx).await?;
        tracing::info!(projection = %id, "rebuild started from position 0");
        let total = core.store.count_events().await?;
        let (read, checkpoint) = self
            .follow
            .catch_up(core, |read, checkpoint| {
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
        Ok(self.core.target.parked(self.id()).await?)
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
        let parked = self.core.target.parked(id).await?;
        let Some(parked) = parked.into_iter().find(|p| p.event.event_id == event_id) else {
            return Err(ProjectionError::NotParked {
                projection: id,
                event_id,
            });
        };
        self.follow.require(&mut self.core).await?;
        let core = &mut self.core;
        let mut tx = core.target.begin().await?;
        let handled = core
            .projection
            .handle(&parked.event, T::connection(&mut tx))
            .await;
        if let Err(source) = handled {
            core.target.rollback(tx).await;
            return Err(ProjectionError::Handler {
                projection: id,
                event: EventRef::of(&parked.event),
                attempts: 1,
                source,
            });
        }
        if !core.target.unpark(&mut tx, id, event_id).await? {
            core.target.rollback(tx).await;
            return Err(ProjectionError::NotParked {
                projection: id,
                event_id,
            });
        }
        core.target.commit(tx, None).await?;
        tracing::info!(projection = %id, %event_id, "replayed a parked event");
        Ok(())
    }

    /// Gives up the lease, if held, so that a standby takes over at once.
    pub async fn release(&mut self) {
        self.follow.release(&mut self.core).await;
    }
}

impl<S, T, P> Follower for Core<S, T, P>
where
    S: EventStore,
    T: ProjectionTarget,
    P: ProjectionHandlers<T::Connection>,
{
    type Target = T;
    type Stop = Stopped;
    type Error = ProjectionError;

    fn id(&self) -> FollowerId {
        P::id().into()
    }

    fn target(&self) -> &T {
        &self.target
    }

    fn watch(&self, poll: Duration) -> LogWatch {
        self.store.watch(poll)
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

    /// The checkpoint to follow from. A projection that never ran is set up first: its
    /// `#[reset]` handler runs in the transaction that creates its checkpoint.
    async fn start(&mut self) -> Result<LogPosition, ProjectionError> {
        let id = P::id();
        if let Some(position) = self.target.checkpoint(id).await? {
            return Ok(position);
        }
        let tx = self.target.begin().await?;
        self.reset_to_start(tx).await?;
        tracing::info!(projection = %id, "first run: starting from position 0");
        Ok(LogPosition::START)
    }

    /// Reads one batch after `checkpoint` and applies it; returns how many events it read.
    async fn step(
        &mut self,
        follow: &mut Follow<LeaseOf<Self>>,
        checkpoint: &mut LogPosition,
        _shutdown: &mut Shutdown<'_>,
    ) -> Result<usize, ProjectionError> {
        let batch = self.store.read_all(*checkpoint, follow.batch_size).await?;
        let mut start = 0;
        while start < batch.len() {
            match self.apply(&batch[start..], *checkpoint).await? {
                Slice::Done => {
                    *checkpoint = batch[batch.len() - 1].position;
                    break;
                }
                Slice::FailedAt(k, error) => {
                    if k > 0 {
                        *checkpoint = batch[start + k - 1].position;
                    }
                    let event = &batch[start + k];
                    self.poison(event, error, *checkpoint).await?;
                    *checkpoint = event.position;
                    start += k + 1;
                }
            }
        }
        Ok(batch.len())
    }

    /// Activates this version once caught up; stops when a newer version took over (checked
    /// before taking the lease and on each poll).
    async fn idle(&mut self, moment: Idle) -> Result<Option<Stopped>, ProjectionError> {
        match moment {
            Idle::CaughtUp => {
                self.activate().await?;
                tracing::info!(projection = %P::id(), "caught up; following the log");
                Ok(None)
            }
            Idle::Standby | Idle::Woken(Wake::Polled) => Ok(self
                .superseded()
                .await?
                .map(|active| Stopped::Superseded { active })),
            Idle::Woken(Wake::Notified) => Ok(None),
        }
    }
}

impl<S, T, P> Core<S, T, P>
where
    S: EventStore,
    T: ProjectionTarget,
    P: ProjectionHandlers<T::Connection>,
{
    /// Runs the `#[reset]` handler (if any) in `tx` and commits the checkpoint at the start,
    /// where there is none (or it was cleared in `tx`).
    async fn reset_to_start(&mut self, mut tx: T::Transaction) -> Result<(), ProjectionError> {
        let id = P::id();
        if P::CAN_RESET {
            if let Err(source) = self.projection.reset(T::connection(&mut tx)).await {
                self.target.rollback(tx).await;
                return Err(ProjectionError::Reset {
                    projection: id,
                    source,
                });
            }
        }
        let advance = Advance {
            follower: id.into(),
            from: None,
            to: LogPosition::START,
        };
        self.target.commit(tx, Some(advance)).await?;
        Ok(())
    }
    /// Applies `events` in one transaction and commits the checkpoint after the last one. If
    /// one fails, commits everything before it (re-running that prefix in a new transaction
    /// where the target rolled the first one back) and says which.
    async fn apply(
        &mut self,
        events: &[StoredEvent],
        from: LogPosition,
    ) -> Result<Slice, ProjectionError> {
        let id = P::id();
        let mut end = events.len();
        let mut failure: Option<(usize, BoxError)> = None;
        loop {
            let mut tx = self.target.begin().await?;
            let mut failed = None;
            for (i, event) in events[..end].iter().enumerate() {
                if !P::AGGREGATES.contains(&event.aggregate_type.as_str()) {
                    continue;
                }
                if let Err(error) = self.projection.handle(event, T::connection(&mut tx)).await {
                    failed = Some((i, error));
                    break;
                }
            }
            let commit_to = match failed {
                Some((k, error)) if T::ATOMIC => {
                    // Nothing of this transaction may stay: run the events before `k` again.
                    self.target.rollback(tx).await;
                    end = k;
                    failure = Some((k, error));
                    continue;
                }
                Some((k, error)) => {
                    failure = Some((k, error));
                    k
                }
                None => end,
            };
            if commit_to == 0 {
                self.target.rollback(tx).await;
            } else {
                let advance = Advance {
                    follower: id.into(),
                    from: Some(from),
                    to: events[commit_to - 1].position,
                };
                self.target.commit(tx, Some(advance)).await?;
            }
            return Ok(match failure {
                Some((k, error)) => Slice::FailedAt(k, error),
                None => Slice::Done,
            });
        }
    }

    /// An event whose handler failed: retry, park or stop, as the policy says. On `Ok` the
    /// event is applied or parked and the checkpoint is at it.
    async fn poison(
        &mut self,
        event: &StoredEvent,
        error: BoxError,
        from: LogPosition,
    ) -> Result<(), ProjectionError> {
        let id = P::id();
        let advance = Advance {
            follower: id.into(),
            from: Some(from),
            to: event.position,
        };
        let mut attempts = 1;
        let mut last = error;
        tracing::warn!(projection = %id, event = %EventRef::of(event), error = %last, "a projection handler failed");
        for retry in 1..=self.policy.retries() {
            tokio::time::sleep(self.policy.delay(retry)).await;
            let mut tx = self.target.begin().await?;
            attempts += 1;
            match self.projection.handle(event, T::connection(&mut tx)).await {
                Ok(()) => {
                    self.target.commit(tx, Some(advance)).await?;
                    tracing::info!(projection = %id, event = %EventRef::of(event), attempts, "a retried event applied");
                    return Ok(());
                }
                Err(error) => {
                    self.target.rollback(tx).await;
                    tracing::warn!(projection = %id, event = %EventRef::of(event), attempts, %error, "a retried event failed again");
                    last = error;
                }
            }
        }
        if !self.policy.parks() {
            tracing::error!(projection = %id, event = %EventRef::of(event), attempts, error = %last, "projection stopped at an event it cannot apply");
            return Err(ProjectionError::Handler {
                projection: id,
                event: EventRef::of(event),
                attempts,
                source: last,
            });
        }
        let parked = ParkedEvent {
            event: event.clone(),
            error: last.to_string(),
            attempts,
            parked_at: chrono::Utc::now(),
        };
        let mut tx = self.target.begin().await?;
        self.target.park(&mut tx, id, &parked).await?;
        self.target.commit(tx, Some(advance)).await?;
        tracing::warn!(projection = %id, event = %EventRef::of(event), attempts, error = %parked.error, "parked an event in the dead-letter table");
        Ok(())
    }

    /// Marks this version active once it has caught up.
    async fn activate(&mut self) -> Result<(), ProjectionError> {
        let mut tx = self.target.begin().await?;
        self.target.activate(&mut tx, P::id()).await?;
        self.target.commit(tx, None).await?;
        Ok(())
    }

    /// The newer active version, if one took over.
    async fn superseded(&mut self) -> Result<Option<u32>, ProjectionError> {
        let active = self.target.active_version(P::NAME).await?;
        Ok(active.filter(|&v| v > P::VERSION))
    }
}
