//! Aggregates: the consistency boundary. An aggregate decides on commands from its current
//! state and changes state only by applying its own events.
//!
//! [`Aggregate`] is what `#[derive(Aggregate)]` implements; [`AggregateRoot`] is a loaded
//! aggregate with its id and version, where version 0 means "never created".

use std::fmt;
use std::fmt::{Debug, Display};
use std::future::Future;
use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::contract::command::CommandContext;
use crate::contract::event::{DomainEvent, EventEnvelope};

/// An identifier of an aggregate instance. Stored as its `Display` form.
///
/// Implemented for every type with `Display + FromStr` (`String`, `Uuid`, integers, newtypes
/// that implement both).
pub trait AggregateId: Debug + Display + FromStr + Clone + Send + Sync + 'static {}

impl<T> AggregateId for T where T: Debug + Display + FromStr + Clone + Send + Sync + 'static {}

/// The state of one aggregate type, with its commands, events and errors.
///
/// The state starts at [`Aggregate::initial`] (its `Default`, for a derived aggregate), and only
/// [`Aggregate::apply`] changes it. Whether an
/// instance exists is not part of the state: it is [`AggregateRoot::exists`] (some event was
/// recorded), also visible to handlers as [`CommandContext::exists`].
pub trait Aggregate: Send + Sync + Sized + 'static {
    /// The stored aggregate type name, e.g. `"bank_account"`. Never change it once events exist.
    const TYPE: &'static str;

    /// Identifies one instance.
    type Id: AggregateId;
    /// What callers ask the aggregate to do.
    type Command: Send + 'static;
    /// What happened; the only way state changes.
    type Event: DomainEvent;
    /// Why the aggregate refused a command.
    type Error: std::error::Error + Send + Sync + 'static;
    /// What handlers may use from the outside world (clients, clocks, lookups); `()` if nothing.
    type Services: Send + Sync + 'static;

    /// The state before the first event. `#[derive(Aggregate)]` writes `Default::default()`.
    fn initial() -> Self;

    /// Decides which events a command produces, without changing state.
    fn handle(
        &self,
        command: Self::Command,
        cx: &CommandContext<'_, Self>,
    ) -> impl Future<Output = Result<Vec<Self::Event>, Self::Error>> + Send;

    /// Changes state by one recorded event. Must not fail: the event already happened.
    fn apply(&mut self, event: &EventEnvelope<Self::Event>);

    /// A command's name for traces and metrics: low in cardinality, never the command's data.
    /// `#[derive(Aggregate)]` names each command as its schema does (the variant's name, or
    /// the struct's); the default is the command type's own name, without its path.
    fn command_name(command: &Self::Command) -> &'static str {
        let _ = command;
        short_type_name::<Self::Command>()
    }

    /// How this aggregate is snapshotted; `None` (the default) replays every event on load.
    fn snapshots() -> Option<Snapshots<Self>> {
        None
    }

    /// How the repository's aggregate cache keeps this state; `None` keeps it out of the cache,
    /// so that every command loads it from the store. `#[derive(Aggregate)]` returns
    /// [`Caching::cloned`] when the type is `Clone`, and `None` when it is not; a hand-written
    /// impl returns `None` unless it says otherwise.
    fn caching() -> Option<Caching<Self>> {
        None
    }
}

/// How the repository's cache copies a state and weighs it (see [`Aggregate::caching`]).
pub struct Caching<A> {
    copy: fn(&A) -> A,
    heap_bytes: fn(&A) -> usize,
}

impl<A> fmt::Debug for Caching<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caching").finish_non_exhaustive()
    }
}

impl<A: Clone> Caching<A> {
    /// Cached copies made with `Clone`, weighed at the type's own size (see
    /// [`heap_bytes`](Self::heap_bytes)).
    pub fn cloned() -> Self {
        Caching {
            copy: A::clone,
            heap_bytes: |_| 0,
        }
    }
}

