//! What generated code reaches the runtime through: `::cqrs_runtime::__private::...`.
//! Not a public API; it changes with the macros, which are pinned to this exact version.

use std::future::Future;

pub use futures::future::Either;
#[cfg(feature = "schema")]
pub use inventory;
// With the `schema` feature, schemars' `JsonSchema` (trait and derive); without it, only a
// derive that writes nothing (and accepts the `#[schemars(...)]` attributes), for the payload
// structs the derives generate.
#[cfg(all(feature = "derive", not(feature = "schema")))]
pub use cqrs_macros::NoJsonSchema as JsonSchema;
#[cfg(feature = "schema")]
pub use schemars::{self, JsonSchema};

/// Schema items (descriptions, the registration): kept with the `schema` feature, dropped
/// without it.
#[cfg(feature = "schema")]
#[doc(hidden)]
#[macro_export]
macro_rules! __cqrs_schema_items {
    ($($item:item)*) => { $($item)* };
}
#[cfg(not(feature = "schema"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __cqrs_schema_items {
    ($($item:item)*) => {};
}
pub use crate::__cqrs_schema_items as schema_items;
pub use serde::de::DeserializeOwned;
pub use serde::{self, Deserialize, Serialize};
pub use serde_json;

pub use crate::contract::aggregate::{Aggregate, Snapshots};
pub use crate::contract::command::{
    ApplyEvent, CommandContext, Existence, HandleCommand, IntoEvents,
};
pub use crate::contract::event::{DecodeError, DomainEvent, EventEnvelope};
pub use crate::contract::schema::{
    AggregateSchema, CommandSchema, DescribeCommands, DescribeEvents, EventSchema,
    EventVersionSchema, Upcast,
};
#[cfg(feature = "schema")]
pub use crate::contract::schema::{Registration, schema_of};

/// Routes each variant of an event enum to `ApplyEvent<Payload>`; implemented by
/// `#[derive(Event)]` for every aggregate that applies all of its payload types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event type: add `#[derive(Event)]` to `{Self}`",
    label = "not a `#[derive(Event)]` type"
)]
pub trait EventDispatch<A: Aggregate<Event = Self>>: Sized {
    fn dispatch(state: &mut A, envelope: &EventEnvelope<Self>);
}

/// Routes each variant of a command enum to `HandleCommand<Payload>`; implemented by
/// `#[derive(Command)]` for every aggregate that handles all of its payload types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a command type: add `#[derive(Command)]` to `{Self}`",
    label = "not a `#[derive(Command)]` type",
    note = "an aggregate's `command = ...` names its command enum (or a command struct); `#[derive(Command)]` routes each of its commands to a handler"
)]
pub trait CommandDispatch<A: Aggregate>: Sized {
    fn dispatch(
        self,
        state: &A,
        cx: &CommandContext<'_, A>,
    ) -> impl Future<Output = Result<Vec<A::Event>, A::Error>> + Send;

    /// When the command's handler runs: its `HandleCommand::EXISTENCE`.
    fn existence(&self) -> Existence;
}

/// Marks a payload struct a derive wrote for a variant (or an older version) of `E`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` here is another item than the payload struct `#[derive]` writes for a variant of `{E}`",
    label = "an item named `{Self}` already exists in this module",
    note = "a variant with named fields (or an `upcast(vN {{ ... }})`) gets a struct of the same name: rename the variant or the other item, or wrap your own struct, `Variant(MyStruct)`"
)]
pub trait GeneratedPayload<E> {}

/// Checks that a name resolves to the payload struct written for `E`; spanned at the variant.
pub const fn generated_payload<P: GeneratedPayload<E>, E>() {}

/// Implemented by `#[derive(Aggregate)]` when `#[aggregate(exists = ...)]` declares how a
/// `#[create]` handler refuses an aggregate that already exists.
#[diagnostic::on_unimplemented(
    message = "`#[create]` runs only on a new `{Self}`, but `{Self}` declares no refusal for one that exists",
    label = "needs `exists = ...` on the aggregate",
    note = "add the error to return to `#[aggregate(...)]` of `{Self}`, e.g. `exists = CardError::AlreadyRegistered`"
)]
pub trait RefusesExisting {}

