//! The schema metadata a crate reports (`cqrs_runtime::schema::aggregates_json`), read back
//! into the runtime's own types: the wire format is declared once, in `cqrs_runtime::schema`.

pub use cqrs_runtime::schema::{
    AggregateSchema as Aggregate, CommandSchema as Command, EventSchema as Event,
    EventVersionSchema as EventVersion, Upcast,
};
