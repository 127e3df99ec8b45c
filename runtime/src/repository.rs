//! The repository: loads an aggregate (snapshot + tail), runs a command against it, appends the
//! resulting events with optimistic concurrency, and takes snapshots when they are due.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};

use chrono::Utc;
use tracing::Instrument;
use uuid::Uuid;

use crate::contract::aggregate::{Aggregate, AggregateRoot, Caching};
use crate::contract::command::CommandContext;
use crate::contract::error::{AppendError, CommandError, StoreError};
use crate::contract::event::{DomainEvent, EventEnvelope, Metadata, StoredEvent, StoredEventRef};
use crate::contract::store::{CommandRecord, EventStore, NewEvent, Snapshot};
use crate::contract::trace;
use crate::observe::metrics::AggregateMeters;

mod cache;
mod gate;

use cache::Cache;
pub use cache::CacheLimits;
use gate::Gates;

/// What to do when an append finds that another writer got there first: run the command again
/// on the reloaded aggregate, after a pause that doubles with each attempt and carries a random
/// part (jitter), so that writers who collided once do not collide again in step.
///
/// Inside one process the repository already queues the commands of one aggregate, so
/// conflicts come from other processes (or other repositories) writing the same aggregate.
/// The default makes up to 30 attempts, pausing 1 ms, then 2, 4, ... up to 100 ms, each plus a
/// random amount up to itself: under contention that does not let up, it gives up after 2.5
/// to 5 seconds of pauses.
///
/// ```
/// use std::time::Duration;
/// use cqrs_runtime::RetryPolicy;
///
/// let patient = RetryPolicy::attempts(20).backoff(Duration::from_millis(5), Duration::from_secs(1));
/// assert_eq!(patient.max_attempts(), 20);
/// assert_eq!(RetryPolicy::default().max_attempts(), 30);
/// assert_eq!(RetryPolicy::NONE.max_attempts(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    first_delay: Duration,
    max_delay: Duration,
}

impl RetryPolicy {
    /// Never retry: a conflict is returned to the caller.
    pub const NONE: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        first_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };

    /// Re-load the aggregate and re-run the handler, up to `max_attempts` runs in all (at least
    /// one), with the default pauses between them.
    ///
    /// Safe because handlers only decide: nothing was written by the attempt that lost.
    pub const fn attempts(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts: if max_attempts == 0 { 1 } else { max_attempts },
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(100),
        }
    }

    /// The pause before the first retry, doubled for each next one up to `max` (each plus a
    /// random amount up to itself). `Duration::ZERO` for both retries at once.
    pub const fn backoff(self, first: Duration, max: Duration) -> Self {
        RetryPolicy {
            first_delay: first,
            max_delay: if max.as_nanos() < first.as_nanos() {
                first
            } else {
                max
            },
            ..self
        }
    }

    /// How many runs a command gets at most.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The pause before the first retry (before jitter).
    pub fn first_delay(&self) -> Duration {
        self.first_delay
    }

    /// The longest pause between two attempts (before jitter).
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The pauses before each retry, jittered.
    fn delays(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::new()
            .with_min_delay(self.first_delay)
            .with_max_delay(self.max_delay)
            .with_jitter()
            .without_max_times()
            .build()
    }
}

impl Default for RetryPolicy {
    /// Up to 30 attempts, pausing from 1 ms up to 100 ms.
    fn default() -> Self {
        RetryPolicy::attempts(30)
    }
}

/// The result of a command that was handled and committed.
pub struct Committed<A: Aggregate> {
    /// The aggregate after the new events (for a duplicate, as it is now).
    pub root: AggregateRoot<A>,
    /// The recorded events, in order; empty if the handler decided on none.
    pub events: Vec<EventEnvelope<A::Event>>,
    /// The command carried an id ([`Metadata::command_id`]) that this aggregate had recorded
    /// already: nothing ran, and `events` are the ones its first run recorded.
    pub duplicate: bool,
}

