//! The repository's aggregate cache: the newest committed root of the most recently used
//! aggregates, so that a command on a cached aggregate loads nothing from the store.
//!
//! It is safe because appends are conditional: a root made stale by another writer (another
//! process, or a store written around the repository) fails its append with a conflict, and
//! the repository then reloads from the store and runs the command again; an outcome that
//! appends nothing (a refusal) is confirmed against the stream's tail first.

use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

use lru::LruCache;

use crate::contract::aggregate::{Aggregate, AggregateRoot, Caching};

/// How much a repository's aggregate cache may hold: at most `entries` aggregates and `bytes`
/// bytes, the least recently used evicted first.
///
/// An entry weighs its state's size, what [`Caching::heap_bytes`] counts of its heap, and its
/// id. The default is 10,000 aggregates and 64 MiB.
///
/// ```
/// use cqrs_runtime::CacheLimits;
///
/// let limits = CacheLimits::entries(50_000).bytes(256 << 20);
/// assert_eq!((limits.max_entries(), limits.max_bytes()), (50_000, 256 << 20));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    entries: NonZeroUsize,
    bytes: usize,
}

impl CacheLimits {
    /// At most `entries` aggregates (0 is read as 1), and the default byte limit.
    pub fn entries(entries: usize) -> Self {
        CacheLimits {
            entries: NonZeroUsize::new(entries).unwrap_or(NonZeroUsize::MIN),
            ..CacheLimits::default()
        }
    }

    /// At most `bytes` bytes of entries.
    pub fn bytes(self, bytes: usize) -> Self {
        CacheLimits { bytes, ..self }
    }

    /// The most aggregates kept.
    pub fn max_entries(&self) -> usize {
        self.entries.get()
    }

    /// The most bytes kept.
    pub fn max_bytes(&self) -> usize {
        self.bytes
    }
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            entries: NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN),
            bytes: 64 << 20,
        }
    }
}

/// Roots by aggregate id, with their weights, least recently used evicted first.
pub(super) struct Cache<A: Aggregate> {
    entries: Mutex<Entries<A>>,
    caching: Caching<A>,
    max_bytes: usize,
}

struct Entries<A: Aggregate> {
    roots: LruCache<String, (AggregateRoot<A>, usize)>,
    bytes: usize,
}

impl<A: Aggregate> Cache<A> {
    pub(super) fn new(limits: CacheLimits, caching: Caching<A>) -> Self {
        Cache {
            entries: Mutex::new(Entries {
                roots: LruCache::new(limits.entries),
                bytes: 0,
            }),
            caching,
            max_bytes: limits.bytes,
        }
    }

    // Every operation leaves the map and its byte count consistent before it can panic (it
    // cannot: no user code runs under the lock), so a poisoned lock holds a consistent map.
    fn with<T>(&self, f: impl FnOnce(&mut Entries<A>) -> T) -> T {
        f(&mut self.entries.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Takes an aggregate's root out (a concurrent command on it misses and loads).
    pub(super) fn take(&self, id: &str) -> Option<AggregateRoot<A>> {
        self.with(|entries| {
            let (root, weight) = entries.roots.pop(id)?;
            entries.bytes -= weight;
            Some(root)
        })
    }

    /// Keeps a copy of `root`, evicting the least recently used entries over the limits. A
    /// root heavier than the byte limit is not kept.
    pub(super) fn put(&self, id: &str, root: &AggregateRoot<A>) {
        let weight = self.caching.weight(&root.state, id);
        if weight > self.max_bytes {
            return;
        }
        let copy = self.copy(root);
        self.with(|entries| {
            if let Some((_, (_, evicted))) = entries.roots.push(id.to_owned(), (copy, weight)) {
                entries.bytes -= evicted;
            }
            entries.bytes += weight;
            while entries.bytes > self.max_bytes {
                let Some((_, (_, evicted))) = entries.roots.pop_lru() else {
                    break;
                };
                entries.bytes -= evicted;
            }
        });
    }

    /// A copy of `root`, to put back if the command is refused.
    pub(super) fn copy(&self, root: &AggregateRoot<A>) -> AggregateRoot<A> {
        AggregateRoot {
            id: root.id.clone(),
            version: root.version,
            state: self.caching.copy(&root.state),
            snapshot_version: root.snapshot_version,
        }
    }

    /// How many roots it holds, and their weight in bytes.
    pub(super) fn usage(&self) -> (usize, usize) {
        self.with(|entries| (entries.roots.len(), entries.bytes))
    }
}
