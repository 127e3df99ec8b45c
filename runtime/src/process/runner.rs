//! The process manager runner: follows the log from its checkpoint under a lease (the shared
//! leased follower), runs each event through its manager, sends the commands, and commits the
//! instances with the checkpoint; between batches, fires the deadlines that came due.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use uuid::Uuid;

use super::{
    After, Delivery, DispatchError, Dispatcher, Instance, Outgoing, ProcessManager, ProcessState,
    Refused, Step,
};
use crate::bus::{
    BusError, DeadLetter, ErasedPublisher, ErasedReceipt, ErasedSource, Message, Publisher, Source,
    prune_inbox,
};
use crate::contract::error::{BoxError, StoreError};
use crate::contract::event::{LogPosition, Metadata, StoredEvent};
use crate::contract::store::EventStore;
use crate::observe::metrics::Lag;
use crate::projection::follower::{Batch, Follow, Follower, Idle, Shutdown, follow_settings};
use crate::projection::{
    Advance, CommitError, FollowerId, Inbox, InstanceChange, Instances, Leases, ParkedEvent,
    PoisonPolicy, ProcessTarget, ProjectionId, StoredInstance,
};

/// Runs a [`ProcessManager`]: see the [module docs](super).
///
/// ```
/// use cqrs_runtime::doc_support::{Counter, CounterCommand, Mirror};
/// use cqrs_runtime::process::{Dispatcher, ProcessRunner};
/// use cqrs_runtime::projection::MemoryTarget;
/// use cqrs_runtime::{InMemoryStore, Repository};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = InMemoryStore::new();
/// let counters = Repository::<Counter, _>::new(store.clone());
/// counters.execute(&"c-1".to_owned(), CounterCommand::Add(5)).await.unwrap();
///
/// let dispatcher = Dispatcher::new().route(counters.clone());
/// let mut runner = ProcessRunner::new(store, MemoryTarget::new(), Mirror, dispatcher);
/// runner.catch_up().await.unwrap();
/// assert_eq!(counters.load(&"mirror-c-1".to_owned()).await.unwrap().state().total, 5);
/// // Running again changes nothing: the checkpoint moved with the instance.
/// runner.catch_up().await.unwrap();
/// assert_eq!(counters.load(&"mirror-c-1".to_owned()).await.unwrap().version(), 1);
/// # });
/// ```
#[derive(Debug)]
pub struct ProcessRunner<P: ProcessManager, S, T: Leases> {
    follow: Follow<S, T>,
    core: Core<P>,
}

/// How far a runner got since its `run` or `catch_up` began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessProgress {
    /// Events read from the log.
    pub read: u64,
    /// Messages taken from the [`source`](ProcessRunner::source) and handled (duplicates
    /// and dead letters not counted).
    pub received: u64,
    /// Commands published for other services ([`Effects::publish`](super::Effects::publish)).
    pub published: u64,
    /// Commands sent (duplicates and refusals included).
    pub commands: u64,
    /// Deadlines fired.
    pub deadlines: u64,
    /// Instances completed.
    pub completed: u64,
    /// The checkpoint at the end.
    pub checkpoint: LogPosition,
}

/// Why a runner stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Another runner of the same manager moved the checkpoint: this one stopped.
    #[error("process manager `{0}` is being run by another process; this one stopped")]
    Fenced(&'static str),
    /// A handler failed. The checkpoint stays before the event; the commands sent for earlier
    /// events of its batch are sent again, with the same keys, when it runs again.
    #[error("process manager `{manager}` failed on {what}: {source}")]
    Handler {
        /// The manager.
        manager: &'static str,
        /// The event (type, aggregate and sequence) or deadline it failed on.
        what: String,
        /// The handler's error.
        #[source]
        source: BoxError,
    },
    /// A command has no route (see [`Dispatcher::route`]).
    #[error("process manager `{manager}`: {source}")]
    Dispatch {
        /// The manager.
        manager: &'static str,
        /// Why.
        #[source]
        source: DispatchError,
    },
    /// A handler published a command ([`Effects::publish`](super::Effects::publish)), or a
    /// source is set, and the broker side is missing or misconfigured.
    #[error("process manager `{manager}`: {source}")]
    Bus {
        /// The manager.
        manager: &'static str,
        /// What is wrong.
        #[source]
        source: BusError,
    },
    /// The store or the target failed, or a stored instance does not decode.
    #[error("process manager `{manager}` stopped: {source}")]
    Store {
        /// The manager.
        manager: &'static str,
        /// What failed.
        #[source]
        source: StoreError,
    },
}

