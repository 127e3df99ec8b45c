//! A tiny aggregate written by hand against the traits, for rustdoc examples and the
//! conformance suite. Not part of the API.

use std::future::{Future, ready};

use crate::{Aggregate, CommandContext, DecodeError, DomainEvent, EventEnvelope, Snapshots};

/// A counter that never goes below zero.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Counter {
    /// The sum of everything added and subtracted.
    pub total: u64,
}

/// What a counter can be asked.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum CounterCommand {
    /// Add to the total.
    Add(u64),
    /// Subtract from the total.
    Subtract(u64),
}

/// What happened to a counter.
#[derive(Debug, Clone, PartialEq)]
pub enum CounterEvent {
    /// The total grew.
    Added(u64),
    /// The total shrank.
    Subtracted(u64),
}

/// Why a counter refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CounterError {
    /// The total would go below zero.
    #[error("cannot subtract {by} from {total}")]
    WouldGoNegative {
        /// The total now.
        total: u64,
        /// What was to be subtracted.
        by: u64,
    },
}

impl DomainEvent for CounterEvent {
    const EVENT_TYPES: &'static [&'static str] = &["Added", "Subtracted"];

    fn event_type(&self) -> &'static str {
        match self {
            CounterEvent::Added(_) => "Added",
            CounterEvent::Subtracted(_) => "Subtracted",
        }
    }

    fn event_version(&self) -> u32 {
        1
    }

    fn encode(&self) -> Result<String, serde_json::Error> {
        match self {
            CounterEvent::Added(n) | CounterEvent::Subtracted(n) => serde_json::to_string(n),
        }
    }

    fn decode(event_type: &str, version: u32, payload: &str) -> Result<Self, DecodeError> {
        let variant = match event_type {
            "Added" => CounterEvent::Added,
            "Subtracted" => CounterEvent::Subtracted,
            other => return Err(DecodeError::unknown_type(other, Self::EVENT_TYPES)),
        };
        DecodeError::check_version(event_type, version, 1)?;
        serde_json::from_str(payload)
            .map(variant)
            .map_err(|e| DecodeError::payload(event_type, version, e))
    }
}

impl Aggregate for Counter {
    const TYPE: &'static str = "counter";
    type Id = String;
    type Command = CounterCommand;
    type Event = CounterEvent;
    type Error = CounterError;
    type Services = ();

    fn initial() -> Self {
        Self::default()
    }

    fn handle(
        &self,
        command: CounterCommand,
        _cx: &CommandContext<'_, Self>,
    ) -> impl Future<Output = Result<Vec<CounterEvent>, CounterError>> + Send {
        ready(match command {
            CounterCommand::Add(n) => Ok(vec![CounterEvent::Added(n)]),
            CounterCommand::Subtract(n) if n > self.total => Err(CounterError::WouldGoNegative {
                total: self.total,
                by: n,
            }),
            CounterCommand::Subtract(n) => Ok(vec![CounterEvent::Subtracted(n)]),
        })
    }

    fn apply(&mut self, event: &EventEnvelope<CounterEvent>) {
        match event.event {
            CounterEvent::Added(n) => self.total += n,
            CounterEvent::Subtracted(n) => self.total = self.total.saturating_sub(n),
        }
    }

    fn snapshots() -> Option<Snapshots<Self>> {
        Some(Snapshots::json(4, 1))
    }
}

/// A projection written by hand against the traits: the sum of every counter, shared by
/// clones (so a test keeps a clone to read while a runner owns the projection).
#[derive(Debug, Default, Clone)]
pub struct Counted {
    total: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Counted {
    /// The sum of all counters' totals.
    pub fn total(&self) -> i64 {
        self.total.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl crate::Projection for Counted {
    const NAME: &'static str = "counted";
    const VERSION: u32 = 1;
    const AGGREGATES: &'static [&'static str] = &[Counter::TYPE];
}

impl<C: Send> crate::ProjectionHandlers<C> for Counted {
    const CAN_RESET: bool = true;

    fn handle<'a>(
        &'a mut self,
        event: &'a crate::StoredEvent,
        _conn: &'a mut C,
    ) -> impl Future<Output = Result<(), crate::BoxError>> + Send + 'a {
        let delta =
            CounterEvent::decode(&event.event_type, event.event_version, &event.event).map(|e| {
                match e {
                    CounterEvent::Added(n) => n as i64,
                    CounterEvent::Subtracted(n) => -(n as i64),
                }
            });
        ready(delta.map_err(Into::into).map(|delta| {
            self.total
                .fetch_add(delta, std::sync::atomic::Ordering::SeqCst);
        }))
    }

    fn reset<'a>(
        &'a mut self,
        _conn: &'a mut C,
    ) -> impl Future<Output = Result<(), crate::BoxError>> + Send + 'a {
        self.total.store(0, std::sync::atomic::Ordering::SeqCst);
        ready(Ok(()))
    }
}

/// A process manager for examples: it copies every change of a counter to its `mirror-`
/// twin, and gives up (completes) a minute after the last change.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mirror;

impl crate::process::ProcessManager for Mirror {
    const NAME: &'static str = "mirror";
    const FOLLOWS: &'static [&'static str] = &["counter"];
    /// How many changes it copied.
    type State = u64;

    fn route(&self, event: &crate::StoredEvent) -> Result<crate::process::Route, crate::BoxError> {
        use crate::process::Route;
        Ok(match event.aggregate_id.starts_with("mirror-") {
            true => Route::Ignore,
            false => Route::Start(event.aggregate_id.clone()),
        })
    }

    fn handle(
        &self,
        copied: &mut u64,
        event: &crate::StoredEvent,
        effects: &mut crate::process::Effects,
    ) -> Result<(), crate::BoxError> {
        let twin = format!("mirror-{}", event.aggregate_id);
        match event.as_event_ref().decode::<CounterEvent>()? {
            CounterEvent::Added(n) => effects.send::<Counter>(twin, CounterCommand::Add(n)),
            CounterEvent::Subtracted(n) => {
                effects.send::<Counter>(twin, CounterCommand::Subtract(n))
            }
        }
        *copied += 1;
        effects.schedule("give-up", std::time::Duration::from_secs(60));
        Ok(())
    }

    fn on_deadline(
        &self,
        _: &mut u64,
        _: &str,
        effects: &mut crate::process::Effects,
    ) -> Result<(), crate::BoxError> {
        effects.complete();
        Ok(())
    }
}
