//! The runtime of cargo-cqrs: event-sourced aggregates, versioned events with upcasting,
//! repositories with optimistic concurrency and snapshots, event stores, projections and an
//! event bus.
//!
//! This is the one crate a service depends on. With the default `derive` feature it also
//! exports the macros that write the boilerplate: [`Event`], [`Aggregate`](macro@Aggregate),
//! [`Command`], [`handlers`] and [`projection`](macro@projection).
//!
//! The flow: a [`Repository`] loads an [`AggregateRoot`] (snapshot + later events), runs a
//! command against its state ([`Aggregate::handle`]), appends the resulting events to the
//! [`EventStore`] if the stream is still at the version the command was decided on, and applies
//! them ([`Aggregate::apply`]). Read models follow the global log: a [`Projector`] applies a
//! `#[projection]` in batches, its checkpoint moving in the transaction that applied them
//! ([`projection`](mod@projection)). Events leave the service through a transactional outbox and come in
//! through idempotent subscribers ([`bus`]).
//!
//! Stores: [`InMemoryStore`], [`sqlite`] (the embedded default) and [`postgres`] (feature
//! `postgres`, for many instances sharing a database).
//!
//! See the crate README for a tour, and `examples/bank/src/lib.rs` in the repository for a
//! complete domain.
//!
//! ## Features
#![doc = document_features::document_features!()]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

// Lets the derives' `::cqrs_runtime::...` paths resolve inside this crate's own tests.
extern crate self as cqrs_runtime;

/// An info-level span of a unit of work, or `Span::none()` at the cost of one atomic load while
/// no tracing subscriber was ever installed. (`tracing`'s own check costs about 18 ns a span
/// here, since a dependency turns on its `log` feature; BENCHMARKS.md, "Spans".)
macro_rules! work_span {
    ($($span:tt)*) => {
        if ::tracing::dispatcher::has_been_set() {
            ::tracing::info_span!($($span)*)
        } else {
            ::tracing::Span::none()
        }
    };
}

mod contract;
mod kits;
mod observe;
mod repository;
mod stores;

pub mod bus;
pub mod process;
pub mod projection;

pub use crate::contract::schema;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub use crate::kits::testing;
pub use crate::observe::{health, metrics};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use crate::stores::postgres;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use crate::stores::sqlite;

#[doc(hidden)]
pub use crate::kits::doc_support;
#[cfg(feature = "derive")]
#[doc(hidden)]
pub use crate::kits::tour;

/// The README's Rust blocks, compiled and run as doctests: the README is a contract. (Some
/// blocks use every store and broker, so they are checked with all features.)
#[cfg(all(
    doctest,
    feature = "derive",
    feature = "sqlite",
    feature = "postgres",
    feature = "kafka",
    feature = "testing"
))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

// What the compiler names in its messages about generated code: rustc prints the shortest
// public path of a trait or function, so these short ones keep `__private` out of the errors
// users read.
#[doc(hidden)]
pub use crate::__private::cached::{Cloned, Uncached};
#[doc(hidden)]
pub use crate::__private::check::{
    IsNoCommand, IsNoEvent, IsOneCommand, IsOneEvent, IsWholeCommand, IsWholeEvent,
    UnderivedCommand, UnderivedEvent,
};
#[doc(hidden)]
pub use crate::__private::context::{ContextOf, NoContext, OtherContext, OwnContext};
#[doc(hidden)]
pub use crate::__private::follow::{Aggregates, Followed, NotFollowed};
#[doc(hidden)]
pub use crate::__private::refusal::{IntoRefusal, NoErrorDeclared, SameError, UnknownRefusal};
#[doc(hidden)]
pub use crate::__private::route::{
    AsEvents, DescribedCommands, DescribedEvents, NoEventType, NoEventsOf, ThroughDispatch,
    ThroughEventDispatch, ToApplier, ToHandler, Undescribed, Undispatched, UnknownEvents,
    UnroutedEvent,
};
#[doc(hidden)]
pub use crate::__private::stored::{Stored, Unstorable};
#[doc(hidden)]
pub use crate::__private::{
    AggregateState, CommandDispatch, CommandOf, CommandType, Contract, ContractEvents,
    EventDispatch, EventOf, EventPayload, EventType, EventVariant, Follows, GeneratedPayload,
    HandlerResult, Here, InitialState, OneCommand, OneEvent, Probe, RefusalWithoutError,
    RefusesExisting, SnapshotState, There, contract, event_payload, generated_payload, handled,
    initial, refusal, refuses_existing, sends_to, snapshots_json,
};

pub use crate::contract::aggregate::{Aggregate, AggregateId, AggregateRoot, Caching, Snapshots};
pub use crate::contract::command::{
    ApplyEvent, CommandContext, Existence, HandleCommand, IntoEvents,
};
pub use crate::contract::error::{AppendError, BoxError, CommandError, Conflict, StoreError};
pub use crate::contract::event::{
    DecodeError, DomainEvent, EventEnvelope, LogPosition, Metadata, StoredEvent, StoredEventRef,
};
pub use crate::contract::store::{
    CommandRecord, DEFAULT_COMMAND_RETENTION, EventStore, EventStoreExt, LogWatch, NewEvent,
    PAGE_SIZE, Snapshot, Wake,
};
pub use crate::contract::trace::{TRACEPARENT, TRACESTATE};
pub use crate::kits::aggregate_test::{AggregateTest, Outcome};
pub use crate::kits::process_test::ProcessTest;
pub use crate::projection::{
    PoisonPolicy, Projection, ProjectionError, ProjectionHandlers, ProjectionTarget, Projector,
};
pub use crate::repository::{CacheLimits, Committed, Repository, RetryPolicy};
pub use crate::stores::memory::InMemoryStore;

#[doc = include_str!("../docs/aggregate.md")]
#[cfg(feature = "derive")]
pub use cqrs_macros::Aggregate;
#[doc = include_str!("../docs/command.md")]
#[cfg(feature = "derive")]
pub use cqrs_macros::Command;
#[doc = include_str!("../docs/event.md")]
#[cfg(feature = "derive")]
pub use cqrs_macros::Event;
#[doc = include_str!("../docs/handlers.md")]
#[cfg(feature = "derive")]
pub use cqrs_macros::handlers;
#[doc = include_str!("../docs/process_manager.md")]
#[cfg(feature = "derive")]
pub use cqrs_macros::process_manager;
#[doc = include_str!("../docs/projection.md")]
#[cfg(feature = "derive")]
pub use cqrs_macros::projection;

/// The names most services need: `use cqrs_runtime::prelude::*;`.
pub mod prelude {
    // `Aggregate` brings both the trait and, with `derive`, the derive macro.
    pub use crate::{
        Aggregate, AggregateRoot, AggregateTest, CommandContext, CommandError, DomainEvent,
        EventEnvelope, EventStore, EventStoreExt, InMemoryStore, Metadata, PoisonPolicy, Projector,
        Repository, RetryPolicy, StoredEvent,
    };
    #[cfg(feature = "derive")]
    pub use crate::{Command, Event, handlers, projection};
}
