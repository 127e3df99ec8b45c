//! Health: what every runner of a service (projection runners, the outbox relay, subscribers)
//! last said about itself, and whether the service is ready for traffic.
//!
//! A service makes one [`Health`], hands it to each runner it builds (`.health(&health)` on
//! [`Projector`](crate::Projector), [`Relay`](crate::bus::Relay) and
//! [`Subscriber`](crate::bus::Subscriber)), and answers its readiness probe from
//! [`Health::report`]: ready means every runner is running (or standing by while another
//! instance holds its lease) and within the lag bound. A runner that stopped on an error stays
//! in the report, with the error, until the process restarts.
//!
//! ```
//! use cqrs_runtime::health::{Health, State};
//!
//! let health = Health::new();
//! let probe = health.probe("projection", "TaskList v1");
//! assert!(!health.report().ready, "a runner that has not caught up yet is not ready");
//! probe.set(State::Live);
//! assert!(health.report().ready);
//! probe.set(State::Failed { error: "a handler failed at Task `t-1` #3".into() });
//! let report = health.report();
//! assert!(!report.ready);
//! assert_eq!(report.components[0].reason.as_deref(), Some("a handler failed at Task `t-1` #3"));
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::metrics::Lag;

/// The runners of one service. Clones share them.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    components: Mutex<Vec<Arc<Slot>>>,
    max_lag_events: u64,
    max_lag: Duration,
}

/// One runner's entry.
#[derive(Debug)]
struct Slot {
    kind: &'static str,
    name: String,
    status: Mutex<Status>,
}

#[derive(Debug, Clone)]
struct Status {
    state: State,
    lag: Lag,
    since: DateTime<Utc>,
}

/// Where a runner is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Built, not running yet.
    Starting,
    /// Waiting while another instance holds its lease (healthy: that instance does the work).
    Standby,
    /// Applying what the log held when it started.
    CatchingUp,
    /// Caught up and following.
    Live,
    /// Ended without an error (shut down, or superseded by a newer version).
    Stopped {
        /// Why.
        why: String,
    },
    /// Ended on an error: it applies nothing more until restarted.
    Failed {
        /// The error, in its Display form.
        error: String,
    },
}

/// A runner's handle on its entry in a [`Health`].
#[derive(Debug, Clone)]
pub struct Probe {
    slot: Arc<Slot>,
}

/// Every runner's state, and the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether every runner is ready.
    pub ready: bool,
    /// Each runner, in the order they were registered.
    pub components: Vec<Component>,
}

/// One runner in a [`Report`].
#[derive(Debug, Clone, Serialize)]
pub struct Component {
    /// What it is: `projection`, `relay`, `subscriber`.
    pub kind: &'static str,
    /// Its name (a projection's name and version, the relay's name, the subscriber's group).
    pub name: String,
    /// Its state.
    #[serde(flatten)]
    pub state: State,
    /// Log positions it is behind the head, at its last batch.
    pub lag_events: u64,
    /// Age of the newest event of its last batch, while behind.
    pub lag_seconds: f64,
    /// Since when it is in this state.
    pub since: DateTime<Utc>,
    /// Whether it counts as ready.
    pub ready: bool,
    /// Why it is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Health {
    /// No runners yet; a running runner is ready while behind by at most 10,000 log
    /// positions and 60 seconds.
    pub fn new() -> Self {
        Health::with_max_lag(10_000, Duration::from_secs(60))
    }

    /// No runners yet; a running runner is ready while behind by at most `events` log
    /// positions and `age`.
    pub fn with_max_lag(events: u64, age: Duration) -> Self {
        Health {
            inner: Arc::new(Inner {
                components: Mutex::new(Vec::new()),
                max_lag_events: events,
                max_lag: age,
            }),
        }
    }

    /// Registers a runner (a `kind` such as `projection`, and its name) in state
    /// [`State::Starting`]; the runners of this crate call it when given the health.
    pub fn probe(&self, kind: &'static str, name: impl Into<String>) -> Probe {
        let slot = Arc::new(Slot {
            kind,
            name: name.into(),
            status: Mutex::new(Status {
                state: State::Starting,
                lag: Lag::default(),
                since: Utc::now(),
            }),
        });
        lock(&self.inner.components).push(Arc::clone(&slot));
        Probe { slot }
    }

    /// Every runner's state now, and whether all are ready.
    pub fn report(&self) -> Report {
        let slots = lock(&self.inner.components).clone();
        let components: Vec<Component> = slots.iter().map(|s| self.component(s)).collect();
        Report {
            ready: components.iter().all(|c| c.ready),
            components,
        }
    }

    fn component(&self, slot: &Slot) -> Component {
        let status = lock(&slot.status).clone();
        let reason = match &status.state {
            State::Starting => Some("not started yet".to_owned()),
            State::CatchingUp => Some(format!(
                "catching up: {} log positions behind",
                status.lag.events
            )),
            State::Live | State::Standby if status.lag.events > self.inner.max_lag_events => {
                Some(format!(
                    "{} log positions behind, more than the {} allowed",
                    status.lag.events, self.inner.max_lag_events
                ))
            }
            State::Live | State::Standby if status.lag.age > self.inner.max_lag => Some(format!(
                "{:.1} s behind, more than the {:.1} s allowed",
                status.lag.age.as_secs_f64(),
                self.inner.max_lag.as_secs_f64()
            )),
            State::Live | State::Standby => None,
            State::Stopped { why } => Some(format!("stopped: {why}")),
            State::Failed { error } => Some(error.clone()),
        };
        Component {
            kind: slot.kind,
            name: slot.name.clone(),
            ready: reason.is_none(),
            state: status.state,
            lag_events: status.lag.events,
            lag_seconds: status.lag.age.as_secs_f64(),
            since: status.since,
            reason,
        }
    }
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health")
            .field("components", &lock(&self.inner.components).len())
            .field("max_lag_events", &self.inner.max_lag_events)
            .field("max_lag", &self.inner.max_lag)
            .finish()
    }
}

impl Probe {
    /// Moves the runner to `state` (keeping the time it entered it when unchanged).
    pub fn set(&self, state: State) {
        let mut status = lock(&self.slot.status);
        if status.state != state {
            status.state = state;
            status.since = Utc::now();
        }
    }

    /// Records the lag measured after a batch.
    pub(crate) fn set_lag(&self, lag: Lag) {
        lock(&self.slot.status).lag = lag;
    }

    /// The runner's state now.
    pub fn state(&self) -> State {
        lock(&self.slot.status).state.clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
