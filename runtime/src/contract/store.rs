//! The event store: the narrow backend trait [`EventStore`] every backend implements, and the
//! user-facing reading helpers built over it ([`EventStoreExt`]).
//!
//! The contract, which the conformance suite (`testing` feature) checks for any backend:
//! - `append` writes all of a command's events or none, and only if the stream is still at
//!   `expected_version`; sequences in a stream are 1, 2, 3, ... with no gap or duplicate.
//! - `read_stream` returns a stream's events in sequence order.
//! - `read_all` returns the global log in position order, and a reader that follows it from its
//!   last position never skips an event, even one whose transaction committed late.
//! - Snapshots are a cache: losing one only costs a replay.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use uuid::Uuid;

use crate::contract::error::{AppendError, StoreError};
use crate::contract::event::{LogPosition, Metadata, StoredEvent, StoredEventRef};

/// An event about to be appended, already serialized.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique id (UUID v7).
    pub event_id: Uuid,
    /// The stored type name.
    pub event_type: &'static str,
    /// The version of the type the payload is written as.
    pub event_version: u32,
    /// The JSON payload.
    pub payload: String,
    /// Correlation, causation and free key/values.
    pub metadata: Metadata,
    /// When the command that produced it was handled.
    pub recorded_at: DateTime<Utc>,
}

impl NewEvent {
    /// An event row written as-is, for fixtures and imports: a stored type name, the version
    /// its payload is written as (older versions are read back through the upcasters), and the
    /// payload. It gets a fresh id, no metadata and the current time.
    ///
    /// ```
    /// use cqrs_runtime::NewEvent;
    ///
    /// let v1 = NewEvent::raw("Deposited", 1, serde_json::json!({ "euros": 5 }));
    /// assert_eq!((v1.event_type, v1.event_version), ("Deposited", 1));
    /// assert_eq!(v1.payload, r#"{"euros":5}"#);
    /// ```
    pub fn raw(event_type: &'static str, event_version: u32, payload: serde_json::Value) -> Self {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type,
            event_version,
            payload: payload.to_string(),
            metadata: Metadata::default(),
            recorded_at: Utc::now(),
        }
    }

    /// The same event with this metadata.
    pub fn with_metadata(self, metadata: Metadata) -> Self {
        NewEvent { metadata, ..self }
    }

    /// The events of one append as the log holds them once committed at `positions`: for
    /// inline projections, which run before the commit.
    pub(crate) fn stored(
        events: &[NewEvent],
        aggregate_type: &str,
        aggregate_id: &str,
        expected_version: u64,
        positions: &[LogPosition],
    ) -> Vec<StoredEvent> {
        events
            .iter()
            .zip(positions)
            .enumerate()
            .map(|(offset, (event, &position))| StoredEvent {
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id: aggregate_id.to_owned(),
                sequence: expected_version + offset as u64 + 1,
                position,
                event_id: event.event_id,
                event_type: event.event_type.to_owned(),
                event_version: event.event_version,
                recorded_at: event.recorded_at,
                metadata: event.metadata.clone(),
                event: event.payload.clone(),
            })
            .collect()
    }
}

/// What a store keeps of a command that carried an id ([`Metadata::command_id`]): which
/// events it appended, until the store's retention forgets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    /// The aggregate type name.
    pub aggregate_type: String,
    /// The aggregate id.
    pub aggregate_id: String,
    /// The command's idempotency key.
    pub command_id: String,
    /// The sequence of the first event the command appended.
    pub first_sequence: u64,
    /// The sequence of its last event.
    pub last_sequence: u64,
    /// When the events were appended.
    pub recorded_at: DateTime<Utc>,
}

