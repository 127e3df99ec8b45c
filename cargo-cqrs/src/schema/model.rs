//! The schema metadata a crate reports (`cqrs_runtime::schema::program_json`), read back
//! into the runtime's own types: the wire format is declared once, in `cqrs_runtime::schema`.

pub use cqrs_runtime::schema::{
    AggregateSchema as Aggregate, CommandSchema as Command, EventSchema as Event,
    EventVersionSchema as EventVersion, ProcessSchema as ProcessManager, ProgramSchema as Program,
    Upcast,
};
