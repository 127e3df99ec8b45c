//! The HTTP API: commands in, read models out, every error as JSON with its status code.
//!
//! - `POST /tasks/{id}/commands` with a command, e.g. `{"Create": {"title": "Write docs"}}`:
//!   `200` with the task's new version and the recorded event types.
//! - `GET /tasks/{id}`: the task's read model (`404` if unknown); `GET /tasks`: all of them.
//!
//! Errors are `{"error": "<code>", "message": "<what is wrong and how to fix it>"}`:
//!
//! | status | code | when |
//! | --- | --- | --- |
//! | 400 | `bad_request` | the body is not JSON |
//! | 400 | `invalid_id` | the id is empty, longer than [`MAX_ID_LEN`], or has control characters |
//! | 400 | `invalid_idempotency_key` | the `Idempotency-Key` header is empty, longer than [`MAX_KEY_LEN`], or not visible ASCII |
//! | 404 | `not_found` | no such task, or no such route |
//! | 405 | `method_not_allowed` | the route exists, not with this method |
//! | 409 | `rejected` / `conflict` | the task refused (it exists, it is done) / a concurrent change won |
//! | 413 | `payload_too_large` | the body is over the limit (`BODY_LIMIT`) |
//! | 415 | `unsupported_media_type` | the content type is not `application/json` |
//! | 422 | `invalid_body` / `invalid` | the JSON is not a command / the task refused its values |
//!
//! A command sent with an `Idempotency-Key` header runs once per task: sent again with the same
//! key (a client retrying after a timeout), it is answered with what its first run recorded,
//! with `"duplicate": true`, and changes nothing. Keys are kept for the store's retention (a
//! week by default).
//!
//! A command's events keep the caller's W3C trace context (the `traceparent` and `tracestate`
//! headers) in their metadata, and take it to the bus.
//!
//! The read model follows the log a moment after a command commits; compare its `version`
//! with the one a command returned to wait for your own write.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cqrs_runtime::{CommandError, DomainEvent, EventStore, Metadata, Repository, TRACEPARENT, TRACESTATE};
use serde::Serialize;
use serde_json::json;

use crate::projections::{TaskList, TaskView};
use crate::task::{Task, TaskCommand, TaskError};

/// The longest id accepted, in characters.
pub const MAX_ID_LEN: usize = 128;

/// The longest `Idempotency-Key` accepted, in characters.
pub const MAX_KEY_LEN: usize = 255;

/// The request header that makes a command run once.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

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

/// The API's routes ([`crate::service::app`] adds the health, metrics and OpenAPI routes and
/// the JSON errors of unknown routes and wrong methods).
pub fn router<S: EventStore + Clone>(state: AppState<S>) -> Router {
    Router::new()
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
    /// The `Idempotency-Key` had run already: `events` are its first run's, and nothing ran.
    pub duplicate: bool,
}

async fn command<S: EventStore + Clone>(
    State(state): State<AppState<S>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<TaskCommand>, JsonRejection>,
) -> Result<Json<Executed>, ApiError> {
    let id = task_id(id)?;
    let Json(command) = body?;
    let mut metadata = trace_context(&headers);
    if let Some(key) = idempotency_key(&headers)? {
        metadata = metadata.command_id(key);
    }
    let done = state.repo.execute_with(&id, command, metadata).await?;
    Ok(Json(Executed {
        id,
        version: done.root.version(),
        events: done.events.iter().map(|e| e.event.event_type()).collect(),
        duplicate: done.duplicate,
    }))
}

async fn show<S: EventStore + Clone>(
    State(state): State<AppState<S>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<TaskView>, ApiError> {
    let id = task_id(id)?;
    state.tasks.get(&id).map(Json).ok_or(ApiError::NotFound(format!("no task `{id}`")))
}

async fn list<S: EventStore + Clone>(State(state): State<AppState<S>>) -> Json<Vec<TaskView>> {
    Json(state.tasks.all())
}

/// The caller's W3C trace context (`traceparent`, `tracestate`), kept in the events' metadata:
/// it travels with them, to the bus too, so that a consumer continues the caller's trace. A
/// header that is not a plausible trace context is left out.
pub fn trace_context(headers: &HeaderMap) -> Metadata {
    let mut metadata = Metadata::default();
    for name in [TRACEPARENT, TRACESTATE] {
        let value = headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(value) = value.filter(|v| v.len() <= 512 && !v.is_empty()) {
            metadata = metadata.with(name, value);
        }
    }
    if metadata.traceparent().is_some_and(|p| p.split('-').count() != 4) {
        metadata.extra.clear();
    }
    metadata
}

/// The `Idempotency-Key` header, if sent, checked: 1 to [`MAX_KEY_LEN`] visible ASCII
/// characters (a UUID, a random token).
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value.to_str().ok().filter(|k| k.bytes().all(|b| b.is_ascii_graphic()));
    match key {
        Some(key) if !key.is_empty() && key.len() <= MAX_KEY_LEN => Ok(Some(key.to_owned())),
        _ => Err(ApiError::InvalidKey(format!(
            "the Idempotency-Key header must be 1 to {MAX_KEY_LEN} visible ASCII characters, such as a UUID"
        ))),
    }
}

/// The id of the path, checked: not empty, at most [`MAX_ID_LEN`] characters, no control
/// characters.
pub fn task_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::InvalidId(e.body_text()))?;
    let why = if id.is_empty() {
        "it is empty; give the task an id, as in /tasks/t-1"
    } else if id.chars().count() > MAX_ID_LEN {
        "it is longer than 128 characters"
    } else if id.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(id);
    };
    let shown: String = id.chars().take(40).flat_map(char::escape_debug).collect();
    Err(ApiError::InvalidId(format!("task id \"{shown}\" is not valid: {why}")))
}

/// Every way a request fails, each with its status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is missing, not JSON, too large, or not a command.
    #[error("{message}")]
    Body {
        /// What axum's extractor said.
        status: StatusCode,
        /// Its explanation.
        message: String,
    },
    /// The id in the path breaks a rule of [`task_id`].
    #[error("{0}")]
    InvalidId(String),
    /// The `Idempotency-Key` header breaks a rule of [`idempotency_key`].
    #[error("{0}")]
    InvalidKey(String),
    /// No such task or route.
    #[error("{0}")]
    NotFound(String),
    /// The route exists, not with this method.
    #[error("this route does not take this method; see the API's routes in /openapi.json")]
    MethodNotAllowed,
    /// The task refused the command.
    #[error(transparent)]
    Rejected(TaskError),
    /// Another request changed the task first (after the repository's retries).
    #[error("{0}")]
    Conflict(String),
    /// The event store failed.
    #[error("{0}")]
    Store(String),
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::Body {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
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
            ApiError::Body { status, .. } => (*status, match *status {
                StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
                _ => "bad_request",
            }),
            ApiError::InvalidId(_) => (StatusCode::BAD_REQUEST, "invalid_id"),
            ApiError::InvalidKey(_) => (StatusCode::BAD_REQUEST, "invalid_idempotency_key"),
            ApiError::NotFound(_) | ApiError::Rejected(TaskError::NotFound) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
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
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        (status, Json(json!({ "error": code, "message": self.to_string() }))).into_response()
    }
}