/// Checks a `#[create]` handler's aggregate declares its refusal; spanned at `#[create]`.
pub const fn refuses_existing<A: RefusesExisting>() {}

/// Turns what an infallible handler returned into the aggregate's events.
#[inline]
pub fn events<A, T>(events: T) -> Result<Vec<A::Event>, A::Error>
where
    A: Aggregate,
    T: IntoEvents<A::Event>,
{
    Ok(events.into_events())
}

/// The command type of an aggregate whose `#[aggregate(...)]` does not name it: the stub impl
/// written beside that error uses it. It satisfies every bound generated code puts on a
/// command type, so the missing key is the only error. It has no values: nothing with it ever
/// runs, since the crate does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {}

/// Turns what a handler returned into the aggregate's events or error.
#[inline]
pub fn outcome<A, T, Er>(result: Result<T, Er>) -> Result<Vec<A::Event>, A::Error>
where
    A: Aggregate,
    T: IntoEvents<A::Event>,
    Er: Into<A::Error>,
{
    match result {
        Ok(events) => Ok(events.into_events()),
        Err(error) => Err(error.into()),
    }
}

/// Deserializes a stored payload as the shape of one version.
#[inline]
pub fn from_str<T: serde::de::DeserializeOwned>(
    event_type: &str,
    version: u32,
    payload: &str,
) -> Result<T, DecodeError> {
    serde_json::from_str(payload).map_err(|e| DecodeError::payload(event_type, version, e))
}

/// Deserializes an upcast JSON value as the shape of one version.
#[inline]
pub fn from_value<T: serde::de::DeserializeOwned>(
    event_type: &str,
    version: u32,
    value: serde_json::Value,
) -> Result<T, DecodeError> {
    serde_json::from_value(value).map_err(|e| DecodeError::payload(event_type, version, e))
}

/// Serializes a typed version to JSON, for a raw JSON hop that follows it.
#[inline]
pub fn to_value<T: serde::Serialize>(
    event_type: &str,
    version: u32,
    value: T,
) -> Result<serde_json::Value, DecodeError> {
    serde_json::to_value(value).map_err(|e| DecodeError::upcast(event_type, version, e))
}

/// Runs a raw JSON upcaster from `from_version` to the next version.
#[inline]
pub fn json_hop<Er>(
    event_type: &str,
    from_version: u32,
    value: serde_json::Value,
    hop: fn(serde_json::Value) -> Result<serde_json::Value, Er>,
) -> Result<serde_json::Value, DecodeError>
where
    Er: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    hop(value).map_err(|e| DecodeError::upcast(event_type, from_version, e))
}

/// Runs a typed upcast written as a closure or a function, `upcast(v1 { .. } => |v1| ..)`:
/// the bound gives a closure its parameter type.
#[inline]
pub fn upcast_with<A, B>(hop: impl FnOnce(A) -> B, value: A) -> B {
    hop(value)
}

/// Serializes an event payload.
#[inline]
pub fn encode<T: serde::Serialize + ?Sized>(payload: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string(payload)
}

/// The `std::any::type_name` of a type, for schema metadata.
#[inline]
pub fn type_name<T: ?Sized>() -> &'static str {
    std::any::type_name::<T>()
}

/// What `snapshot_every` needs of the state: one bound, so a missing derive is one error.
#[diagnostic::on_unimplemented(
    message = "`snapshot_every` stores `{Self}` as JSON, but `{Self}` is not Serialize and Deserialize",
    label = "snapshots need serde",
    note = "add `#[derive(serde::Serialize, serde::Deserialize)]` to `{Self}`, or remove `snapshot_every`"
)]
pub trait SnapshotState: Serialize + DeserializeOwned {}

impl<T: Serialize + DeserializeOwned> SnapshotState for T {}

/// JSON snapshots for a derived aggregate.
#[inline]
pub fn snapshots_json<A: SnapshotState>(every: u64, fingerprint: u64) -> Snapshots<A> {
    Snapshots::json(every, fingerprint)
}

// ------------------------------------------------------------------------------ projections

pub use crate::contract::event::StoredEvent;
pub use crate::projection::{Projection, ProjectionHandlers};

