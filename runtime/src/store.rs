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

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use uuid::Uuid;

use crate::error::{AppendError, StoreError};
use crate::event::{LogPosition, Metadata, StoredEvent};

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

    fn read_all(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send {
        (**self).read_all(after, limit)
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
    C: Copy + Send,
    F: Fn(C) -> Fut + Send,
    Fut: Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send,
{
    fn map_cursor(
        self,
        cursor: fn(&StoredEvent) -> C,
    ) -> impl Stream<Item = Result<StoredEvent, StoreError>> + Send {
        // State: the cursor, and whether the last page was full (more may follow).
        futures::stream::unfold(
            (self.after, true, self.fetch),
            move |(after, more, fetch)| async move {
                if !more {
                    return None;
                }
                match fetch(after).await {
                    Ok(page) => {
                        let full = page.len() == PAGE_SIZE;
                        let next = page.last().map_or(after, cursor);
                        let items = futures::stream::iter(page.into_iter().map(Ok));
                        Some((items.left_stream(), (next, full, fetch)))
                    }
                    Err(e) => Some((
                        futures::stream::once(async { Err(e) }).right_stream(),
                        (after, false, fetch),
                    )),
                }
            },
        )
        .flatten()
    }
}
