//! The contracts: what an aggregate, a command, an event, an error and an event store are.
//! The lowest layer: it names no backend, no follower and no broker; every other layer
//! builds on it (`tests/layers.rs` checks that nothing here imports from above).

pub(crate) mod aggregate;
pub(crate) mod command;
pub(crate) mod error;
pub(crate) mod event;
pub mod schema;
pub(crate) mod store;
pub(crate) mod trace;