impl CommandRecord {
    /// The record an append of `events` at `expected_version` leaves, if its events carry a
    /// command id.
    pub(crate) fn of_append(
        aggregate_type: &str,
        aggregate_id: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> Option<CommandRecord> {
        let first = events.first()?;
        let command_id = first.metadata.command_id.clone()?;
        Some(CommandRecord {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            command_id,
            first_sequence: expected_version + 1,
            last_sequence: expected_version + events.len() as u64,
            recorded_at: first.recorded_at,
        })
    }
}

/// How long a store keeps command ids unless configured otherwise: a week, longer than any
/// client or process manager retries the same command.
pub const DEFAULT_COMMAND_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// When a store forgets command ids: those recorded more than `retention` ago, removed by the
/// appends themselves at most once per `min(retention, 1 minute)`, so that no task of its own
/// is needed and an idle store costs nothing.
#[derive(Debug)]
pub(crate) struct Retention {
    retention: Duration,
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Retention {
    pub(crate) fn new(retention: Duration) -> Self {
        Retention {
            retention,
            last: std::sync::Mutex::new(None),
        }
    }

    /// Records from before this instant are forgotten; `None` when the retention reaches
    /// back before any date a database holds (kept for ever).
    pub(crate) fn cutoff(&self) -> Option<DateTime<Utc>> {
        let retention = chrono::Duration::from_std(self.retention).ok()?;
        Utc::now()
            .checked_sub_signed(retention)
            .filter(|cutoff| cutoff.year() >= 1)
    }

    /// The cutoff to prune before, if a prune is due now (and marks it done).
    pub(crate) fn due(&self) -> Option<DateTime<Utc>> {
        let now = std::time::Instant::now();
        let cadence = self.retention.min(Duration::from_secs(60));
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < cadence) {
            return None;
        }
        *last = Some(now);
        self.cutoff()
    }
}

/// A stored snapshot of an aggregate's state at a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The aggregate type name.
    pub aggregate_type: String,
    /// The aggregate id.
    pub aggregate_id: String,
    /// The sequence of the last event folded into the state.
    pub version: u64,
    /// Identifies the shape of the state type that wrote it.
    pub fingerprint: u64,
    /// The state, as JSON.
    pub state: String,
}

