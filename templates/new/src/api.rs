//! The HTTP API: commands in, read models out, errors as JSON with their status codes.
//!
//! - `POST /tasks/{id}/commands` with a command, e.g. `{"Create": {"title": "Write docs"}}`:
//!   `200` with the task's new version and the recorded event types.
//! - `GET /tasks/{id}`: the task's read model (`404` if unknown); `GET /tasks`: all of them.
//! - `GET /health`: `200 ok`.
//!
//! The read model follows the log a moment after a command commits; compare its `version`
//! with the one a command returned to wait for your own write.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cqrs_runtime::{CommandError, DomainEvent, EventStore, Repository};
use serde::Serialize;
use serde_json::json;

use crate::projections::{TaskList, TaskView};
use crate::task::{Task, TaskCommand, TaskError};

/// What the handlers share: the repository of tasks and the read model.
#[derive(Debug)]
pub struct AppState<S: EventStore + Clone> {
    /// Executes commands against the event store.
    pub repo: Repository<Task, S>,
    /// The read model queries are answered from.
    pub tasks: TaskList,
}

impl<S: EventStore + Clone> Clone for AppState<S> {
    fn clone(&self) -> Self {
        AppState {
            repo: self.repo.clone(),
            tasks: self.tasks.clone(),
        }
    }
}

/// The API's routes.
pub fn router<S: EventStore + Clone>(state: AppState<S>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/tasks", get(list::<S>))
        .route("/tasks/{id}", get(show::<S>))
        .route("/tasks/{id}/commands", post(command::<S>))
        .with_state(state)
}

/// What a command returns.
#[derive(Debug, Serialize)]
pub struct Executed {
    /// The task id.
    pub id: String,
    /// Its version after the command.
    pub version: u64,
    /// The event types recorded, in order (none when nothing changed).
    pub events: Vec<&'static str>,
}

async fn command<S: EventStore + Clone>(
    State(state): State<AppState<S>>,
    Path(id): Path<String>,
    body: Result<Json<TaskCommand>, JsonRejection>,
) -> Result<Json<Executed>, ApiError> {
    let Json(command) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let done = state.repo.execute(&id, command).await?;
    Ok(Json(Executed {
        id,
        version: done.root.version(),
        events: done.events.iter().map(|e| e.event.event_type()).collect(),
    }))
}

async fn show<S: EventStore + Clone>(
    State(state): State<AppState<S>>,
    Path(id): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    state.tasks.get(&id).map(Json).ok_or(ApiError::NotFound(id))
}

async fn list<S: EventStore + Clone>(State(state): State<AppState<S>>) -> Json<Vec<TaskView>> {
    Json(state.tasks.all())
}

/// Every way a request fails, each with its status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not a command.
    #[error("{0}")]
    BadRequest(String),
    /// No task with this id in the read model.
    #[error("no task `{0}`")]
    NotFound(String),
    /// The task refused the command.
    #[error(transparent)]
    Rejected(TaskError),
    /// Another request changed the task first (after the repository's retries, if any).
    #[error("{0}")]
    Conflict(String),
    /// The event store failed.
    #[error("{0}")]
    Store(String),
}

impl From<CommandError<TaskError>> for ApiError {
    fn from(error: CommandError<TaskError>) -> Self {
        match error {
            CommandError::Rejected(e) => ApiError::Rejected(e),
            CommandError::Conflict(c) => ApiError::Conflict(c.to_string()),
            CommandError::Store(e) => ApiError::Store(e.to_string()),
        }
    }
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::NotFound(_) | ApiError::Rejected(TaskError::NotFound) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            ApiError::Rejected(TaskError::AlreadyExists | TaskError::AlreadyCompleted) => {
                (StatusCode::CONFLICT, "rejected")
            }
            ApiError::Rejected(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            eprintln!("request failed: {self}");
        }
        (status, Json(json!({ "error": code, "message": self.to_string() }))).into_response()
    }
}