impl<A: Aggregate> fmt::Debug for Committed<A>
where
    A: fmt::Debug,
    A::Event: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Committed")
            .field("root", &self.root)
            .field("events", &self.events)
            .field("duplicate", &self.duplicate)
            .finish()
    }
}

/// Executes commands against aggregates of type `A` kept in store `S`.
///
/// ```
/// # use cqrs_runtime::doc_support::{Counter, CounterCommand};
/// use cqrs_runtime::{InMemoryStore, Repository, RetryPolicy};
///
/// # futures::executor::block_on(async {
/// let repo = Repository::<Counter, _>::new(InMemoryStore::new()).retry(RetryPolicy::attempts(3));
/// let done = repo.execute(&"c-1".to_owned(), CounterCommand::Add(2)).await.unwrap();
/// assert_eq!(done.root.version(), 1);
/// assert_eq!(repo.load(&"c-1".to_owned()).await.unwrap().state().total, 2);
/// # });
/// ```
///
/// Cloning is cheap when the store is (every store of this crate is a handle): clones share the
/// store and the services.
pub struct Repository<A: Aggregate, S> {
    store: S,
    services: Arc<A::Services>,
    retry: RetryPolicy,
    cache: Option<Arc<Cache<A>>>,
    gates: Arc<Gates>,
    meters: Arc<AggregateMeters>,
}

impl<A: Aggregate, S: Clone> Clone for Repository<A, S> {
    fn clone(&self) -> Self {
        Repository {
            store: self.store.clone(),
            services: Arc::clone(&self.services),
            retry: self.retry,
            cache: self.cache.clone(),
            gates: Arc::clone(&self.gates),
            meters: Arc::clone(&self.meters),
        }
    }
}

