//! The `Task` aggregate: a to-do item that can be created, renamed and completed.

use cqrs_runtime::{Aggregate, Command, CommandContext, Event, handlers};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------- commands

/// Create a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreateTask {
    /// What to do.
    pub title: String,
    /// 0 (default) to 9.
    #[serde(default)]
    pub priority: u8,
}

/// Give a task another title.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RenameTask {
    /// The new title.
    pub title: String,
}

/// Mark a task done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CompleteTask {}

/// Archive a Task.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Archive {
    pub reason: String,
}
/// Everything a task can be asked, as the API receives it: `{"Create": {"title": "..."}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Command)]
pub enum TaskCommand {
    /// See [`CreateTask`].
    Create(CreateTask),
    /// See [`RenameTask`].
    Rename(RenameTask),
    /// See [`CompleteTask`].
    Complete(CompleteTask),
    /// See [`Archive`].
    Archive(Archive),
}

// ------------------------------------------------------------------------------------ events

/// A task was created (version 2: with a priority).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskCreated {
    /// What to do.
    pub title: String,
    /// 0 to 9.
    pub priority: u8,
}

/// Version 1 of `TaskCreated`, as stored before priorities existed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskCreatedV1 {
    /// What to do.
    pub title: String,
}

impl From<TaskCreatedV1> for TaskCreated {
    fn from(v1: TaskCreatedV1) -> Self {
        TaskCreated {
            title: v1.title,
            priority: 0,
        }
    }
}

/// A task got another title.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskRenamed {
    /// The new title.
    pub title: String,
}

/// A task was completed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskCompleted {}

/// Everything that can happen to a task. Stored events are never rewritten: change an event
/// by bumping its version and upcasting the old one, as `Created` does.
#[derive(Debug, Clone, PartialEq, Event)]
pub enum TaskEvent {
    /// At version 2; version 1 is read through `From<TaskCreatedV1>`.
    #[event(version = 2, upcast(v1 = TaskCreatedV1))]
    Created(TaskCreated),
    /// The title changed.
    Renamed(TaskRenamed),
    /// The task is done.
    Completed(TaskCompleted),
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

/// A task's state, rebuilt from its events.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(
    id = String,
    command = TaskCommand,
    event = TaskEvent,
    error = TaskError,
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
    fn create(&self, cmd: CreateTask, cx: &CommandContext<Self>) -> Result<TaskCreated, TaskError> {
        if cx.exists() {
            return Err(TaskError::AlreadyExists);
        }
        if cmd.priority > 9 {
            return Err(TaskError::BadPriority(cmd.priority));
        }
        Ok(TaskCreated {
            title: title(cmd.title)?,
            priority: cmd.priority,
        })
    }

    fn rename(
        &self,
        cmd: RenameTask,
        cx: &CommandContext<Self>,
    ) -> Result<Option<TaskRenamed>, TaskError> {
        self.check_open(cx)?;
        let new = title(cmd.title)?;
        // Renaming to the same title records nothing.
        Ok((new != self.title).then_some(TaskRenamed { title: new }))
    }

    fn complete(
        &self,
        _cmd: CompleteTask,
        cx: &CommandContext<Self>,
    ) -> Result<TaskCompleted, TaskError> {
        self.check_open(cx)?;
        Ok(TaskCompleted {})
    }

    fn created(&mut self, event: &TaskCreated) {
        self.title.clone_from(&event.title);
        self.priority = event.priority;
    }

    fn renamed(&mut self, event: &TaskRenamed) {
        self.title.clone_from(&event.title);
    }

    fn completed(&mut self, _event: &TaskCompleted) {
        self.completed = true;
    }

    fn archive(
        &self,
        cmd: Archive,
        cx: &cqrs_runtime::CommandContext<Self>,
    ) -> Result<Vec<TaskEvent>, TaskError> {
        // Decide here: check `self` and `cx`, then return the events this command records.
        let _ = (cmd, cx);
        Ok(Vec::new())
    }
}

impl Task {
    fn check_open(&self, cx: &CommandContext<Self>) -> Result<(), TaskError> {
        if !cx.exists() {
            Err(TaskError::NotFound)
        } else if self.completed {
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