impl<A> Caching<A> {
    /// Counts what a state holds on the heap (its collections and strings) towards the cache's
    /// byte limit, beside the type's own size and the id. Without it a state weighs
    /// `size_of::<A>()`: enough for states of scalars, too little for one that grows with its
    /// events.
    pub fn heap_bytes(self, heap_bytes: fn(&A) -> usize) -> Self {
        Caching { heap_bytes, ..self }
    }

    pub(crate) fn copy(&self, state: &A) -> A {
        (self.copy)(state)
    }

    /// The bytes an entry of this state counts: its size, its heap, and its id's text.
    pub(crate) fn weight(&self, state: &A, id: &str) -> usize {
        std::mem::size_of::<A>() + (self.heap_bytes)(state) + id.len()
    }
}

/// A snapshot policy and codec for an aggregate's state.
pub struct Snapshots<A> {
    /// Take a snapshot once this many events were recorded since the last one.
    pub every: u64,
    /// Identifies the shape of the state type; a stored snapshot with another fingerprint is
    /// ignored and the stream is replayed. Change it whenever the state's serialized form
    /// changes (`#[derive(Aggregate)]` derives it from the state's definition).
    pub fingerprint: u64,
    encode: fn(&A) -> Result<String, serde_json::Error>,
    decode: fn(&str) -> Result<A, serde_json::Error>,
}

impl<A> Debug for Snapshots<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots")
            .field("every", &self.every)
            .field("fingerprint", &format_args!("{:016x}", self.fingerprint))
            .finish()
    }
}

impl<A: Serialize + DeserializeOwned> Snapshots<A> {
    /// Snapshots serialized as JSON with serde, taken every `every` events.
    ///
    /// `every` of 0 is treated as 1.
    pub fn json(every: u64, fingerprint: u64) -> Self {
        Snapshots {
            every: every.max(1),
            fingerprint,
            encode: |state| serde_json::to_string(state),
            decode: |json| serde_json::from_str(json),
        }
    }
}

impl<A> Snapshots<A> {
    /// Serializes a state.
    pub fn encode(&self, state: &A) -> Result<String, serde_json::Error> {
        (self.encode)(state)
    }

    /// Deserializes a state.
    pub fn decode(&self, json: &str) -> Result<A, serde_json::Error> {
        (self.decode)(json)
    }
}

/// A loaded aggregate: its id, its version (the sequence of its last event) and its state.
#[derive(Debug, Clone)]
pub struct AggregateRoot<A: Aggregate> {
    pub(crate) id: A::Id,
    pub(crate) version: u64,
    pub(crate) state: A,
    /// The version of the newest stored snapshot, to know when the next one is due.
    pub(crate) snapshot_version: u64,
}

impl<A: Aggregate> AggregateRoot<A> {
    /// A root that was never created: version 0, default state.
    pub fn new(id: A::Id) -> Self {
        AggregateRoot {
            id,
            version: 0,
            state: A::initial(),
            snapshot_version: 0,
        }
    }

    /// The aggregate's id.
    pub fn id(&self) -> &A::Id {
        &self.id
    }

    /// The sequence of the last applied event; 0 if none.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether any event was ever recorded for this aggregate.
    pub fn exists(&self) -> bool {
        self.version > 0
    }

    /// The current state.
    pub fn state(&self) -> &A {
        &self.state
    }

    /// Takes the state.
    pub fn into_state(self) -> A {
        self.state
    }

    /// Applies a recorded event, checking that it is the next one in the stream.
    pub(crate) fn apply(&mut self, event: &EventEnvelope<A::Event>) {
        self.state.apply(event);
        self.version = event.sequence;
    }
}

/// A type's name without its module path or type arguments: `Open` for
/// `bank::commands::Open<u8>`.
pub(crate) fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let plain = full.split('<').next().unwrap_or(full);
    plain.rsplit("::").next().unwrap_or(plain)
}
