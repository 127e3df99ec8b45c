//! The runtime of cargo-cqrs: event-sourced aggregates, versioned events with upcasting,
//! repositories with optimistic concurrency and snapshots, and event stores.
//!
//! This is the one crate a service depends on. With the default `derive` feature it also
//! exports the macros that write the boilerplate: [`Event`], [`Aggregate`](macro@Aggregate),
//! [`Command`] and [`handlers`].
//!
//! The flow: a [`Repository`] loads an [`AggregateRoot`] (snapshot + later events), runs a
//! command against its state ([`Aggregate::handle`]), appends the resulting events to the
//! [`EventStore`] if the stream is still at the version the command was decided on, and applies
//! them ([`Aggregate::apply`]).
//!
//! See the crate README for a tour, and `examples/bank.rs` for a complete domain.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

// Lets the derives' `::cqrs_runtime::...` paths resolve inside this crate's own tests.
extern crate self as cqrs_runtime;

mod aggregate;
mod aggregate_test;
mod command;
mod error;
mod event;
mod memory;
mod repository;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
mod store;

pub mod bus;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod projection;
pub mod schema;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

#[doc(hidden)]
pub mod doc_support;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use crate::aggregate::{Aggregate, AggregateId, AggregateRoot, Snapshots};
pub use crate::aggregate_test::{AggregateTest, Outcome};
pub use crate::command::{ApplyEvent, CommandContext, HandleCommand, IntoEvents};
pub use crate::error::{AppendError, BoxError, CommandError, Conflict, StoreError};
pub use crate::event::{
    DecodeError, DomainEvent, EventEnvelope, LogPosition, Metadata, StoredEvent,
};
pub use crate::memory::InMemoryStore;
pub use crate::projection::{
    PoisonPolicy, Projection, ProjectionError, ProjectionHandlers, ProjectionTarget, Projector,
};
pub use crate::repository::{Committed, Repository, RetryPolicy};
pub use crate::store::{EventStore, EventStoreExt, LogWatch, NewEvent, PAGE_SIZE, Snapshot, Wake};

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