/// What the runner does per batch and between batches: the [`Follower`] the driver runs.
struct Core<P: ProcessManager> {
    manager: P,
    dispatcher: Dispatcher,
    archive: bool,
    progress: ProcessProgress,
    /// Per instance, the furthest event its commands recorded in the streams the manager
    /// follows: the instance's deadlines wait until the checkpoint passed it, so that no
    /// deadline handler decides on a state that misses the effect of a command it sent.
    awaited: HashMap<String, LogPosition>,
    /// When the earliest deadline is due, as of the last look: the live runner wakes then.
    next_due: Option<chrono::DateTime<Utc>>,
    poison: PoisonPolicy,
    /// The instances as last committed, kept while this runner holds the lease (it is then
    /// their only writer): a batch loads from the target only the instances it has not seen.
    /// Emptied whenever the runner (re)starts following.
    cache: HashMap<String, Instance<P::State>>,
    /// Per instance the current batch (or deadline) took from the cache or the target, its
    /// deadlines as committed: the commit rewrites an instance's deadlines only when they
    /// changed. Emptied by each commit.
    committed: HashMap<String, std::collections::BTreeMap<String, chrono::DateTime<Utc>>>,
    /// The newest event of the log when this runner (re)started following: a command caused
    /// by a later event cannot have been sent by an earlier run, so its refusal is not looked
    /// up.
    started_at: u64,
    /// Where events of other services come from, if set. (In a `Mutex` only to make the
    /// runner `Sync`, which sources need not be; it is reached through `get_mut`.)
    source: Option<Mutex<Box<dyn ErasedSource>>>,
    /// Messages received and not yet handled.
    received: Mutex<Vec<crate::bus::Delivery<ErasedReceipt>>>,
    /// Why receiving stopped, other than the broker being away (retried).
    receive_failed: Option<BusError>,
    /// Where published commands go, if set.
    publisher: Option<Mutex<Box<dyn ErasedPublisher>>>,
    /// The commands the current batch (or deadline) published: sent before its commit.
    outbox: Vec<Message>,
    /// How long the ids of handled messages are kept (`None`: forever), and when they were
    /// last pruned.
    keep_ids: Option<Duration>,
    pruned_at: Option<std::time::Instant>,
}

impl<P: ProcessManager + std::fmt::Debug> std::fmt::Debug for Core<P> {
    // The cached states need not be `Debug`: show how many there are.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("manager", &self.manager)
            .field("dispatcher", &self.dispatcher)
            .field("archive", &self.archive)
            .field("progress", &self.progress)
            .field("poison", &self.poison)
            .field("cached", &self.cache.len())
            .field("source", &self.source.is_some())
            .field("publisher", &self.publisher.is_some())
            .finish_non_exhaustive()
    }
}

/// What a `Mutex` the runner owns holds, reached without locking.
fn exclusive<T: ?Sized>(mutex: &mut Mutex<T>) -> &mut T {
    mutex.get_mut().unwrap_or_else(PoisonError::into_inner)
}

/// The most instances the runner keeps in memory; past it, it starts over with none.
const CACHED: usize = 100_000;

