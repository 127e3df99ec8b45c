//! The read models: what the API answers queries from.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use cqrs_runtime::{StoredEvent, projection};
use serde::Serialize;

use crate::task::{Completed, Created, Renamed, Task};

/// A task as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskView {
    /// The task id.
    pub id: String,
    /// What to do.
    pub title: String,
    /// 0 to 9.
    pub priority: u8,
    /// Whether it is done.
    pub completed: bool,
    /// The sequence of the last event applied.
    pub version: u64,
}

/// Every task, in memory: rebuilt from the event log when the service starts, then kept up to
/// date by a runner following the log. Clones share the data.
#[derive(Debug, Clone, Default)]
pub struct TaskList {
    tasks: Arc<RwLock<BTreeMap<String, TaskView>>>,
}

impl TaskList {
    /// One task.
    pub fn get(&self, id: &str) -> Option<TaskView> {
        self.tasks.read().unwrap_or_else(PoisonError::into_inner).get(id).cloned()
    }

    /// Every task, by id.
    pub fn all(&self) -> Vec<TaskView> {
        self.tasks.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }

    /// Applies `change` unless the event was applied already: delivery is at least once, and
    /// the envelope's sequence makes the handlers idempotent.
    fn update(&self, envelope: &StoredEvent, change: impl FnOnce(&mut TaskView)) {
        let mut tasks = self.tasks.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = tasks
            .get_mut(&envelope.aggregate_id)
            .filter(|t| envelope.sequence > t.version)
        {
            change(task);
            task.version = envelope.sequence;
        }
    }
}

#[projection(aggregates(Task))]
impl TaskList {
    fn created(&mut self, event: &Created, envelope: &StoredEvent) {
        let mut tasks = self.tasks.write().unwrap_or_else(PoisonError::into_inner);
        tasks.entry(envelope.aggregate_id.clone()).or_insert_with(|| TaskView {
            id: envelope.aggregate_id.clone(),
            title: event.title.clone(),
            priority: event.priority,
            completed: false,
            version: envelope.sequence,
        });
    }

    fn renamed(&mut self, event: &Renamed, envelope: &StoredEvent) {
        self.update(envelope, |t| t.title.clone_from(&event.title));
    }

    fn completed(&mut self, _event: &Completed, envelope: &StoredEvent) {
        self.update(envelope, |t| t.completed = true);
    }

    #[reset]
    fn clear(&mut self) {
        self.tasks.write().unwrap_or_else(PoisonError::into_inner).clear();
    }
}
