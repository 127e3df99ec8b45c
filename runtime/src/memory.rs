//! An in-memory event store: thread-safe, real (it passes the conformance suite), gone when the
//! process ends. For tests, examples and caches.

use std::collections::HashMap;
use std::future::{Future, ready};
use std::sync::{Arc, PoisonError, RwLock};

use crate::error::{AppendError, Conflict, StoreError};
use crate::event::{LogPosition, StoredEvent};
use crate::store::{EventStore, NewEvent, Snapshot};

/// An event store that keeps everything in memory. Cloning shares the same store.
///
/// ```
/// use cqrs_runtime::{EventStore, InMemoryStore, LogPosition};
///
/// # futures::executor::block_on(async {
/// let store = InMemoryStore::new();
/// assert!(store.read_all(LogPosition::START, 10).await.unwrap().is_empty());
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct InMemoryStore {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The global log; an event's position is its index + 1.
    log: Vec<StoredEvent>,
    /// Per aggregate type, per id: indexes into `log`, in sequence order.
    streams: HashMap<String, HashMap<String, Vec<usize>>>,
    /// Per aggregate type, per id: the newest snapshot.
    snapshots: HashMap<String, HashMap<String, Snapshot>>,
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        InMemoryStore::default()
    }

    /// How many events the store holds.
    pub fn len(&self) -> usize {
        self.read(|inner| inner.log.len())
    }

    /// Whether the store holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A panic while holding the lock cannot leave `Inner` half-updated (appends check
    // everything before the first write), so a poisoned lock is safe to keep using.
    fn read<T>(&self, f: impl FnOnce(&Inner) -> T) -> T {
        f(&self.inner.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.write().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Inner {
    fn append(
        &mut self,
        aggregate_type: &str,
        aggregate_id: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> Result<Vec<LogPosition>, AppendError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let stream = self
            .streams
            .entry(aggregate_type.to_owned())
            .or_default()
            .entry(aggregate_id.to_owned())
            .or_default();
        let actual = stream.len() as u64;
        if actual != expected_version {
            return Err(Conflict {
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id: aggregate_id.to_owned(),
                expected: expected_version,
                actual,
            }
            .into());
        }
        let mut positions = Vec::with_capacity(events.len());
        for (offset, event) in events.iter().enumerate() {
            let index = self.log.len();
            stream.push(index);
            positions.push(LogPosition::serial(index as u64 + 1));
            self.log.push(StoredEvent {
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id: aggregate_id.to_owned(),
                sequence: expected_version + offset as u64 + 1,
                position: LogPosition::serial(index as u64 + 1),
                event_id: event.event_id,
                event_type: event.event_type.to_owned(),
                event_version: event.event_version,
                recorded_at: event.recorded_at,
                metadata: event.metadata.clone(),
                event: event.payload.clone(),
            });
        }
        Ok(positions)
    }

    fn read_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: usize,
    ) -> Vec<StoredEvent> {
        let Some(stream) = self
            .streams
            .get(aggregate_type)
            .and_then(|ids| ids.get(aggregate_id))
        else {
            return Vec::new();
        };
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(stream.len());
        stream[start..]
            .iter()
            .take(limit)
            .map(|&i| self.log[i].clone())
            .collect()
    }

    fn read_all(&self, after: LogPosition, limit: usize) -> Vec<StoredEvent> {
        let start = usize::try_from(after.event)
            .unwrap_or(usize::MAX)
            .min(self.log.len());
        self.log[start..].iter().take(limit).cloned().collect()
    }
}

impl EventStore for InMemoryStore {
    fn append(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> impl Future<Output = Result<Vec<LogPosition>, AppendError>> + Send {
        ready(
            self.write(|inner| {
                inner.append(aggregate_type, aggregate_id, expected_version, events)
            }),
        )
    }

    fn read_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send {
        ready(Ok(self.read(|inner| {
            inner.read_stream(aggregate_type, aggregate_id, after, limit)
        })))
    }

    fn read_all(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send {
        ready(Ok(self.read(|inner| inner.read_all(after, limit))))
    }

    fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send {
        ready(Ok(self.read(|inner| {
            inner
                .snapshots
                .get(aggregate_type)
                .and_then(|ids| ids.get(aggregate_id))
                .cloned()
        })))
    }

    fn save_snapshot(
        &self,
        snapshot: &Snapshot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write(|inner| {
            let slot = inner
                .snapshots
                .entry(snapshot.aggregate_type.clone())
                .or_default()
                .entry(snapshot.aggregate_id.clone());
            match slot {
                std::collections::hash_map::Entry::Occupied(mut old) => {
                    if old.get().version <= snapshot.version {
                        old.insert(snapshot.clone());
                    }
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(snapshot.clone());
                }
            }
        });
        ready(Ok(()))
    }
}
