//! Schema metadata: every aggregate's commands and events, each event version with its JSON
//! Schema, gathered from a crate without a hand-written registry.
//!
//! With the `schema` feature, `#[derive(Aggregate)]` registers each aggregate at link time
//! (through `inventory`) and [`aggregates`] lists them. `cargo cqrs schema export|check` turns
//! the feature on for its own build and reads this list as JSON ([`aggregates_json`]) into these
//! same types: the wire format is declared once, here. Without the feature, the derives write
//! no schema code at all (no `JsonSchema` impls, no descriptions, no registration), which
//! compiles faster; the types here stay, for tools that read an export.

use serde::{Deserialize, Serialize};

use crate::contract::aggregate::Aggregate;
use crate::contract::event::{DomainEvent, LogPosition, Metadata, StoredEvent};

/// How a stored version reaches the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Upcast {
    /// This is the current version: nothing to do.
    Current,
    /// `From<ThisVersion> for NextVersion`.
    From,
    /// A named function from this version's type to the next one's.
    Function,
    /// A function over the raw JSON.
    Json,
}

/// One stored version of an event type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventVersionSchema {
    /// The version number, from 1.
    pub version: u32,
    /// The Rust type of this version's payload; `None` for a version known only as JSON.
    pub rust_type: Option<String>,
    /// The JSON Schema of the payload; `None` for a version known only as JSON.
    pub schema: Option<serde_json::Value>,
    /// How this version is upcast to the next.
    pub upcast: Upcast,
}

/// One event type with every version stored data may hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSchema {
    /// The stored type name.
    pub event_type: String,
    /// Older names still accepted when reading.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The current version.
    pub version: u32,
    /// Versions 1 to `version`, in order.
    pub versions: Vec<EventVersionSchema>,
}

/// One command type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandSchema {
    /// The command's name (the variant or struct name).
    pub name: String,
    /// The Rust type of the command's payload.
    pub rust_type: String,
    /// The JSON Schema of the payload.
    pub schema: serde_json::Value,
}

/// An aggregate with its commands and events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateSchema {
    /// The stored aggregate type name.
    pub aggregate_type: String,
    /// The Rust path of the state type, as written in the crate (`module_path!` + name).
    pub rust_type: String,
    /// Its commands, in declaration order.
    pub commands: Vec<CommandSchema>,
    /// Its events, in declaration order.
    pub events: Vec<EventSchema>,
}

/// Events that can describe themselves; implemented by `#[derive(Event)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event type: add `#[derive(Event)]` to it, or name the event enum it is a payload of",
    label = "not a `#[derive(Event)]` type",
    note = "`event = ...` names the aggregate's event enum (or an event struct), whose `#[derive(Event)]` routes each event to its applier"
)]
pub trait DescribeEvents {
    /// Every event type with its versions.
    fn describe_events() -> Vec<EventSchema>;
}

/// Commands that can describe themselves; implemented by `#[derive(Command)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a command type: add `#[derive(Command)]` to it, or name the command enum it is a payload of",
    label = "not a `#[derive(Command)]` type",
    note = "`command = ...` names the aggregate's command enum (or a command struct), whose `#[derive(Command)]` routes each command to its handler"
)]
pub trait DescribeCommands {
    /// Every command.
    fn describe_commands() -> Vec<CommandSchema>;
}

/// The link-time registry entry `#[derive(Aggregate)]` submits.
#[cfg(feature = "schema")]
#[doc(hidden)]
#[derive(Debug)]
pub struct Registration {
    pub describe: fn() -> AggregateSchema,
}

#[cfg(feature = "schema")]
inventory::collect!(Registration);

/// Every aggregate derived in the program, sorted by aggregate type name.
#[cfg(feature = "schema")]
#[cfg_attr(docsrs, doc(cfg(feature = "schema")))]
pub fn aggregates() -> Vec<AggregateSchema> {
    // The runtime's own aggregates (the README tour's domain, for its doctests) are not the
    // program's.
    let mut all: Vec<_> = inventory::iter::<Registration>
        .into_iter()
        .map(|r| (r.describe)())
        .filter(|a| !a.rust_type.starts_with("cqrs_runtime::"))
        .collect();
    all.sort_by(|a, b| a.aggregate_type.cmp(&b.aggregate_type));
    all
}

/// What a process manager consumes and sends, as `#[process_manager]` declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSchema {
    /// Its stable name (instances, checkpoint, command keys).
    pub name: String,
    /// The Rust path of its state type.
    pub rust_type: String,
    /// The events it handles, by followed aggregate.
    pub follows: Vec<FollowedEvents>,
    /// The events of other services it handles, by event enum of `contracts(...)` (absent
    /// when it has none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receives: Vec<ReceivedEvents>,
    /// The aggregates it may send commands to (`sends(...)`), with their commands.
    pub sends: Vec<SentCommands>,
    /// The deadlines it handles.
    pub deadlines: Vec<String>,
}