impl<P, S, T> ProcessRunner<P, S, T>
where
    P: ProcessManager,
    S: EventStore,
    T: ProcessTarget,
{
    /// A runner of `manager` over `store`'s log, sending its commands through `dispatcher`,
    /// with its instances, deadlines, checkpoint and lease in `target`. Defaults: batches of
    /// 100 events, a poll every second, backoff from 100 ms to 30 s, leases of 30 s, completed
    /// instances not archived. A live runner also wakes when its earliest deadline comes due.
    pub fn new(store: S, target: T, manager: P, dispatcher: Dispatcher) -> Self {
        ProcessRunner {
            follow: Follow::new(store, target, 100),
            core: Core {
                manager,
                dispatcher,
                archive: false,
                progress: ProcessProgress::default(),
                awaited: HashMap::new(),
                next_due: None,
                poison: PoisonPolicy::stop(),
                cache: HashMap::new(),
                committed: HashMap::new(),
                started_at: u64::MAX,
                source: None,
                received: Mutex::new(Vec::new()),
                receive_failed: None,
                publisher: None,
                outbox: Vec::new(),
                keep_ids: None,
                pruned_at: None,
            },
        }
    }

    /// Also follows the events of other services that `source` delivers (a consumer of their
    /// topics or streams): a live runner handles each message as soon as it arrives, between
    /// batches of the log, as the event it carries ([`Message::to_stored`]). Each message
    /// takes effect once: its id is recorded in the target ([`Inbox`], under the manager's
    /// name) in the transaction that moves its instance, a message seen before is skipped,
    /// and a message is acknowledged only after that commit. A malformed message goes to the
    /// source's dead letters; a failing handler follows the [`poison`](Self::poison) policy.
    ///
    /// Order holds per aggregate of the sender (its partition or subject), not between the
    /// log and the bus.
    pub fn source<Src: Source>(mut self, source: Src) -> Self
    where
        Src::Receipt: 'static,
    {
        self.core.source = Some(Mutex::new(Box::new(source)));
        self
    }

    /// Forgets the ids of handled messages (kept in the target's inbox under the manager's
    /// name) once they are `keep` old: checked between messages, once per `keep` (at least
    /// hourly). Without it the inbox keeps every id. A message delivered again after its id is
    /// forgotten is handled again: keep them longer than the broker may redeliver.
    pub fn keep_processed_ids(mut self, keep: Duration) -> Self {
        self.core.keep_ids = Some(keep);
        self
    }

    /// Where the commands handlers publish for other services
    /// ([`Effects::publish`](super::Effects::publish)) go. They are published after a batch's
    /// local commands and before its commit, and published again with the same idempotency
    /// keys if the runner crashes in between. A handler that publishes without a publisher set
    /// stops the runner with [`ProcessError::Bus`].
    pub fn publisher(mut self, publisher: impl Publisher) -> Self {
        self.core.publisher = Some(Mutex::new(Box::new(publisher)));
        self
    }

    /// What to do with an event whose routing or handler fails: stop (the default), retry,
    /// or park it in the target's dead-letter table (under the manager's name, version 0)
    /// and go on, the instance as it was before the event. A failing deadline or refusal
    /// handler always stops the runner.
    pub fn poison(mut self, policy: PoisonPolicy) -> Self {
        self.core.poison = policy;
        self
    }

    /// The events parked by the [`poison`](Self::poison) policy, in log order.
    pub async fn parked(&self) -> Result<Vec<ParkedEvent>, ProcessError> {
        let parked = self.follow.target.parked(Core::<P>::dead_letters()).await;
        parked.map_err(|e| self.core.store_error(e))
    }

    /// Keeps the final state of each completed instance in the target's archive.
    pub fn archive(mut self, archive: bool) -> Self {
        self.core.archive = archive;
        self
    }

    follow_settings!("runner");

    /// The wait after a failed command or publish, doubling after each further failure up to
    /// `max` (defaults: 100 ms and 30 s).
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.follow.backoff = first;
        self.follow.max_backoff = max.max(first);
        self
    }

    /// Handles everything the log holds now and fires the deadlines due now, then returns,
    /// giving up the lease. Fails with [`ProcessError::Fenced`] if another runner of the same
    /// manager runs.
    pub async fn catch_up(&mut self) -> Result<ProcessProgress, ProcessError> {
        self.core.progress = ProcessProgress::default();
        let result = self.follow.catch_up(&mut self.core, |_, _| {}).await;
        self.follow.release().await;
        result.map(|_| self.core.progress)
    }

    /// Runs until `shutdown` completes (checked between batches). Stands by while another
    /// runner of the same manager runs.
    pub async fn run(
        &mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<ProcessProgress, ProcessError> {
        self.core.progress = ProcessProgress::default();
        self.follow.run(&mut self.core, shutdown).await
    }

    /// Instance `id`'s state and deadlines, as last committed.
    pub async fn instance(&self, id: &str) -> Result<Option<Instance<P::State>>, ProcessError> {
        self.core.load(&self.follow.target, id).await
    }

    /// A completed instance's final state, if archived.
    pub async fn archived(&self, id: &str) -> Result<Option<P::State>, ProcessError> {
        let stored = self.follow.target.archived(P::NAME, id).await;
        match stored.map_err(|e| self.core.store_error(e))? {
            Some(state) => self.core.decode(id, &state).map(Some),
            None => Ok(None),
        }
    }
}

