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

use crate::contract::aggregate::{Aggregate, AggregateRoot};

/// Roots by aggregate id, least recently used evicted first.
pub(super) struct Cache<A: Aggregate> {
    roots: Mutex<LruCache<String, AggregateRoot<A>>>,
    /// `Clone` of the root, captured where `A: Clone` is known (the cache needs a copy of each
    /// root it hands out, and the repository itself does not require `A: Clone`).
    copy: fn(&AggregateRoot<A>) -> AggregateRoot<A>,
}

impl<A: Aggregate> Cache<A> {
    pub(super) fn new(capacity: NonZeroUsize) -> Self
    where
        A: Clone,
    {
        Cache {
            roots: Mutex::new(LruCache::new(capacity)),
            copy: AggregateRoot::clone,
        }
    }

    // Every operation is a single map call, so a poisoned lock holds a consistent map.
    fn with<T>(&self, f: impl FnOnce(&mut LruCache<String, AggregateRoot<A>>) -> T) -> T {
        f(&mut self.roots.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Takes an aggregate's root out (a concurrent command on it misses and loads).
    pub(super) fn take(&self, id: &str) -> Option<AggregateRoot<A>> {
        self.with(|roots| roots.pop(id))
    }

    /// Keeps a copy of `root`.
    pub(super) fn put(&self, id: &str, root: &AggregateRoot<A>) {
        let copy = (self.copy)(root);
        self.with(|roots| roots.put(id.to_owned(), copy));
    }

    /// A copy of `root`, to put back if the command is refused.
    pub(super) fn copy(&self, root: &AggregateRoot<A>) -> AggregateRoot<A> {
        (self.copy)(root)
    }

    /// How many roots it holds.
    pub(super) fn len(&self) -> usize {
        self.with(|roots| roots.len())
    }
}