/// The event types of one aggregate a process manager handles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowedEvents {
    /// The aggregate type.
    pub aggregate_type: String,
    /// Its stored event type names that reach a handler, in declaration order.
    pub event_types: Vec<String>,
}

impl FollowedEvents {
    /// The event types of `A` for which `handles` says yes, asked with an envelope of that
    /// aggregate and type.
    pub fn of<A: Aggregate>(handles: impl Fn(&StoredEvent) -> bool) -> Self {
        FollowedEvents {
            aggregate_type: A::TYPE.to_owned(),
            event_types: handled::<A::Event>(A::TYPE, handles),
        }
    }
}

/// The event types of one event enum of another service (`contracts(...)`) a process manager
/// handles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedEvents {
    /// The Rust name of the enum, as written in `contracts(...)`.
    pub contract: String,
    /// Its stored event type names that reach a handler, in declaration order.
    pub event_types: Vec<String>,
}

impl ReceivedEvents {
    /// The event types of `E` for which `handles` says yes, asked with an envelope of each.
    pub fn of<E: DomainEvent>(contract: &str, handles: impl Fn(&StoredEvent) -> bool) -> Self {
        ReceivedEvents {
            contract: contract.to_owned(),
            event_types: handled::<E>("", handles),
        }
    }
}

/// The stored type names of `E` for which `handles` says yes, asked with an envelope of
/// `aggregate_type` and each name, in declaration order.
fn handled<E: DomainEvent>(
    aggregate_type: &str,
    handles: impl Fn(&StoredEvent) -> bool,
) -> Vec<String> {
    let mut probe = StoredEvent {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: String::new(),
        sequence: 0,
        position: LogPosition::default(),
        event_id: uuid::Uuid::nil(),
        event_type: String::new(),
        event_version: 0,
        recorded_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        metadata: Metadata::default(),
        event: String::new(),
    };
    E::EVENT_TYPES
        .iter()
        .filter(|name| {
            probe.event_type.clear();
            probe.event_type.push_str(name);
            handles(&probe)
        })
        .map(|name| (*name).to_owned())
        .collect()
}

/// The commands of one aggregate a process manager may send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentCommands {
    /// The aggregate type.
    pub aggregate_type: String,
    /// Its command names.
    pub commands: Vec<String>,
}

/// The link-time registry entry `#[process_manager]` submits.
#[cfg(feature = "schema")]
#[doc(hidden)]
#[derive(Debug)]
pub struct ProcessRegistration {
    pub describe: fn() -> ProcessSchema,
}

#[cfg(feature = "schema")]
inventory::collect!(ProcessRegistration);

/// Every process manager declared with `#[process_manager]` in the program, sorted by name.
#[cfg(feature = "schema")]
#[cfg_attr(docsrs, doc(cfg(feature = "schema")))]
pub fn process_managers() -> Vec<ProcessSchema> {
    let mut all: Vec<_> = inventory::iter::<ProcessRegistration>
        .into_iter()
        .map(|r| (r.describe)())
        .filter(|p| !p.rust_type.starts_with("cqrs_runtime::"))
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

/// What a program declares: its aggregates and its process managers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgramSchema {
    /// Every aggregate, sorted by aggregate type.
    pub aggregates: Vec<AggregateSchema>,
    /// Every process manager, sorted by name.
    #[serde(default)]
    pub process_managers: Vec<ProcessSchema>,
}

/// [`aggregates`] and [`process_managers`] as JSON ([`ProgramSchema`]): what
/// `cargo cqrs schema export|check` reads from a crate, through a small program linked with it
/// that prints this.
#[cfg(feature = "schema")]
#[cfg_attr(docsrs, doc(cfg(feature = "schema")))]
pub fn program_json() -> String {
    let program = ProgramSchema {
        aggregates: aggregates(),
        process_managers: process_managers(),
    };
    // Serializing plain strings, numbers and JSON values cannot fail.
    serde_json::to_string(&program).unwrap_or_else(|_| "{}".to_owned())
}

/// The JSON Schema of a type, as a JSON value (draft 2020-12).
#[cfg(feature = "schema")]
#[cfg_attr(docsrs, doc(cfg(feature = "schema")))]
pub fn schema_of<T: schemars::JsonSchema>() -> serde_json::Value {
    schemars::schema_for!(T).to_value()
}

/// [`aggregates`] as JSON: what `cargo cqrs schema export|check` reads from a crate, through a
/// small program linked with it that prints this.
#[cfg(feature = "schema")]
#[cfg_attr(docsrs, doc(cfg(feature = "schema")))]
pub fn aggregates_json() -> String {
    // Serializing plain strings, numbers and JSON values cannot fail.
    serde_json::to_string(&aggregates()).unwrap_or_else(|_| "[]".to_owned())
}
