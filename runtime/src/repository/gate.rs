//! One command at a time per aggregate inside a process: a repository (and its clones) queues
//! the commands of one aggregate id instead of letting them race to the store, so that
//! contention between the tasks of one process costs no conflict at all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Mutex as Turn, OwnedMutexGuard};

/// The aggregate ids with a command running or queued, each with the lock its commands take in
/// turn. An entry lives as long as someone holds or waits for it.
#[derive(Debug, Default)]
pub(super) struct Gates {
    ids: Mutex<HashMap<String, Arc<Turn<()>>>>,
}

impl Gates {
    /// Waits for the aggregate's turn (first come, first served: tokio's mutex is fair).
    pub(super) async fn enter(self: &Arc<Self>, id: &str) -> Gate {
        let turn = {
            let mut ids = self.ids.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(ids.entry(id.to_owned()).or_default())
        };
        Gate {
            guard: Some(turn.lock_owned().await),
            gates: Arc::clone(self),
            id: id.to_owned(),
        }
    }

    /// How many aggregate ids have a command running or queued.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// An aggregate's turn: commands of the same id wait until it is dropped.
#[derive(Debug)]
pub(super) struct Gate {
    guard: Option<OwnedMutexGuard<()>>,
    gates: Arc<Gates>,
    id: String,
}

impl Drop for Gate {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut ids = self
            .gates
            .ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Only the map holds it: nobody runs or waits, and nobody can take it without the map's
        // lock, held here.
        if ids
            .get(&self.id)
            .is_some_and(|turn| Arc::strong_count(turn) == 1)
        {
            ids.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_of_one_id_take_turns_and_entries_go_when_unused() {
        let gates = Arc::new(Gates::default());
        let first = gates.enter("a").await;
        let other = gates.enter("b").await;
        assert_eq!(gates.len(), 2, "another id does not wait");
        let waiting = tokio::spawn({
            let gates = Arc::clone(&gates);
            async move { gates.enter("a").await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the same id waits for its turn");
        drop(first);
        let second = waiting.await.unwrap();
        assert_eq!(gates.len(), 2, "the entry stays while the next holds it");
        drop((second, other));
        assert_eq!(gates.len(), 0, "no entry is left behind");
    }
}
