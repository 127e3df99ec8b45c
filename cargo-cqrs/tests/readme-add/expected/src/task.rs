//! The `Task` aggregate: a to-do item that can be created, renamed and completed.

use cqrs_runtime::{Aggregate, Command, Event, handlers};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------- commands

/// Everything a task can be asked, as the API receives it: `{"Create": {"title": "..."}}`.
/// Each variant's fields become a struct of the same name (`Create`, `Rename`, `Complete`), the
/// type its handler takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Command)]
#[command(derive(PartialEq))]
pub enum TaskCommand {
    /// Create a task.
    Create {
        /// What to do.
        title: String,
        /// 0 (default) to 9.
        #[serde(default)]
        priority: u8,
    },
    /// Give a task another title.
    Rename {
        /// The new title.
        title: String,
    },
    /// Mark a task done.
    Complete {},
    /// Archive a Task.
    Archive { reason: String },
}

// ------------------------------------------------------------------------------------ events

/// Everything that can happen to a task. Each variant's fields become a struct of the same
/// name (`Created`, ...). Stored events are never rewritten: change an event by bumping its
/// version and declaring how the older one is read, as `Created` does.
#[derive(Debug, Clone, PartialEq, Event)]
#[event(derive(PartialEq))]
pub enum TaskEvent {
    /// A task was created. Version 2 added the priority; version 1 is read with priority 0.
    #[event(version = 2, upcast(v1 { title: String } => |v1| Created { title: v1.title, priority: 0 }))]
    Created {
        /// What to do.
        title: String,
        /// 0 to 9.
        priority: u8,
    },
    /// A task got another title.
    Renamed {
        /// The new title.
        title: String,
    },
    /// A task was completed.
    Completed {},
}

// ------------------------------------------------------------------------------------ errors

/// Why a task refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// `Create` on a task that exists.
    #[error("the task already exists")]
    AlreadyExists,
    /// Any other command on a task never created.
    #[error("no such task")]
    NotFound,
    /// A change to a completed task.
    #[error("the task is already completed")]
    AlreadyCompleted,
    /// An empty title.
    #[error("the title must not be empty")]
    EmptyTitle,
    /// A priority above 9.
    #[error("the priority must be 0 to 9, got {0}")]
    BadPriority(u8),
}

// ------------------------------------------------------------------------------ the aggregate

/// A task's state, rebuilt from its events. `Create` runs only on a new task; every other
/// command on a task never created is refused with `NotFound`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(
    id = String,
    command = TaskCommand,
    event = TaskEvent,
    error = TaskError,
    missing = TaskError::NotFound,
    exists = TaskError::AlreadyExists,
    snapshot_every = 100
)]
pub struct Task {
    /// What to do.
    pub title: String,
    /// 0 to 9.
    pub priority: u8,
    /// Whether it is done.
    pub completed: bool,
}

#[handlers]
impl Task {
    #[create]
    fn create(&self, cmd: Create) -> Result<Created, TaskError> {
        if cmd.priority > 9 {
            return Err(TaskError::BadPriority(cmd.priority));
        }
        Ok(Created {
            title: title(cmd.title)?,
            priority: cmd.priority,
        })
    }

    fn rename(&self, cmd: Rename) -> Result<Option<Renamed>, TaskError> {
        self.check_open()?;
        let new = title(cmd.title)?;
        // Renaming to the same title records nothing.
        Ok((new != self.title).then_some(Renamed { title: new }))
    }

    fn complete(&self, _: Complete) -> Result<Completed, TaskError> {
        self.check_open()?;
        Ok(Completed {})
    }

    fn created(&mut self, event: &Created) {
        self.title.clone_from(&event.title);
        self.priority = event.priority;
    }

    fn renamed(&mut self, event: &Renamed) {
        self.title.clone_from(&event.title);
    }

    fn completed(&mut self, _: &Completed) {
        self.completed = true;
    }

    fn archive(&self, cmd: Archive) -> Result<Vec<TaskEvent>, TaskError> {
        // Decide here: check `self`, then return the events this command records.
        let _ = cmd;
        Ok(Vec::new())
    }
}

impl Task {
    fn check_open(&self) -> Result<(), TaskError> {
        if self.completed {
            Err(TaskError::AlreadyCompleted)
        } else {
            Ok(())
        }
    }
}

fn title(raw: String) -> Result<String, TaskError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        Err(TaskError::EmptyTitle)
    } else {
        Ok(trimmed.to_owned())
    }
}