/// The storage backend: the few operations an event store must provide.
///
/// Each method maps to one transaction of an SQL store. Use the [`Repository`](crate::Repository)
/// to execute commands and [`EventStoreExt`] to read; call these directly only to build a
/// backend or a tool.
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to a stream, all or nothing, if its last sequence is
    /// `expected_version` (0 for a new stream). Returns each event's position in the log.
    ///
    /// Fails with [`AppendError::Conflict`] if the stream moved on. Appending no events writes
    /// nothing, checks nothing and returns no positions.
    ///
    /// When the events carry a command id (the first event's [`Metadata::command_id`]), the
    /// append records it for the stream in the same transaction ([`CommandRecord`]); if the
    /// stream has it recorded already, nothing is written and the append fails with
    /// [`StoreError::DuplicateCommand`].
    fn append(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> impl Future<Output = Result<Vec<LogPosition>, AppendError>> + Send;

    /// Up to `limit` events of a stream with a sequence greater than `after`, in order.
    fn read_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// Folds every event of a stream with a sequence greater than `after` into `state`, in
    /// order, lending each to `f` (which may stop the fold with an error). The repository
    /// replays aggregates with it.
    ///
    /// The default reads pages with [`read_stream`](Self::read_stream). A backend lends its
    /// rows where it can instead (the in-memory store its events under its lock, SQLite each
    /// row as it steps), so that a replay copies no string; `f` runs wherever the backend
    /// reads, so it must be quick and must not block.
    fn fold_stream<T, F>(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        state: T,
        mut f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send + 'static,
        F: FnMut(&mut T, StoredEventRef<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        async move {
            let (mut state, mut after) = (state, after);
            loop {
                let page = self
                    .read_stream(aggregate_type, aggregate_id, after, PAGE_SIZE)
                    .await?;
                for event in &page {
                    f(&mut state, event.as_event_ref())?;
                    after = event.sequence;
                }
                if page.len() < PAGE_SIZE {
                    return Ok(state);
                }
            }
        }
    }

    /// Folds what loading an aggregate needs, in one read where the backend can: the newest
    /// snapshot of the aggregate (only when `fingerprint` is given), then its events.
    ///
    /// `start` receives the snapshot, whatever its fingerprint, and makes the fold's state. The
    /// events lent to `f` then begin at the snapshot's own event (the sequence equal to its
    /// version, so that the caller can check the stream has it) when the snapshot's fingerprint
    /// is `fingerprint`, and at the stream's first event otherwise. The repository loads
    /// aggregates with it.
    ///
    /// The default calls [`load_snapshot`](Self::load_snapshot), then
    /// [`fold_stream`](Self::fold_stream); PostgreSQL reads both in one statement (one round
    /// trip), SQLite in one read on one connection.
    fn fold_aggregate<T, S, F>(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        fingerprint: Option<u64>,
        start: S,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send + 'static,
        S: FnOnce(Option<Snapshot>) -> T + Send + 'static,
        F: FnMut(&mut T, StoredEventRef<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        async move {
            let snapshot = match fingerprint {
                Some(_) => self.load_snapshot(aggregate_type, aggregate_id).await?,
                None => None,
            };
            // From the snapshot's own event when it is of the wanted shape.
            let after = snapshot
                .as_ref()
                .filter(|s| Some(s.fingerprint) == fingerprint)
                .map_or(0, |s| s.version.saturating_sub(1));
            self.fold_stream(aggregate_type, aggregate_id, after, start(snapshot), f)
                .await
        }
    }

    /// Up to `limit` events of the global log after position `after`, in position order.
    ///
    /// An event not returned now (not yet committed) must never be skipped later: it must come
    /// after every position returned before it was committed. A backend whose writes can
    /// commit out of order returns events only up to the oldest write still in flight, so an
    /// event may become readable a moment after its append returned (in PostgreSQL, once every
    /// older transaction on the server has finished).
    fn read_all(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// Up to `limit` events of the aggregate types `aggregate_types` in the global log after
    /// position `after`, in position order: [`read_all`](Self::read_all) without the events
    /// of other types, with the same guarantee (an event not returned now is never skipped
    /// later). Projections and the relay read only the aggregate types they follow with it.
    ///
    /// The default reads the whole log and filters it; the SQL stores read an index on the
    /// type, one ordered range per type in one snapshot of the log, and merge them.
    fn read_all_of(
        &self,
        aggregate_types: &[&str],
        after: LogPosition,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send {
        async move {
            let (mut events, mut after) = (Vec::new(), after);
            loop {
                let page = self.read_all(after, limit).await?;
                let Some(last) = page.last().map(|e| e.position) else {
                    return Ok(events);
                };
                let full = page.len() >= limit;
                for event in page {
                    if aggregate_types.contains(&event.aggregate_type.as_str()) {
                        events.push(event);
                        if events.len() == limit {
                            return Ok(events);
                        }
                    }
                }
                if !full {
                    return Ok(events);
                }
                after = last;
            }
        }
    }

    /// The newest snapshot of an aggregate, if any.
    fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send;

    /// Stores a snapshot, replacing an older one of the same aggregate.
    fn save_snapshot(
        &self,
        snapshot: &Snapshot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The record of command `command_id` on a stream: the events it appended, if an append
    /// carried that id and the store's retention has not forgotten it yet.
    fn find_command(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        command_id: &str,
    ) -> impl Future<Output = Result<Option<CommandRecord>, StoreError>> + Send;

    /// How many events the log holds: the total a rebuild's progress is measured against.
    fn count_events(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The number of the newest event in the log (its [`LogPosition::event`]), 0 while the log
    /// is empty: one index lookup, what the lag gauges measure against and a readiness check
    /// can ping the store with.
    fn head(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// What traces call this store (OpenTelemetry's `db.system.name`): `"sqlite"`,
    /// `"postgresql"`, `"memory"`; the default says `"other"`.
    fn backend(&self) -> &'static str {
        "other"
    }

    /// A way to wait until the log may have grown: woken by this store's commits where the
    /// backend can tell, and at least every `poll` in any case (commits of other processes,
    /// lost notifications). The default only polls.
    fn watch(&self, poll: Duration) -> LogWatch {
        LogWatch::polling(poll)
    }
}

impl<S: EventStore> EventStore for Arc<S> {
    fn append(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> impl Future<Output = Result<Vec<LogPosition>, AppendError>> + Send {
        (**self).append(aggregate_type, aggregate_id, expected_version, events)
    }

    fn read_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send {
        (**self).read_stream(aggregate_type, aggregate_id, after, limit)
    }

    fn fold_stream<T, F>(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        state: T,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send + 'static,
        F: FnMut(&mut T, StoredEventRef<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        (**self).fold_stream(aggregate_type, aggregate_id, after, state, f)
    }

    fn fold_aggregate<T, St, F>(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        fingerprint: Option<u64>,
        start: St,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send + 'static,
        St: FnOnce(Option<Snapshot>) -> T + Send + 'static,
        F: FnMut(&mut T, StoredEventRef<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        (**self).fold_aggregate(aggregate_type, aggregate_id, fingerprint, start, f)
    }

    fn read_all(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send {
        (**self).read_all(after, limit)
    }

    fn read_all_of(
        &self,
        aggregate_types: &[&str],
        after: LogPosition,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send {
        (**self).read_all_of(aggregate_types, after, limit)
    }

    fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send {
        (**self).load_snapshot(aggregate_type, aggregate_id)
    }

    fn save_snapshot(
        &self,
        snapshot: &Snapshot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).save_snapshot(snapshot)
    }

    fn find_command(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        command_id: &str,
    ) -> impl Future<Output = Result<Option<CommandRecord>, StoreError>> + Send {
        (**self).find_command(aggregate_type, aggregate_id, command_id)
    }

    fn count_events(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).count_events()
    }

    fn head(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).head()
    }

    fn backend(&self) -> &'static str {
        (**self).backend()
    }

    fn watch(&self, poll: Duration) -> LogWatch {
        (**self).watch(poll)
    }
}

/// Why a [`LogWatch`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A commit was announced.
    Notified,
    /// The poll interval passed without an announcement (or the announcer is down).
    Polled,
}

/// Waits until new events may be in the log (see [`EventStore::watch`]).
///
/// Wake-ups are hints, not data: a follower re-reads the log from its checkpoint after each
/// one, so a missed announcement only delays it to the next poll.
#[derive(Debug)]
pub struct LogWatch {
    source: WatchSource,
    poll: Duration,
}

#[derive(Debug)]
enum WatchSource {
    Poll,
    Local(tokio::sync::watch::Receiver<()>),
    Waker(Box<dyn WatchWaker>),
}

/// A backend's own way of announcing commits (PostgreSQL's `LISTEN`, for one), for a
/// [`LogWatch`] built with [`LogWatch::with_waker`].
pub trait WatchWaker: Send + fmt::Debug {
    /// Starts listening now, so that commits from here on wake the next `wait`.
    fn listen(&mut self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Waits for an announced commit, or for the waker's poll interval at most.
    fn wait(&mut self) -> BoxFuture<'_, Wake>;
}

impl LogWatch {
    /// A watch that only waits for the poll interval.
    pub fn polling(poll: Duration) -> Self {
        LogWatch {
            source: WatchSource::Poll,
            poll,
        }
    }

    /// A watch woken through a channel the store signals after each commit.
    pub(crate) fn local(receiver: tokio::sync::watch::Receiver<()>, poll: Duration) -> Self {
        LogWatch {
            source: WatchSource::Local(receiver),
            poll,
        }
    }

    /// A watch woken by a backend's own announcements; `waker` waits at most `poll`.
    pub fn with_waker(waker: impl WatchWaker + 'static, poll: Duration) -> Self {
        LogWatch {
            source: WatchSource::Waker(Box::new(waker)),
            poll,
        }
    }

    /// The longest a [`wait`](Self::wait) lasts.
    pub fn poll_interval(&self) -> Duration {
        self.poll
    }

    /// Starts listening now, so that commits from here on wake the next [`wait`](Self::wait).
    pub async fn listen(&mut self) -> Result<(), StoreError> {
        match &mut self.source {
            WatchSource::Poll => Ok(()),
            WatchSource::Local(receiver) => {
                receiver.mark_unchanged();
                Ok(())
            }
            WatchSource::Waker(waker) => waker.listen().await,
        }
    }

    /// Waits for an announced commit, or for the poll interval at most.
    pub async fn wait(&mut self) -> Wake {
        match &mut self.source {
            WatchSource::Poll => {
                tokio::time::sleep(self.poll).await;
                Wake::Polled
            }
            WatchSource::Local(receiver) => {
                match tokio::time::timeout(self.poll, receiver.changed()).await {
                    Ok(Ok(())) => Wake::Notified,
                    // Timed out, or the store is gone (then polling finds nothing new).
                    Ok(Err(_)) => {
                        self.source = WatchSource::Poll;
                        Wake::Polled
                    }
                    Err(_) => Wake::Polled,
                }
            }
            WatchSource::Waker(waker) => waker.wait().await,
        }
    }
}

/// How many rows one page of a streamed read holds.
pub const PAGE_SIZE: usize = 2048;

/// Streaming reads over any [`EventStore`]: pages are fetched as the stream is polled, so
/// memory does not grow with the length of what is read.
pub trait EventStoreExt: EventStore {
    /// A stream's events with a sequence greater than `after`, in order.
    fn stream_events<'a>(
        &'a self,
        aggregate_type: &'a str,
        aggregate_id: &'a str,
        after: u64,
    ) -> BoxStream<'a, Result<StoredEvent, StoreError>>
    where
        Self: Sized,
    {
        paged(after, move |after| {
            self.read_stream(aggregate_type, aggregate_id, after, PAGE_SIZE)
        })
        .map_cursor(|e| e.sequence)
        .boxed()
    }

    /// The global log after a position, in order, up to what can be read now.
    fn log_events(&self, after: LogPosition) -> BoxStream<'_, Result<StoredEvent, StoreError>>
    where
        Self: Sized,
    {
        paged(after, move |after| self.read_all(after, PAGE_SIZE))
            .map_cursor(|e| e.position)
            .boxed()
    }
}

impl<S: EventStore> EventStoreExt for S {}

/// A paged read, before saying which field of an event is the cursor.
struct Paged<C, F> {
    after: C,
    fetch: F,
}

fn paged<C, F, Fut>(after: C, fetch: F) -> Paged<C, F>
where
    C: Copy + Send,
    F: Fn(C) -> Fut + Send,
    Fut: Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send,
{
    Paged { after, fetch }
}

impl<C, F, Fut> Paged<C, F>
where
    C: Copy + Send + Unpin,
    F: Fn(C) -> Fut + Send + Unpin,
    Fut: Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send,
{
    fn map_cursor(self, cursor: fn(&StoredEvent) -> C) -> Prefetch<C, F, Fut> {
        let pending = Some(Box::pin((self.fetch)(self.after)));
        Prefetch {
            fetch: self.fetch,
            cursor,
            pending,
            fetched: None,
            current: Vec::new().into_iter(),
        }
    }
}

/// Pages of events, each next page fetched while the one before it is handed out, so that the
/// database works on the next page while the reader decodes and consumes this one. An error
/// comes in its place, after every event before it, and ends the stream.
struct Prefetch<C, F, Fut> {
    fetch: F,
    cursor: fn(&StoredEvent) -> C,
    /// The page being fetched; none once the last page came (shorter than a full page).
    pending: Option<Pin<Box<Fut>>>,
    /// The page fetched, waiting for the current one to be handed out.
    fetched: Option<Result<Vec<StoredEvent>, StoreError>>,
    current: std::vec::IntoIter<StoredEvent>,
}

impl<C, F, Fut> Stream for Prefetch<C, F, Fut>
where
    C: Copy + Unpin,
    F: Fn(C) -> Fut + Unpin,
    Fut: Future<Output = Result<Vec<StoredEvent>, StoreError>>,
{
    type Item = Result<StoredEvent, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.fetched.is_none()
                && let Some(pending) = &mut this.pending
                && let Poll::Ready(page) = pending.as_mut().poll(cx)
            {
                this.pending = None;
                this.fetched = Some(page);
            }
            if let Some(event) = this.current.next() {
                return Poll::Ready(Some(Ok(event)));
            }
            match this.fetched.take() {
                Some(Ok(page)) => {
                    if page.len() == PAGE_SIZE
                        && let Some(last) = page.last()
                    {
                        this.pending = Some(Box::pin((this.fetch)((this.cursor)(last))));
                    }
                    this.current = page.into_iter();
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None if this.pending.is_none() => return Poll::Ready(None),
                None => return Poll::Pending,
            }
        }
    }
}
