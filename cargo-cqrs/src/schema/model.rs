//! The schema metadata a crate reports (`cqrs_runtime::schema::aggregates_json`), read back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a stored version reaches the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Upcast {
    /// The current version.
    Current,
    /// `From<ThisVersion> for NextVersion`.
    From,
    /// A named function.
    Function,
    /// A function over the raw JSON.
    Json,
}

/// One stored version of an event type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventVersion {
    pub version: u32,
    pub rust_type: Option<String>,
    pub schema: Option<Value>,
    pub upcast: Upcast,
}

/// One event type with every version stored data may hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_type: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub version: u32,
    pub versions: Vec<EventVersion>,
}

/// One command type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub name: String,
    pub rust_type: String,
    pub schema: Value,
}

/// An aggregate with its commands and events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub aggregate_type: String,
    pub rust_type: String,
    pub commands: Vec<Command>,
    pub events: Vec<Event>,
}