impl<P, S, T> Follower<S, T> for Core<P>
where
    P: ProcessManager,
    S: EventStore,
    T: ProcessTarget,
{
    type Stop = ProcessProgress;
    type Error = ProcessError;

    fn id(&self) -> FollowerId {
        FollowerId::Process(P::NAME)
    }

    fn fenced(&self) -> ProcessError {
        ProcessError::Fenced(P::NAME)
    }

    fn is_fenced(error: &ProcessError) -> bool {
        matches!(error, ProcessError::Fenced(_))
    }

    fn store_error(&self, source: StoreError) -> ProcessError {
        Core::store_error(self, source)
    }

    fn shut_down(&mut self) -> ProcessProgress {
        self.progress
    }

    fn record(&self, _batch: Batch, _lag: Lag) {}

    async fn start(&mut self, follow: &mut Follow<S, T>) -> Result<LogPosition, ProcessError> {
        // Another runner may have written instances since this one last held the lease.
        self.cache.clear();
        self.committed.clear();
        self.started_at = follow.store.head().await.map_err(|e| self.store_error(e))?;
        let stored = follow.target.checkpoint(FollowerId::Process(P::NAME)).await;
        let checkpoint = match stored.map_err(|e| self.store_error(e))? {
            Some(checkpoint) => checkpoint,
            None => {
                let advance = Advance {
                    follower: FollowerId::Process(P::NAME),
                    from: None,
                    to: LogPosition::START,
                };
                self.commit(&follow.target, &Touched::new(), &[], Some(advance), &[])
                    .await?;
                LogPosition::START
            }
        };
        self.progress.checkpoint = checkpoint;
        Ok(checkpoint)
    }

    async fn step(
        &mut self,
        follow: &mut Follow<S, T>,
        at: &mut LogPosition,
        shutdown: &mut Shutdown<'_>,
    ) -> Result<Batch, ProcessError> {
        let batch = follow
            .store
            .read_all_of(P::FOLLOWS, *at, follow.batch_size)
            .await
            .map_err(|e| self.store_error(e))?;
        let Some(last) = batch.last() else {
            return Ok(Batch::default());
        };
        let (last_position, newest) = (last.position, last.recorded_at);
        self.outbox.clear();
        let mut touched = Touched::new();
        let mut queue = VecDeque::new();
        let mut parked = Vec::new();
        for event in &batch {
            let step = self
                .on_event(&follow.target, &mut touched, event, &mut parked)
                .await?;
            if let Some(step) = step {
                let maybe_sent = event.position.event <= self.started_at;
                queue.extend(self.settle(&mut touched, step, event.event_id, maybe_sent));
            }
        }
        if !self.deliver(follow, &mut touched, queue, shutdown).await?
            || !self.flush(follow, shutdown).await?
        {
            return Ok(Batch::default());
        }
        let advance = Advance {
            follower: FollowerId::Process(P::NAME),
            from: Some(*at),
            to: last_position,
        };
        self.commit(&follow.target, &touched, &parked, Some(advance), &[])
            .await?;
        self.remember(touched);
        *at = last_position;
        self.progress.read += batch.len() as u64;
        self.progress.checkpoint = last_position;
        Ok(Batch {
            read: batch.len(),
            newest: Some(newest),
        })
    }

    fn wake_at(&self) -> Option<std::time::Instant> {
        let due = self.next_due?;
        let wait = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        Some(std::time::Instant::now() + wait)
    }

    async fn receive(&mut self) {
        let Some(source) = self.source.as_mut().map(exclusive) else {
            return futures::future::pending().await;
        };
        let received = exclusive(&mut self.received);
        if !received.is_empty() || self.receive_failed.is_some() {
            return;
        }
        loop {
            match source.next().await {
                Ok(delivery) => {
                    received.push(delivery);
                    return;
                }
                Err(BusError::Broker(error)) => {
                    // The clients reconnect by themselves.
                    tracing::warn!(manager = P::NAME, %error, "receiving failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => {
                    self.receive_failed = Some(error);
                    return;
                }
            }
        }
    }

    async fn idle(
        &mut self,
        follow: &mut Follow<S, T>,
        moment: Idle,
    ) -> Result<Option<ProcessProgress>, ProcessError> {
        // Only with the lease: a standby handles nothing.
        if moment != Idle::Standby {
            self.take_messages(follow).await?;
            self.fire_due(follow).await?;
        }
        Ok(None)
    }
}

/// The instances a batch (or a deadline) touched, as it left them: running, completed (with
/// the final state, for the archive), or absent (an event routed to no running instance).
type Touched<S> = HashMap<String, Slot<S>>;

enum Slot<S> {
    Running(Instance<S>),
    Completed(S),
    Absent,
}

/// A command to send, with the instance that sent it and its cause.
struct Queued {
    instance: String,
    outgoing: Outgoing,
    cause: Uuid,
    /// Whether an earlier run may have sent it (and seen it refused): its cause is an event
    /// the log held when this runner started, a deadline or a refusal.
    maybe_sent: bool,
}

impl<P: ProcessManager> Core<P> {
    fn store_error(&self, source: StoreError) -> ProcessError {
        ProcessError::Store {
            manager: P::NAME,
            source,
        }
    }

    fn decode(&self, id: &str, state: &str) -> Result<P::State, ProcessError> {
        P::State::from_json(state).map_err(|e| {
            self.store_error(StoreError::Corrupt(format!(
                "the state of instance `{id}` of process manager `{}` does not decode: {e}",
                P::NAME
            )))
        })
    }

    async fn load<T: Instances>(
        &self,
        target: &T,
        id: &str,
    ) -> Result<Option<Instance<P::State>>, ProcessError> {
        let stored = target.instance(P::NAME, id).await;
        let Some(stored) = stored.map_err(|e| self.store_error(e))? else {
            return Ok(None);
        };
        Ok(Some(Instance {
            state: self.decode(id, &stored.state)?,
            deadlines: stored.deadlines.into_iter().collect(),
        }))
    }

    /// The instance as this batch left it so far, or as committed.
    async fn current<T: Instances>(
        &mut self,
        target: &T,
        touched: &mut Touched<P::State>,
        id: &str,
    ) -> Result<Option<Instance<P::State>>, ProcessError> {
        // A completed or absent slot stays: what the batch decided for it still holds.
        match touched.remove(id) {
            Some(Slot::Running(instance)) => Ok(Some(instance)),
            Some(other) => {
                touched.insert(id.to_owned(), other);
                Ok(None)
            }
            None => {
                let instance = match self.cache.remove(id) {
                    Some(instance) => Some(instance),
                    None => self.load(target, id).await?,
                };
                if let Some(instance) = &instance {
                    self.committed
                        .entry(id.to_owned())
                        .or_insert_with(|| instance.deadlines.clone());
                }
                Ok(instance)
            }
        }
    }

    /// Keeps what a commit wrote, for the next batches, and wakes for the earliest deadline
    /// it set.
    fn remember(&mut self, touched: Touched<P::State>) {
        let earliest = touched
            .values()
            .filter_map(|slot| match slot {
                Slot::Running(instance) => instance.deadlines.values().min().copied(),
                _ => None,
            })
            .min();
        if let Some(earliest) = earliest {
            self.next_due = Some(self.next_due.map_or(earliest, |due| due.min(earliest)));
        }
        self.committed.clear();
        if self.cache.len() + touched.len() > CACHED {
            self.cache.clear();
        }
        for (id, slot) in touched {
            match slot {
                Slot::Running(instance) => {
                    self.cache.insert(id, instance);
                }
                Slot::Completed(_) => {
                    self.cache.remove(&id);
                }
                Slot::Absent => {}
            }
        }
    }

    /// Where the parked events of this manager are kept.
    fn dead_letters() -> ProjectionId {
        ProjectionId {
            name: P::NAME,
            version: 0,
        }
    }

    /// Runs one event through its instance, as the poison policy says when the routing or
    /// the handler fails: retried, parked (into `parked`, the instance left as it was), or
    /// stopping the runner.
    async fn on_event<T: Instances>(
        &mut self,
        target: &T,
        touched: &mut Touched<P::State>,
        event: &StoredEvent,
        parked: &mut Vec<ParkedEvent>,
    ) -> Result<Option<Step<P::State>>, ProcessError> {
        let mut failures = 0;
        loop {
            let error = match self.try_event(target, touched, event).await? {
                Ok(step) => return Ok(step),
                Err(error) => error,
            };
            failures += 1;
            if failures <= self.poison.retries() {
                let delay = self.poison.delay(failures);
                tracing::warn!(manager = P::NAME, %error, event = %event.event_id, retry_in = ?delay, "a process manager handler failed; retrying");
                tokio::time::sleep(delay).await;
                continue;
            }
            if self.poison.parks() {
                tracing::error!(manager = P::NAME, %error, event = %event.event_id, "a process manager handler failed; parking the event");
                parked.push(ParkedEvent {
                    event: event.clone(),
                    error: error.to_string(),
                    attempts: failures,
                    parked_at: Utc::now(),
                });
                return Ok(None);
            }
            return Err(ProcessError::Handler {
                manager: P::NAME,
                what: format!(
                    "event `{}` of {} `{}` #{}",
                    event.event_type, event.aggregate_type, event.aggregate_id, event.sequence
                ),
                source: error,
            });
        }
    }

    /// One run of an event; on a handler's error, the instance is back in `touched` as it
    /// was before the event.
    async fn try_event<T: Instances>(
        &mut self,
        target: &T,
        touched: &mut Touched<P::State>,
        event: &StoredEvent,
    ) -> Result<Result<Option<Step<P::State>>, BoxError>, ProcessError> {
        let route = match self.manager.route(event) {
            Ok(route) => route,
            Err(error) => return Ok(Err(error)),
        };
        let id = match &route {
            super::Route::Ignore => return Ok(Ok(None)),
            super::Route::Start(id) | super::Route::Existing(id) => id.clone(),
        };
        let instance = self.current(target, touched, &id).await?;
        // What to put back if the handler fails, when the policy goes on after a failure.
        let before = match (&instance, self.poison == PoisonPolicy::stop()) {
            (Some(instance), false) => Some((
                self.encode(&id, &instance.state)?,
                instance.deadlines.clone(),
            )),
            _ => None,
        };
        let existed = instance.is_some();
        match super::on_event(&self.manager, event, |_| instance) {
            Ok(Some(step)) => Ok(Ok(Some(step))),
            Ok(None) => {
                // An `Existing` route to no running instance: nothing to write for it.
                touched.entry(id).or_insert(Slot::Absent);
                Ok(Ok(None))
            }
            Err(error) => {
                match before {
                    Some((state, deadlines)) => {
                        let state = self.decode(&id, &state)?;
                        touched.insert(id, Slot::Running(Instance { state, deadlines }));
                    }
                    // The runner stops: nothing to put back.
                    None if existed => {}
                    None => {
                        touched.entry(id).or_insert(Slot::Absent);
                    }
                }
                Ok(Err(error))
            }
        }
    }

    /// Keeps what a step made of its instance and returns its commands, to send.
    fn settle(
        &mut self,
        touched: &mut Touched<P::State>,
        step: Step<P::State>,
        cause: Uuid,
        maybe_sent: bool,
    ) -> Vec<Queued> {
        let Step {
            id,
            after,
            mut effects,
        } = step;
        self.outbox
            .extend(effects.published.drain(..).map(|mut message| {
                message.metadata.causation_id = Some(cause);
                message
            }));
        let slot = match after {
            After::Running(instance) => Slot::Running(instance),
            After::Completed(state) => {
                self.progress.completed += 1;
                Slot::Completed(state)
            }
        };
        touched.insert(id.clone(), slot);
        effects
            .commands
            .into_iter()
            .map(|outgoing| Queued {
                instance: id.clone(),
                outgoing,
                cause,
                maybe_sent,
            })
            .collect()
    }

    /// Sends the queued commands in order, and those the instances decide on hearing of a
    /// refusal. A store failure is retried with backoff until `shutdown` (`false`).
    async fn deliver<S: EventStore, T: ProcessTarget>(
        &mut self,
        follow: &mut Follow<S, T>,
        touched: &mut Touched<P::State>,
        mut queue: VecDeque<Queued>,
        shutdown: &mut Shutdown<'_>,
    ) -> Result<bool, ProcessError> {
        while let Some(queued) = queue.pop_front() {
            let refused = |reason: String, outgoing: &Outgoing| Refused {
                aggregate_type: outgoing.aggregate_type,
                aggregate_id: outgoing.aggregate_id.clone(),
                command_name: outgoing.command_name,
                command_id: outgoing.command_id.clone(),
                reason,
            };
            let metadata = Metadata::default().caused_by(queued.cause);
            let outgoing = queued.outgoing;
            let (instance, maybe_sent) = (&queued.instance, queued.maybe_sent);
            let sent = self.send(follow, instance, &outgoing, metadata, maybe_sent, shutdown);
            let Some(delivery) = sent.await? else {
                return Ok(false);
            };
            self.progress.commands += 1;
            if P::FOLLOWS.contains(&outgoing.aggregate_type)
                && let Some(position) = delivery.position()
            {
                let awaited = self.awaited.entry(queued.instance.clone()).or_default();
                *awaited = (*awaited).max(position);
            }
            let Delivery::Refused(reason) = delivery else {
                continue;
            };
            let refusal = refused(reason, &outgoing);
            tracing::debug!(manager = P::NAME, instance = %queued.instance, command = %refusal.command_id, "a command was refused");
            let Some(instance) = self
                .current(&follow.target, touched, &queued.instance)
                .await?
            else {
                continue;
            };
            let step = super::on_refused(
                &self.manager,
                &queued.instance,
                instance,
                &refusal,
                Utc::now(),
            )
            .map_err(|source| ProcessError::Handler {
                manager: P::NAME,
                what: format!("the refusal of `{}`", refusal.command_id),
                source,
            })?;
            queue.extend(self.settle(touched, step, queued.cause, true));
        }
        Ok(true)
    }

    /// Sends one command, retrying store failures with backoff (with the same key: it runs
    /// once); `None` on shutdown.
    ///
    /// A refusal is recorded before the instance hears of it, and a command refused before
    /// (by a run that crashed before its commit) is not sent again: sent again, it could now
    /// succeed, after the instance already acted on its refusal.
    async fn send<S: EventStore, T: ProcessTarget>(
        &mut self,
        follow: &mut Follow<S, T>,
        instance: &str,
        outgoing: &Outgoing,
        metadata: Metadata,
        maybe_sent: bool,
        shutdown: &mut Shutdown<'_>,
    ) -> Result<Option<Delivery>, ProcessError> {
        if maybe_sent {
            let refused = follow.target.refusal(P::NAME, &outgoing.command_id).await;
            if let Some(reason) = refused.map_err(|e| self.store_error(e))? {
                return Ok(Some(Delivery::Refused(reason)));
            }
        }
        let mut delay = follow.backoff;
        loop {
            match self.dispatcher.deliver(outgoing, metadata.clone()).await {
                Ok(Delivery::Refused(reason)) => {
                    let recorded = follow
                        .target
                        .record_refusal(P::NAME, instance, &outgoing.command_id, &reason)
                        .await;
                    recorded.map_err(|e| self.store_error(e))?;
                    return Ok(Some(Delivery::Refused(reason)));
                }
                Ok(delivery) => return Ok(Some(delivery)),
                Err(source @ DispatchError::NoRoute(_)) => {
                    return Err(ProcessError::Dispatch {
                        manager: P::NAME,
                        source,
                    });
                }
                Err(error) => {
                    tracing::warn!(manager = P::NAME, %error, retry_in = ?delay, "sending a command failed; retrying");
                }
            }
            futures::select! {
                () = tokio::time::sleep(delay).fuse() => {}
                () = &mut *shutdown => return Ok(None),
            }
            delay = delay.saturating_mul(2).min(follow.max_backoff);
            follow.require(self).await?;
        }
    }

    /// Publishes the commands the current batch (or deadline) published, retrying broker
    /// failures with backoff (with the same ids: the receiver runs each once); `false` on
    /// shutdown.
    async fn flush<S: EventStore, T: ProcessTarget>(
        &mut self,
        follow: &mut Follow<S, T>,
        shutdown: &mut Shutdown<'_>,
    ) -> Result<bool, ProcessError> {
        if self.outbox.is_empty() {
            return Ok(true);
        }
        let mut delay = follow.backoff;
        loop {
            let Some(publisher) = self.publisher.as_mut().map(exclusive) else {
                let first = &self.outbox[0];
                let error = BusError::Config(format!(
                    "a handler published `{}` for `{}` on `{}`, but the runner has no publisher: give it one with `ProcessRunner::publisher`",
                    first.event_type, first.key, first.topic
                ));
                return Err(self.bus_error(error));
            };
            match publisher.publish(&self.outbox).await {
                Ok(()) => {
                    self.progress.published += self.outbox.len() as u64;
                    self.outbox.clear();
                    return Ok(true);
                }
                Err(BusError::Broker(error)) => {
                    tracing::warn!(manager = P::NAME, %error, retry_in = ?delay, "publishing commands failed; retrying");
                }
                Err(error) => return Err(self.bus_error(error)),
            }
            futures::select! {
                () = tokio::time::sleep(delay).fuse() => {}
                () = &mut *shutdown => return Ok(false),
            }
            delay = delay.saturating_mul(2).min(follow.max_backoff);
            follow.require(self).await?;
        }
    }

    fn bus_error(&self, source: BusError) -> ProcessError {
        ProcessError::Bus {
            manager: P::NAME,
            source,
        }
    }

    /// Handles the messages received, and those the source has ready behind them, up to a
    /// batch: one transaction for their instances and their ids, then their acknowledgements.
    async fn take_messages<S: EventStore, T: ProcessTarget>(
        &mut self,
        follow: &mut Follow<S, T>,
    ) -> Result<(), ProcessError> {
        if let Some(error) = self.receive_failed.take() {
            return Err(self.bus_error(error));
        }
        if self.source.is_some() {
            prune_inbox(&follow.target, P::NAME, self.keep_ids, &mut self.pruned_at).await;
        }
        let Some(source) = self.source.as_mut().map(exclusive) else {
            return Ok(());
        };
        let mut batch = std::mem::take(exclusive(&mut self.received));
        while batch.len() < follow.batch_size {
            match source.try_next().await {
                Ok(Some(delivery)) => batch.push(delivery),
                Ok(None) => break,
                // What came so far is handled; the next receive waits the failure out.
                Err(BusError::Broker(error)) => {
                    tracing::warn!(manager = P::NAME, %error, "receiving failed; retrying");
                    break;
                }
                Err(error) => return Err(self.bus_error(error)),
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        let mut messages = Vec::with_capacity(batch.len());
        let mut receipts = Vec::with_capacity(batch.len());
        for (message, receipt) in batch {
            match message {
                Ok(message) => {
                    messages.push(message);
                    receipts.push(receipt);
                }
                Err(malformed) => self.dead_letter(receipt, &malformed).await,
            }
        }
        let ids: Vec<Uuid> = messages.iter().map(|m| m.event_id).collect();
        let seen = self.seen(&follow.target, &ids).await?;
        self.outbox.clear();
        let mut touched = Touched::new();
        let mut queue = VecDeque::new();
        let mut parked = Vec::new();
        let mut fresh = Vec::new();
        for (message, seen) in messages.iter().zip(seen) {
            if seen {
                continue;
            }
            fresh.push(message.event_id);
            let event = message.to_stored();
            let step = self
                .on_event(&follow.target, &mut touched, &event, &mut parked)
                .await?;
            if let Some(step) = step {
                queue.extend(self.settle(&mut touched, step, event.event_id, true));
            }
        }
        let mut never: Shutdown<'_> = futures::future::pending().boxed().fuse();
        if !self
            .deliver(follow, &mut touched, queue, &mut never)
            .await?
            || !self.flush(follow, &mut never).await?
        {
            return Ok(());
        }
        self.commit(&follow.target, &touched, &parked, None, &fresh)
            .await?;
        self.remember(touched);
        self.progress.received += fresh.len() as u64;
        for receipt in receipts {
            self.ack(receipt).await;
        }
        Ok(())
    }

    /// Which of `ids` the target recorded as handled already, asked in a transaction that
    /// is rolled back.
    async fn seen<T: Inbox>(&self, target: &T, ids: &[Uuid]) -> Result<Vec<bool>, ProcessError> {
        let mut tx = target.begin().await.map_err(|e| self.store_error(e))?;
        let mut seen = Vec::with_capacity(ids.len());
        for id in ids {
            match target.record(&mut tx, P::NAME, *id).await {
                // Recorded now: new (a second copy in the batch is then seen).
                Ok(fresh) => seen.push(!fresh),
                Err(error) => {
                    target.rollback(tx).await;
                    return Err(self.store_error(error));
                }
            }
        }
        target.rollback(tx).await;
        Ok(seen)
    }

    /// Acknowledges a handled message. A failure only means it comes again, and is then
    /// skipped as seen.
    async fn ack(&mut self, receipt: ErasedReceipt) {
        if let Some(source) = self.source.as_mut().map(exclusive)
            && let Err(error) = source.ack(receipt).await
        {
            tracing::warn!(manager = P::NAME, %error, "acknowledging a message failed; it will come again and be skipped");
        }
    }

    /// Sends a message that is not one (no relay's headers) to the source's dead letters,
    /// and acknowledges it; if that fails, it is left to come again.
    async fn dead_letter(&mut self, receipt: ErasedReceipt, malformed: &BusError) {
        let Some(source) = self.source.as_mut().map(exclusive) else {
            return;
        };
        tracing::warn!(manager = P::NAME, error = %malformed, "dead-lettering a malformed message");
        let letter = DeadLetter {
            consumer: P::NAME.to_owned(),
            error: malformed.to_string(),
            attempts: 0,
        };
        match source.dead_letter(&receipt, &letter).await {
            Ok(()) => self.ack(receipt).await,
            Err(error) => {
                tracing::warn!(manager = P::NAME, %error, "dead-lettering failed; the message will come again");
            }
        }
    }

    /// Fires every deadline due now, each in a transaction of its own.
    async fn fire_due<S: EventStore, T: ProcessTarget>(
        &mut self,
        follow: &mut Follow<S, T>,
    ) -> Result<(), ProcessError> {
        let mut never: Shutdown<'_> = futures::future::pending().boxed().fuse();
        let checkpoint = self.progress.checkpoint;
        self.awaited.retain(|_, position| *position > checkpoint);
        // Waiting deadlines fire after a commit wakes the runner, not on a timer.
        self.next_due = None;
        loop {
            let due = follow
                .target
                .due_deadlines(P::NAME, Utc::now(), follow.batch_size)
                .await
                .map_err(|e| self.store_error(e))?;
            if due.is_empty() {
                let next = follow.target.next_deadline(P::NAME).await;
                self.next_due = next.map_err(|e| self.store_error(e))?;
                return Ok(());
            }
            let full = due.len() == follow.batch_size;
            let mut waiting = false;
            for deadline in due {
                if self.awaited.contains_key(&deadline.instance) {
                    // The events of commands this instance sent are not read yet: its
                    // deadlines fire after them.
                    waiting = true;
                    continue;
                }
                let mut touched = Touched::new();
                let current = self
                    .current(&follow.target, &mut touched, &deadline.instance)
                    .await?;
                let Some(instance) = current else {
                    continue;
                };
                // Cancelled or moved since it was read: not due any more.
                if instance.deadlines.get(&deadline.name) != Some(&deadline.due) {
                    self.cache.insert(deadline.instance, instance);
                    continue;
                }
                let step = super::on_deadline(
                    &self.manager,
                    &deadline.instance,
                    instance,
                    &deadline.name,
                    deadline.due,
                )
                .map_err(|source| ProcessError::Handler {
                    manager: P::NAME,
                    what: format!(
                        "deadline `{}` of instance `{}`",
                        deadline.name, deadline.instance
                    ),
                    source,
                })?;
                // The commands' cause: a UUID of its own per firing, for their metadata.
                let cause = Uuid::now_v7();
                self.outbox.clear();
                let queue = self.settle(&mut touched, step, cause, true).into();
                if !self
                    .deliver(follow, &mut touched, queue, &mut never)
                    .await?
                    || !self.flush(follow, &mut never).await?
                {
                    return Ok(());
                }
                self.commit(&follow.target, &touched, &[], None, &[])
                    .await?;
                self.remember(touched);
                self.progress.deadlines += 1;
            }
            if waiting {
                return Ok(());
            }
            if !full {
                let next = follow.target.next_deadline(P::NAME).await;
                self.next_due = next.map_err(|e| self.store_error(e))?;
                return Ok(());
            }
        }
    }

    /// Writes the instances a batch (or a deadline) touched, moving the checkpoint as
    /// `advance` says (by compare-and-set: another runner's move fences this one off).
    async fn commit<T: ProcessTarget>(
        &self,
        target: &T,
        touched: &Touched<P::State>,
        parked: &[ParkedEvent],
        advance: Option<Advance>,
        inbox: &[Uuid],
    ) -> Result<(), ProcessError> {
        let mut tx = target.begin().await.map_err(|e| self.store_error(e))?;
        for id in inbox {
            match target.record(&mut tx, P::NAME, *id).await {
                Ok(true) => {}
                // Checked before the batch ran: another runner handled it since.
                Ok(false) => {
                    target.rollback(tx).await;
                    return Err(ProcessError::Fenced(P::NAME));
                }
                Err(error) => {
                    target.rollback(tx).await;
                    return Err(self.store_error(error));
                }
            }
        }
        for event in parked {
            if let Err(error) = target.park(&mut tx, Self::dead_letters(), event).await {
                target.rollback(tx).await;
                return Err(self.store_error(error));
            }
        }
        for (id, slot) in touched {
            let saved = match slot {
                Slot::Running(instance) => {
                    let stored = StoredInstance {
                        state: self.encode(id, &instance.state)?,
                        deadlines: instance
                            .deadlines
                            .iter()
                            .map(|(name, due)| (name.clone(), *due))
                            .collect(),
                    };
                    let change = InstanceChange::Running {
                        instance: &stored,
                        deadlines_changed: self.committed.get(id) != Some(&instance.deadlines),
                    };
                    target.save_instance(&mut tx, P::NAME, id, change).await
                }
                Slot::Completed(state) => {
                    let archive = match self.archive {
                        true => Some(self.encode(id, state)?),
                        false => None,
                    };
                    let change = InstanceChange::Completed {
                        archive: archive.as_deref(),
                    };
                    target.save_instance(&mut tx, P::NAME, id, change).await
                }
                Slot::Absent => Ok(()),
            };
            if let Err(error) = saved {
                target.rollback(tx).await;
                return Err(self.store_error(error));
            }
        }
        match target.commit(tx, advance).await {
            Ok(()) => Ok(()),
            Err(CommitError::Moved(_)) => Err(ProcessError::Fenced(P::NAME)),
            Err(CommitError::Store(e)) => Err(self.store_error(e)),
        }
    }

    fn encode(&self, id: &str, state: &P::State) -> Result<String, ProcessError> {
        state.to_json().map_err(|e| {
            self.store_error(StoreError::Corrupt(format!(
                "the state of instance `{id}` of process manager `{}` does not encode: {e}",
                P::NAME
            )))
        })
    }
}
