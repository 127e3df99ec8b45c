//! What makes the API a service: health and metrics endpoints, the OpenAPI document, JSON
//! errors for unknown routes and wrong methods, the body limit, a request id and a span per
//! request; and the [`Runners`] that follow the log and the bus in the background.
//!
//! - `GET /health/live` (and `GET /health`): `200` while the process serves.
//! - `GET /health/ready`: `200` when the event store answers and every runner (projection,
//!   relay, subscriber) runs within its lag bound; else `503`, saying which is not and why.
//! - `GET /metrics`: every metric in Prometheus' text format.
//! - `GET /openapi.json`: the API as an OpenAPI 3.1 document.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use cqrs_runtime::health::Health;
use cqrs_runtime::projection::MemoryTarget;
use cqrs_runtime::{EventStore, ProjectionHandlers, Projector};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::api::ApiError;

/// What the operational routes read.
#[derive(Debug, Clone)]
pub struct Ops<S> {
    /// Pinged by the readiness probe.
    pub store: S,
    /// The runners' states.
    pub health: Health,
    /// The Prometheus recorder's handle (`None`: `/metrics` answers 404).
    pub metrics: Option<PrometheusHandle>,
}

/// How long the readiness probe waits for the event store.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The whole service: `api` with the operational routes, JSON errors for unknown routes and
/// methods, bodies limited to `body_limit` bytes, and a request id (`x-request-id`, kept when
/// the client sends one) on every request, its span and its response.
pub fn app<S: EventStore + Clone>(api: Router, ops: Ops<S>, body_limit: usize) -> Router {
    Router::new()
        .route("/health", get(live))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready::<S>))
        .route("/metrics", get(metrics::<S>))
        .route("/openapi.json", get(|| async { Json(crate::openapi::document()) }))
        .with_state(Arc::new(ops))
        .merge(api)
        .fallback(|request: Request| async move {
            ApiError::NotFound(format!("no route {} {}", request.method(), request.uri().path()))
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok());
                    tracing::info_span!(
                        "request",
                        http.request.method = %request.method(),
                        url.path = %request.uri().path(),
                        request_id = id.unwrap_or_default(),
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn ready<S: EventStore>(State(ops): State<Arc<Ops<S>>>) -> (StatusCode, Json<Value>) {
    let store = match tokio::time::timeout(STORE_TIMEOUT, ops.store.head()).await {
        Ok(Ok(_)) => None,
        Ok(Err(error)) => Some(error.to_string()),
        Err(_) => Some(format!("the event store did not answer within {STORE_TIMEOUT:?}")),
    };
    let report = ops.health.report();
    let ready = store.is_none() && report.ready;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "ready": ready,
        "store": store.map_or(json!({ "ready": true }), |error| json!({ "ready": false, "error": error })),
        "components": report.components,
    });
    (status, Json(body))
}

async fn metrics<S>(State(ops): State<Arc<Ops<S>>>) -> Result<impl IntoResponse, ApiError> {
    let handle = ops.metrics.as_ref().ok_or_else(|| {
        ApiError::NotFound("metrics are not recorded by this instance".to_owned())
    })?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()))
}

/// The service's background runners (projection runners, the outbox relay, subscribers): each
/// runs until [`stop`](Self::stop), which waits for all of them.
#[derive(Debug)]
pub struct Runners {
    stop: tokio::sync::watch::Sender<bool>,
    running: Vec<(String, tokio::task::JoinHandle<Result<(), String>>)>,
}

impl Runners {
    /// None yet.
    pub fn new() -> Self {
        Runners { stop: tokio::sync::watch::Sender::new(false), running: Vec::new() }
    }

    /// Runs `run` in the background, handing it the future that completes when the service
    /// stops; its error, if any, is reported by [`stop`](Self::stop) (and logged by the runtime
    /// when it happens).
    pub fn spawn<F, Fut, T, E>(&mut self, name: impl Into<String>, run: F)
    where
        F: FnOnce(Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let mut stopped = self.stop.subscribe();
        let shutdown = Box::pin(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        let running = run(shutdown);
        let task = tokio::spawn(async move { running.await.map(drop).map_err(|e| e.to_string()) });
        self.running.push((name.into(), task));
    }

    /// Follows the log into `projection`, a read model in memory: rebuilt from the log when the
    /// service starts, then kept up to date; its state is reported to `health`.
    pub fn projection<S, P>(&mut self, store: &S, projection: P, health: &Health)
    where
        S: EventStore + Clone,
        P: ProjectionHandlers<()> + Send + 'static,
    {
        let mut runner = Projector::new(store.clone(), MemoryTarget::new(), projection)
            .poll_interval(Duration::from_secs(1))
            .health(health);
        let name = format!("projection `{}`", runner.id());
        self.spawn(name, move |shutdown| async move { runner.run(shutdown).await });
    }

    /// Stops every runner (each finishes its batch) and waits for them; the errors of those
    /// that failed, one per line.
    pub async fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(true);
        let mut errors = Vec::new();
        for (name, task) in self.running {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => errors.push(error),
                Err(panicked) => errors.push(format!("{name} panicked: {panicked}")),
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors.join("\n")) }
    }
}

impl Default for Runners {
    fn default() -> Self {
        Runners::new()
    }
}