/// A payload type of an event type: implemented by `#[derive(Event)]` for each variant's
/// payload (or for a standalone event struct itself).
pub trait EventVariant<P>: DomainEvent {
    /// Whether a stored type name (the current one or an alias) is this variant's.
    fn is_stored_as(event_type: &str) -> bool;
    /// The payload, if the decoded event is this variant.
    fn into_variant(self) -> Option<P>;
}

/// Index of the aggregate whose events include a payload type, in a list `(A1, (A2, ()))`.
/// Inferred by the compiler: exactly one aggregate of the list may have the payload.
#[derive(Debug)]
pub struct Here;
/// See [`Here`].
#[derive(Debug)]
pub struct There<I>(std::marker::PhantomData<I>);

/// The aggregates a projection follows, as a list, with the one that stores `P` found at `I`.
#[diagnostic::on_unimplemented(
    message = "`{P}` is not an event of any aggregate this projection follows",
    label = "not an event of the aggregates in `#[projection(aggregates(...))]`",
    note = "add the aggregate whose event enum has a `{P}` variant to `aggregates(...)`, or handle one of its payload types"
)]
pub trait Follows<P, I> {
    /// Whether a stored event is a `P`: its aggregate type and stored type name.
    fn routes(event: &StoredEvent) -> bool;
    /// Decodes a stored `P` through its aggregate's upcasters.
    fn decode(event: &StoredEvent) -> Result<P, DecodeError>;
}

impl<P, A, R> Follows<P, Here> for (A, R)
where
    A: Aggregate,
    A::Event: EventVariant<P>,
{
    #[inline]
    fn routes(event: &StoredEvent) -> bool {
        event.aggregate_type == A::TYPE
            && <A::Event as EventVariant<P>>::is_stored_as(&event.event_type)
    }

    #[inline]
    fn decode(event: &StoredEvent) -> Result<P, DecodeError> {
        let decoded = <A::Event as DomainEvent>::decode(
            &event.event_type,
            event.event_version,
            &event.event,
        )?;
        decoded
            .into_variant()
            .ok_or_else(|| DecodeError::unknown_type(&event.event_type, A::Event::EVENT_TYPES))
    }
}

impl<P, A, R, I> Follows<P, There<I>> for (A, R)
where
    R: Follows<P, I>,
{
    #[inline]
    fn routes(event: &StoredEvent) -> bool {
        R::routes(event)
    }

    #[inline]
    fn decode(event: &StoredEvent) -> Result<P, DecodeError> {
        R::decode(event)
    }
}

/// Whether `event` is a `P` of one of the aggregates `L`.
#[inline]
pub fn routes<P, L: Follows<P, I>, I>(event: &StoredEvent) -> bool {
    L::routes(event)
}

/// Decodes `event` as a `P` of one of the aggregates `L`.
#[inline]
pub fn decode_payload<P, L: Follows<P, I>, I>(
    event: &StoredEvent,
) -> Result<P, crate::contract::error::BoxError> {
    L::decode(event).map_err(Into::into)
}

/// What a projection handler may return: nothing, or a `Result` whose error converts into a
/// boxed error.
#[diagnostic::on_unimplemented(
    message = "a projection handler returns `()` or `Result<(), E>`, not `{Self}`",
    label = "this return type",
    note = "`E` may be any error type, e.g. `sqlx::Error`, `std::io::Error` or `Box<dyn Error + Send + Sync>`"
)]
pub trait HandlerResult {
    /// The outcome as the runner sees it.
    fn into_outcome(self) -> Result<(), crate::contract::error::BoxError>;
}

impl HandlerResult for () {
    #[inline]
    fn into_outcome(self) -> Result<(), crate::contract::error::BoxError> {
        Ok(())
    }
}

impl<E: Into<crate::contract::error::BoxError>> HandlerResult for Result<(), E> {
    #[inline]
    fn into_outcome(self) -> Result<(), crate::contract::error::BoxError> {
        self.map_err(Into::into)
    }
}

/// Converts what a projection handler returned.
#[inline]
pub fn handled<R: HandlerResult>(result: R) -> Result<(), crate::contract::error::BoxError> {
    result.into_outcome()
}
pub use crate::contract::error::BoxError;