impl<A: Aggregate, S: fmt::Debug> fmt::Debug for Repository<A, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repository")
            .field("aggregate", &A::TYPE)
            .field("store", &self.store)
            .field("retry", &self.retry)
            .field("cached", &self.cache.as_ref().map(|c| c.usage()))
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate, S: EventStore> Repository<A, S>
where
    A::Services: Default,
{
    /// A repository over `store`, with default services, the default [`RetryPolicy`], and the
    /// aggregate cache with its default limits (see [`cache`](Self::cache)).
    pub fn new(store: S) -> Self {
        Repository::with_services(store, A::Services::default())
    }
}

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// A repository whose handlers receive `services`, with the default [`RetryPolicy`] and
    /// the aggregate cache at its default limits (see [`cache`](Self::cache)).
    pub fn with_services(store: S, services: A::Services) -> Self {
        Repository {
            meters: Arc::new(AggregateMeters::new(A::TYPE, store.backend())),
            store,
            services: Arc::new(services),
            retry: RetryPolicy::default(),
            cache: A::caching()
                .map(|caching| Arc::new(Cache::new(CacheLimits::default(), caching))),
            gates: Arc::default(),
        }
    }

    /// Sets the limits of the aggregate cache: the committed state of the most recently used
    /// aggregates, kept in memory so that a command on one of them reads nothing from the
    /// store. It decides on the cached state and appends at its version. Clones of the
    /// repository share the cache.
    ///
    /// The cache is on by default, at [`CacheLimits::default`], for every aggregate whose
    /// [`Aggregate::caching`] says how to copy it (a derived aggregate that is `Clone`); this
    /// method turns it on for any `Clone` aggregate. [`no_cache`](Self::no_cache) turns it off.
    ///
    /// A cached state made stale by another writer (another process or machine) is never
    /// trusted for an outcome: an append from it fails with a conflict, and a refusal or a
    /// decision to record nothing is confirmed with one read of the stream's tail. Either way
    /// the repository then reloads from the store and runs the command again, without counting
    /// it against the [`RetryPolicy`]. Commands return what they would without the cache; the
    /// reads are saved when they succeed.
    ///
    /// ```
    /// use cqrs_runtime::{CacheLimits, InMemoryStore, Repository};
    /// use cqrs_runtime::doc_support::{Counter, CounterCommand};
    ///
    /// # futures::executor::block_on(async {
    /// let repo = Repository::<Counter, _>::new(InMemoryStore::new())
    ///     .cache(CacheLimits::entries(100_000).bytes(256 << 20));
    /// repo.execute(&"c-1".to_owned(), CounterCommand::Add(2)).await.unwrap();
    /// // Decided on the cached state: no load.
    /// let done = repo.execute(&"c-1".to_owned(), CounterCommand::Add(3)).await.unwrap();
    /// assert_eq!(done.root.state().total, 5);
    /// # });
    /// ```
    pub fn cache(mut self, limits: CacheLimits) -> Self
    where
        A: Clone,
    {
        let caching = A::caching().unwrap_or_else(Caching::cloned);
        self.cache = Some(Arc::new(Cache::new(limits, caching)));
        self
    }

    /// Turns the aggregate cache off: every command loads its aggregate from the store.
    pub fn no_cache(mut self) -> Self {
        self.cache = None;
        self
    }

    /// Whether commands may decide on cached state (see [`cache`](Self::cache)).
    pub fn is_cached(&self) -> bool {
        self.cache.is_some()
    }

    /// Sets the retry policy for version conflicts.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The retry policy in force.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The services handed to handlers.
    pub fn services(&self) -> &A::Services {
        &self.services
    }

    /// Loads an aggregate: its newest usable snapshot, then every later event.
    ///
    /// An aggregate with no events loads as version 0 ([`AggregateRoot::exists`] is false).
    pub async fn load(&self, id: &A::Id) -> Result<AggregateRoot<A>, StoreError> {
        let id_str = id.to_string();
        let span = work_span!(
            "load",
            "aggregate.type" = A::TYPE,
            aggregate.id = %id_str,
            load.cache_hit = false,
            load.snapshot_used = tracing::field::Empty,
            load.events = tracing::field::Empty,
        );
        let started = Instant::now();
        let replay = self.replay(id, &id_str).instrument(span.clone()).await;
        self.meters.loaded(started.elapsed());
        let replay = replay?;
        span.record("load.snapshot_used", replay.root.snapshot_version > 0);
        span.record("load.events", replay.events);
        Ok(replay.root)
    }

    /// The snapshot and the events after it, folded; again from the start when the snapshot
    /// cannot be used.
    async fn replay(&self, id: &A::Id, id_str: &str) -> Result<Replay<A>, StoreError> {
        let fingerprint = A::snapshots().map(|codec| codec.fingerprint);
        let fresh = AggregateRoot::new(id.clone());
        let replay = self
            .store
            .fold_aggregate(
                A::TYPE,
                id_str,
                fingerprint,
                move |snapshot| Replay::start(fresh, snapshot),
                Replay::step,
            )
            .await?;
        let why = match replay.snapshot {
            SnapshotUse::None | SnapshotUse::Restored if replay.snapshot_found => {
                return Ok(replay);
            }
            SnapshotUse::Stale(stored) => {
                tracing::warn!(
                    aggregate_type = A::TYPE,
                    aggregate_id = id_str,
                    stored = format_args!("{stored:016x}"),
                    current = format_args!("{:016x}", fingerprint.unwrap_or_default()),
                    "ignoring a snapshot written for another shape of the state; replaying the stream"
                );
                // The store lent the whole stream.
                return Ok(replay);
            }
            SnapshotUse::Undecodable(error) => {
                format!("ignoring a snapshot that does not decode ({error}); replaying the stream")
            }
            SnapshotUse::None | SnapshotUse::Restored => {
                "ignoring a snapshot whose version is not in the stream; replaying the stream"
                    .to_owned()
            }
        };
        tracing::warn!(aggregate_type = A::TYPE, aggregate_id = %id_str, "{why}");
        let fresh = Replay::start(AggregateRoot::new(id.clone()), None);
        self.store
            .fold_stream(A::TYPE, id_str, 0, fresh, Replay::step)
            .await
    }

    /// Runs a command and commits its events, with empty metadata.
    pub async fn execute(
        &self,
        id: &A::Id,
        command: impl Into<A::Command>,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A::Command: Clone,
    {
        self.execute_with(id, command, Metadata::default()).await
    }

    /// Runs a command and commits its events, each recorded with `metadata`.
    ///
    /// Commands on one aggregate run one at a time in this repository and its clones: a
    /// command waits for the one before it on the same id instead of racing it to the store. (A
    /// handler must therefore not run a command on its own aggregate through the same
    /// repository.) On a version conflict, which then comes from another process or
    /// repository, the command is re-run on the reloaded aggregate as the [`RetryPolicy`]
    /// allows, after its pause; the last conflict is returned when attempts run out.
    pub async fn execute_with(
        &self,
        id: &A::Id,
        command: impl Into<A::Command>,
        metadata: Metadata,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A::Command: Clone,
    {
        let command = command.into();
        let id_str = id.to_string();
        let command_name = A::command_name(&command);
        let span = work_span!(
            "command",
            "aggregate.type" = A::TYPE,
            aggregate.id = %id_str,
            command.name = command_name,
            command.expected_version = tracing::field::Empty,
            command.attempts = tracing::field::Empty,
            command.outcome = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let result = self
            .run(id, &id_str, command, &metadata, &span)
            .instrument(span.clone())
            .await;
        let (outcome, failed) = match &result {
            Ok(committed) if committed.duplicate => ("duplicate", false),
            Ok(committed) if committed.events.is_empty() => ("unchanged", false),
            Ok(_) => ("committed", false),
            Err(CommandError::Rejected(_)) => ("rejected", false),
            Err(CommandError::Conflict(_)) => ("conflict", true),
            Err(_) => ("failed", true),
        };
        span.record("command.outcome", outcome);
        span.record("otel.status_code", if failed { "ERROR" } else { "OK" });
        self.meters.command(command_name, outcome);
        result
    }

    /// The body of [`execute_with`](Self::execute_with), inside its span.
    async fn run(
        &self,
        id: &A::Id,
        id_str: &str,
        command: A::Command,
        metadata: &Metadata,
        span: &tracing::Span,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A::Command: Clone,
    {
        let _turn = self.gates.enter(id_str).await;
        if let Some(first) = self.first_run(id, id_str, metadata).await? {
            return Ok(first);
        }
        let mut attempt = 1;
        let mut delays = None;
        loop {
            span.record("command.attempts", attempt);
            // A cached root saves the load; a stale one shows as a conflict below.
            let cached = self.cache.as_ref().and_then(|c| c.take(id_str));
            let from_cache = cached.is_some();
            if self.cache.is_some() {
                self.meters.cache(from_cache);
            }
            let root = match cached {
                Some(root) => work_span!(
                    "load",
                    "aggregate.type" = A::TYPE,
                    aggregate.id = %id_str,
                    load.cache_hit = true,
                    load.snapshot_used = false,
                    load.events = 0,
                )
                .in_scope(|| root),
                None => self.load(id).await?,
            };
            let backup = self.cache.as_ref().map(|c| c.copy(&root));
            let version = root.version;
            span.record("command.expected_version", version);
            let outcome = self
                .decide_and_commit(root, command.clone(), metadata)
                .await;
            // An append proves the cached state was current (it was conditional on its
            // version); a refusal or a decision to record nothing proves nothing, so it is
            // confirmed against the store, and made again on a fresh load if the state was stale.
            let unproven = matches!(&outcome, Err(CommandError::Rejected(_)))
                || matches!(&outcome, Ok(c) if c.events.is_empty());
            if from_cache && unproven && !self.is_current(id_str, version).await? {
                tracing::debug!("the cached aggregate was stale; reloading");
                continue;
            }
            match outcome {
                Ok(committed) => {
                    if let Some(cache) = &self.cache {
                        cache.put(id_str, &committed.root);
                    }
                    return Ok(committed);
                }
                Err(CommandError::Conflict(conflict)) => {
                    self.meters.conflict();
                    // The writer that got there first may have been this very command, sent
                    // twice: then its first run is the answer.
                    if let Some(first) = self.first_run(id, id_str, metadata).await? {
                        return Ok(first);
                    }
                    if from_cache {
                        tracing::debug!(%conflict, "the cached aggregate was stale; reloading");
                        continue;
                    }
                    if attempt >= self.retry.max_attempts {
                        return Err(CommandError::Conflict(conflict));
                    }
                    let delay = delays
                        .get_or_insert_with(|| self.retry.delays())
                        .next()
                        .unwrap_or(self.retry.max_delay);
                    tracing::debug!(%conflict, attempt, ?delay, "retrying a command after a conflict");
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    self.meters.retry();
                    attempt += 1;
                }
                Err(error) => {
                    // A refusal leaves the aggregate as it was: keep it cached.
                    if let (Some(cache), Some(root), CommandError::Rejected(_)) =
                        (&self.cache, backup, &error)
                    {
                        cache.put(id_str, &root);
                    }
                    return Err(error);
                }
            }
        }
    }

    /// The first outcome of the command, if it carries an id this aggregate has recorded.
    async fn first_run(
        &self,
        id: &A::Id,
        id_str: &str,
        metadata: &Metadata,
    ) -> Result<Option<Committed<A>>, StoreError> {
        let Some(command_id) = &metadata.command_id else {
            return Ok(None);
        };
        match self.store.find_command(A::TYPE, id_str, command_id).await? {
            Some(record) => self.first_outcome(id, &record).await.map(Some),
            None => Ok(None),
        }
    }

    /// What a recorded command did: the events it appended, read back, and the aggregate as
    /// it is now.
    async fn first_outcome(
        &self,
        id: &A::Id,
        record: &CommandRecord,
    ) -> Result<Committed<A>, StoreError> {
        tracing::debug!(command_id = %record.command_id, "the command ran before; answering with its first outcome");
        let count = record.last_sequence + 1 - record.first_sequence;
        let stored = self
            .store
            .read_stream(
                A::TYPE,
                &record.aggregate_id,
                record.first_sequence - 1,
                usize::try_from(count).unwrap_or(usize::MAX),
            )
            .await?;
        let events = stored
            .into_iter()
            .map(StoredEvent::decode)
            .collect::<Result<Vec<_>, _>>()?;
        let root = self.load(id).await?;
        if let Some(cache) = &self.cache {
            cache.put(&record.aggregate_id, &root);
        }
        Ok(Committed {
            root,
            events,
            duplicate: true,
        })
    }

    /// Whether the stream is still at `version` (nothing was appended after it).
    async fn is_current(&self, id_str: &str, version: u64) -> Result<bool, StoreError> {
        let after = self.store.read_stream(A::TYPE, id_str, version, 1).await?;
        Ok(after.is_empty())
    }

    /// Runs a command on an already loaded aggregate and commits its events.
    ///
    /// Fails with a conflict if the stream moved on since `root` was loaded; no retry.
    pub async fn decide_and_commit(
        &self,
        mut root: AggregateRoot<A>,
        command: A::Command,
        metadata: &Metadata,
    ) -> Result<Committed<A>, CommandError<A::Error>> {
        let cx = CommandContext::new(&root.id, root.version, &*self.services, metadata);
        let events = root
            .state
            .handle(command, &cx)
            .await
            .map_err(CommandError::Rejected)?;
        if events.is_empty() {
            return Ok(Committed {
                root,
                events: Vec::new(),
                duplicate: false,
            });
        }
        let id_str = root.id.to_string();
        let recorded_at = Utc::now();
        let metadata = trace::with_current_context(metadata);
        let new_events = events
            .iter()
            .map(|event| {
                let payload = event.encode().map_err(|source| StoreError::Encode {
                    aggregate_type: A::TYPE.to_owned(),
                    aggregate_id: id_str.clone(),
                    event_type: event.event_type().to_owned(),
                    source,
                })?;
                Ok(NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: event.event_type(),
                    event_version: event.event_version(),
                    payload,
                    metadata: Metadata::clone(&metadata),
                    recorded_at,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let append = work_span!(
            "append",
            db.system.name = self.store.backend(),
            "aggregate.type" = A::TYPE,
            aggregate.id = %id_str,
            append.expected_version = root.version,
            append.events = new_events.len(),
        );
        let started = Instant::now();
        let positions = self
            .store
            .append(A::TYPE, &id_str, root.version, &new_events)
            .instrument(append)
            .await;
        let positions = match positions {
            Ok(positions) => {
                self.meters.appended(new_events.len(), started.elapsed());
                positions
            }
            Err(AppendError::Store(StoreError::DuplicateCommand(record))) => {
                // Another run of the same command (another process, or a retry that raced
                // this one) recorded it first.
                self.meters.append_failed(started.elapsed());
                return Ok(self.first_outcome(&root.id, &record).await?);
            }
            Err(error) => {
                self.meters.append_failed(started.elapsed());
                return Err(error.into());
            }
        };
        let first = root.version + 1;
        let envelopes: Vec<_> = events
            .into_iter()
            .zip(new_events)
            .zip(positions)
            .enumerate()
            .map(|(i, ((event, new), position))| EventEnvelope {
                aggregate_type: A::TYPE.to_owned(),
                aggregate_id: id_str.clone(),
                sequence: first + i as u64,
                position,
                event_id: new.event_id,
                event_type: new.event_type.to_owned(),
                event_version: new.event_version,
                recorded_at,
                metadata: new.metadata,
                event,
            })
            .collect();
        for envelope in &envelopes {
            root.apply(envelope);
        }
        self.snapshot_if_due(&id_str, &mut root).await;
        Ok(Committed {
            root,
            events: envelopes,
            duplicate: false,
        })
    }

    /// Snapshots are a cache: failing to write one is logged, never returned to the caller
    /// whose events are already committed.
    async fn snapshot_if_due(&self, id_str: &str, root: &mut AggregateRoot<A>) {
        let Some(codec) = A::snapshots() else {
            return;
        };
        if root.version - root.snapshot_version < codec.every {
            return;
        }
        let state = match codec.encode(&root.state) {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(aggregate_type = A::TYPE, aggregate_id = id_str, %error, "cannot encode a snapshot");
                return;
            }
        };
        let snapshot = Snapshot {
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: id_str.to_owned(),
            version: root.version,
            fingerprint: codec.fingerprint,
            state,
        };
        match self.store.save_snapshot(&snapshot).await {
            Ok(()) => root.snapshot_version = root.version,
            Err(error) => {
                tracing::warn!(aggregate_type = A::TYPE, aggregate_id = id_str, %error, "cannot store a snapshot")
            }
        }
    }
}

/// A replay in progress: the root, and one envelope reused for every event, so that applying an
/// event allocates nothing but the decoded payload.
struct Replay<A: Aggregate> {
    root: AggregateRoot<A>,
    /// What became of the stored snapshot.
    snapshot: SnapshotUse,
    /// The first event must be the snapshot's own.
    check_snapshot: bool,
    /// Whether the snapshot's event was there (true without a snapshot). While false, the rest
    /// is skipped: the load replays from the start.
    snapshot_found: bool,
    /// How many events were applied.
    events: u64,
    envelope: Option<EventEnvelope<A::Event>>,
}

/// What a load did with the aggregate's stored snapshot.
enum SnapshotUse {
    /// There was none, or the aggregate takes none.
    None,
    /// The state starts from it.
    Restored,
    /// Written for another shape of the state (its fingerprint): replayed from the start.
    Stale(u64),
    /// Of this shape, but its state does not decode: replayed again, from the start.
    Undecodable(serde_json::Error),
}

impl<A: Aggregate> Replay<A> {
    /// Starts from the stored snapshot when it is of this state's shape and decodes. The store
    /// then lends events from the snapshot's own on, else from the stream's first
    /// ([`EventStore::fold_aggregate`]).
    fn start(mut root: AggregateRoot<A>, snapshot: Option<Snapshot>) -> Self {
        let codec = A::snapshots();
        let snapshot = match (snapshot, codec) {
            (Some(snapshot), Some(codec)) if snapshot.fingerprint != codec.fingerprint => {
                SnapshotUse::Stale(snapshot.fingerprint)
            }
            (Some(snapshot), Some(codec)) => match codec.decode(&snapshot.state) {
                Ok(state) => {
                    root.state = state;
                    root.version = snapshot.version;
                    root.snapshot_version = snapshot.version;
                    SnapshotUse::Restored
                }
                Err(error) => SnapshotUse::Undecodable(error),
            },
            _ => SnapshotUse::None,
        };
        let check_snapshot = root.snapshot_version > 0;
        Replay {
            root,
            // An undecodable snapshot's events are skipped: the load reads the stream again.
            snapshot_found: !check_snapshot && !matches!(snapshot, SnapshotUse::Undecodable(_)),
            snapshot,
            check_snapshot,
            events: 0,
            envelope: None,
        }
    }

    fn step(&mut self, stored: StoredEventRef<'_>) -> Result<(), StoreError> {
        if self.check_snapshot {
            self.check_snapshot = false;
            self.snapshot_found = stored.sequence == self.root.version;
            return Ok(());
        }
        if !self.snapshot_found {
            return Ok(());
        }
        if stored.sequence != self.root.version + 1 {
            return Err(StoreError::Corrupt(format!(
                "{} `{}`: expected sequence {} after {}, found {}",
                A::TYPE,
                stored.aggregate_id,
                self.root.version + 1,
                self.root.version,
                stored.sequence
            )));
        }
        let event = stored.decode::<A::Event>()?;
        // Updated in place: nothing of the previous event's envelope moves or is freed but its
        // payload.
        let envelope = match &mut self.envelope {
            Some(envelope) => {
                envelope.sequence = stored.sequence;
                envelope.position = stored.position;
                envelope.event_id = stored.event_id;
                if envelope.event_type != stored.event_type {
                    envelope.event_type.clear();
                    envelope.event_type.push_str(stored.event_type);
                }
                envelope.event_version = stored.event_version;
                envelope.recorded_at = stored.recorded_at;
                if envelope.metadata != *stored.metadata {
                    envelope.metadata = stored.metadata.into_owned();
                }
                envelope.event = event;
                envelope
            }
            slot @ None => slot.insert(EventEnvelope {
                aggregate_type: stored.aggregate_type.to_owned(),
                aggregate_id: stored.aggregate_id.to_owned(),
                sequence: stored.sequence,
                position: stored.position,
                event_id: stored.event_id,
                event_type: stored.event_type.to_owned(),
                event_version: stored.event_version,
                recorded_at: stored.recorded_at,
                metadata: stored.metadata.into_owned(),
                event,
            }),
        };
        self.root.apply(envelope);
        self.events += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_each_with_jitter_up_to_itself() {
        let policy = RetryPolicy::attempts(30);
        let ms = Duration::from_millis;
        for _ in 0..50 {
            let delays: Vec<Duration> = policy.delays().take(12).collect();
            for (k, delay) in delays.iter().enumerate() {
                let base = ms(1 << k).min(ms(100));
                assert!(
                    base <= *delay && *delay <= base * 2,
                    "pause {k}: {delay:?} is not within [{base:?}, {:?}]",
                    base * 2
                );
            }
        }
        let none = RetryPolicy::attempts(3).backoff(Duration::ZERO, Duration::ZERO);
        assert!(
            none.delays().take(5).all(|d| d.is_zero()),
            "no pause when asked for none"
        );
        let clamped = RetryPolicy::attempts(3).backoff(ms(10), ms(1));
        assert_eq!(
            (clamped.first_delay(), clamped.max_delay()),
            (ms(10), ms(10))
        );
        assert_eq!(
            RetryPolicy::attempts(0).max_attempts(),
            1,
            "one run at least"
        );
    }
}
