//! An in-memory event store: thread-safe, real (it passes the conformance suite), gone when the
//! process ends. For tests, examples and caches.

use std::collections::HashMap;
use std::future::{Future, ready};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::contract::error::{AppendError, Conflict, StoreError};
use crate::contract::event::{LogPosition, StoredEvent, StoredEventRef};
use crate::contract::store::{
    CommandRecord, DEFAULT_COMMAND_RETENTION, EventStore, LogWatch, NewEvent, Retention, Snapshot,
};
use crate::projection::InlineProjections;

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
#[derive(Debug, Clone)]
pub struct InMemoryStore {
    inner: Arc<RwLock<Inner>>,
    /// Signalled after each append, for [`EventStore::watch`].
    appended: Arc<tokio::sync::watch::Sender<()>>,
}

impl Default for InMemoryStore {
    fn default() -> Self {
        InMemoryStore {
            inner: Arc::default(),
            appended: Arc::new(tokio::sync::watch::Sender::new(())),
        }
    }
}

#[derive(Debug)]
struct Inner {
    /// The global log; an event's position is its index + 1.
    log: Vec<StoredEvent>,
    /// Per aggregate type, per id: indexes into `log`, in sequence order.
    streams: HashMap<String, HashMap<String, Vec<usize>>>,
    /// Per aggregate type, per id: the newest snapshot.
    snapshots: HashMap<String, HashMap<String, Snapshot>>,
    /// Applied under the write lock, before an append's events join the log.
    inline: std::sync::Mutex<InlineProjections<()>>,
    /// The command ids appends carried, by (aggregate type, aggregate id, command id).
    commands: HashMap<(String, String, String), CommandRecord>,
    retention: Retention,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            log: Vec::new(),
            streams: HashMap::new(),
            snapshots: HashMap::new(),
            inline: std::sync::Mutex::default(),
            commands: HashMap::new(),
            retention: Retention::new(DEFAULT_COMMAND_RETENTION),
        }
    }
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        InMemoryStore::default()
    }

    /// An empty store whose appends also apply `inline` projections, before returning: their
    /// read models are up to date as soon as a command returns. A failing inline handler fails
    /// the append (nothing is stored). Handlers must not wait: they run under the store's lock.
    pub fn with_inline(inline: InlineProjections<()>) -> Self {
        let store = InMemoryStore::new();
        store.write(|inner| inner.inline = std::sync::Mutex::new(inline));
        store
    }

    /// Keeps command ids ([`Metadata::command_id`](crate::Metadata::command_id)) for
    /// `retention` instead of [`DEFAULT_COMMAND_RETENTION`] (a week): a command sent again
    /// after that runs again.
    pub fn command_retention(self, retention: Duration) -> Self {
        self.write(|inner| inner.retention = Retention::new(retention));
        self
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
        let record =
            CommandRecord::of_append(aggregate_type, aggregate_id, expected_version, events);
        if let Some(cutoff) = self.retention.due() {
            self.commands.retain(|_, kept| kept.recorded_at >= cutoff);
        }
        let key = record.as_ref().map(|r| {
            (
                r.aggregate_type.clone(),
                r.aggregate_id.clone(),
                r.command_id.clone(),
            )
        });
        let cutoff = self.retention.cutoff();
        let fresh = |kept: &&CommandRecord| cutoff.is_none_or(|cutoff| kept.recorded_at >= cutoff);
        if let Some(first) = key
            .as_ref()
            .and_then(|key| self.commands.get(key))
            .filter(fresh)
        {
            return Err(StoreError::DuplicateCommand(Box::new(first.clone())).into());
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
        let first = self.log.len();
        let positions: Vec<LogPosition> = (first..first + events.len())
            .map(|i| LogPosition::serial(i as u64 + 1))
            .collect();
        let stored = NewEvent::stored(
            events,
            aggregate_type,
            aggregate_id,
            expected_version,
            &positions,
        );
        self.inline
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .apply_now(&stored, &mut ())?;
        stream.extend(first..first + stored.len());
        self.log.extend(stored);
        if let (Some(key), Some(record)) = (key, record) {
            self.commands.insert(key, record);
        }
        Ok(positions)
    }
}

impl Inner {
    /// A stream's events with a sequence greater than `after`, in order (none for an unknown
    /// stream).
    fn stream_after<'a>(
        &'a self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
    ) -> impl Iterator<Item = &'a StoredEvent> + 'a {
        let stream = self
            .streams
            .get(aggregate_type)
            .and_then(|ids| ids.get(aggregate_id))
            .map_or(&[][..], Vec::as_slice);
        stream[index_after(after, stream.len())..]
            .iter()
            .map(|&i| &self.log[i])
    }
}

/// Where a read after the 1-based `after` starts in a list of `len`.
fn index_after(after: u64, len: usize) -> usize {
    usize::try_from(after).unwrap_or(usize::MAX).min(len)
}

impl EventStore for InMemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn append(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> impl Future<Output = Result<Vec<LogPosition>, AppendError>> + Send {
        if events.is_empty() {
            // Nothing to write or check: not even the lock is taken.
            return ready(Ok(Vec::new()));
        }
        let result = self
            .write(|inner| inner.append(aggregate_type, aggregate_id, expected_version, events));
        if matches!(&result, Ok(positions) if !positions.is_empty()) {
            self.appended.send_replace(());
        }
        ready(result)
    }

    fn read_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send {
        ready(Ok(self.read(|inner| {
            inner
                .stream_after(aggregate_type, aggregate_id, after)
                .take(limit)
                .cloned()
                .collect()
        })))
    }

    /// Lends the stream's events under the store's read lock: no copy. Appends wait for the
    /// fold to finish.
    fn fold_stream<T, F>(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        mut state: T,
        mut f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send + 'static,
        F: FnMut(&mut T, StoredEventRef<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        let folded = self.read(|inner| {
            inner
                .stream_after(aggregate_type, aggregate_id, after)
                .try_for_each(|event| f(&mut state, event.as_event_ref()))
        });
        ready(folded.map(|()| state))
    }

    fn read_all(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send {
        ready(Ok(self.read(|inner| {
            let start = index_after(after.event, inner.log.len());
            inner.log[start..].iter().take(limit).cloned().collect()
        })))
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

    fn find_command(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        command_id: &str,
    ) -> impl Future<Output = Result<Option<CommandRecord>, StoreError>> + Send {
        let key = (
            aggregate_type.to_owned(),
            aggregate_id.to_owned(),
            command_id.to_owned(),
        );
        ready(Ok(self.read(|inner| {
            let cutoff = inner.retention.cutoff();
            inner
                .commands
                .get(&key)
                .filter(|record| cutoff.is_none_or(|cutoff| record.recorded_at >= cutoff))
                .cloned()
        })))
    }

    fn count_events(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        ready(Ok(self.len() as u64))
    }

    /// Positions are indexes + 1: the newest is the length.
    fn head(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        ready(Ok(self.len() as u64))
    }

    fn watch(&self, poll: Duration) -> LogWatch {
        LogWatch::local(self.appended.subscribe(), poll)
    }
}
