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

pub use crate::contract::aggregate::{Aggregate, AggregateId, Caching, Snapshots};
pub use crate::contract::command::{
    ApplyEvent, CommandContext, Existence, HandleCommand, IntoEvents,
};
pub use crate::contract::event::{DecodeError, DomainEvent, EventEnvelope};
pub use crate::contract::schema::{
    AggregateSchema, CommandSchema, DescribeCommands, DescribeEvents, EventSchema,
    EventVersionSchema, FollowedEvents, ProcessSchema, ReceivedEvents, SentCommands, Upcast,
};
#[cfg(feature = "schema")]
pub use crate::contract::schema::{ProcessRegistration, Registration, schema_of};

/// Routes each variant of an event enum to `ApplyEvent<Payload>`; implemented by
/// `#[derive(Event)]` for every aggregate that applies all of its payload types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event type: add `#[derive(Event)]` to it, or name the event enum it is a payload of",
    label = "not a `#[derive(Event)]` type",
    note = "`event = ...` names the aggregate's event enum (or an event struct), whose `#[derive(Event)]` routes each event to its applier"
)]
pub trait EventDispatch<A: Aggregate<Event = Self>>: Sized {
    fn dispatch(state: &mut A, envelope: &EventEnvelope<Self>);
}

/// Routes each variant of a command enum to `HandleCommand<Payload>`; implemented by
/// `#[derive(Command)]` for every aggregate that handles all of its payload types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a command type: add `#[derive(Command)]` to it, or name the command enum it is a payload of",
    label = "not a `#[derive(Command)]` type",
    note = "`command = ...` names the aggregate's command enum (or a command struct), whose `#[derive(Command)]` routes each command to its handler"
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

/// Marks a command type of `C`: written by `#[derive(Command)]` for each variant's payload
/// type of a command enum, and for a command struct itself.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a command of `{C}`: this handler can never run",
    label = "not a command of `{C}`",
    note = "add a variant to `{C}`, e.g. `{Self}({Self})`, or remove the handler; an event is applied by `fn name(&mut self, event: &{Self})`"
)]
pub trait CommandOf<C> {}

/// Marks a type `#[derive(Command)]` wrote its routing for (enum or struct).
pub trait CommandType {}

/// Marks an event type of `E`: written by `#[derive(Event)]` for each variant's payload type of
/// an event enum, and for an event struct itself.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event of `{E}`: this applier can never run",
    label = "not an event of `{E}`",
    note = "add a variant to `{E}`, e.g. `{Self}({Self})`, or remove the applier; a command is handled by `fn name(&self, command: {Self})`"
)]
pub trait EventOf<E> {}

/// Never implemented: what a handler of the whole command enum is told.
#[diagnostic::on_unimplemented(
    message = "a command handler takes one command, not the whole command enum `{Self}`",
    label = "the whole command enum",
    note = "`#[derive(Command)]` routes each variant of `{Self}` to the handler of its payload type: write one handler per variant, `fn name(&self, command: Payload)`"
)]
pub trait OneCommand {}

/// Never implemented: what an applier of the whole event enum is told.
#[diagnostic::on_unimplemented(
    message = "an event applier takes one event, not the whole event enum `{Self}`",
    label = "the whole event enum",
    note = "`#[derive(Event)]` routes each variant of `{Self}` to the applier of its payload type: write one applier per variant, `fn name(&mut self, event: &Payload)`"
)]
pub trait OneEvent {}

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

/// What a derived aggregate's state starts from: its `Default`.
#[diagnostic::on_unimplemented(
    message = "aggregate `{Self}` starts from its `Default` state, but `{Self}` does not implement `Default`",
    label = "needs `Default`",
    note = "add `#[derive(Default)]` to `{Self}` (or implement `Default` for it): the state before the first event"
)]
pub trait InitialState: Default {}

// Not recommended: reported as the aggregate's missing `Default`, with the fix, once.
#[diagnostic::do_not_recommend]
impl<T: Default> InitialState for T {}

/// What a generic aggregate's type must be for each type argument, which the derived impl and
/// `#[handlers]` put in their `where` clauses: one bound, reported once where a type argument
/// does not meet it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an aggregate: an aggregate's state is `Default + Send + Sync + 'static`",
    label = "not an aggregate",
    note = "use a type argument that makes `{Self}` `Default`, `Send`, `Sync` and `'static`"
)]
pub trait AggregateState: Default + Send + Sync + 'static {}

// Not recommended: reported as the one bound above, rather than once per missing one.
#[diagnostic::do_not_recommend]
impl<T: Default + Send + Sync + 'static> AggregateState for T {}

/// The derived `Aggregate::initial`; spanned at the aggregate's name.
#[inline]
pub fn initial<A: InitialState>() -> A {
    A::default()
}

/// The command type of an aggregate whose `#[aggregate(...)]` does not name it: the stub impl
/// written beside that error uses it. It satisfies every bound generated code puts on a
/// command type, so the missing key is the only error. It has no values: nothing with it ever
/// runs, since the crate does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {}

/// The event type of an aggregate whose `#[aggregate(...)]` does not name it, as [`Unknown`]
/// for commands: generated code checks nothing against it (it is no [`EventType`]), so the
/// missing key is the only error. It has no values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownEvent {}

impl DomainEvent for UnknownEvent {
    const EVENT_TYPES: &'static [&'static str] = &[];

    fn event_type(&self) -> &'static str {
        match *self {}
    }

    fn event_version(&self) -> u32 {
        match *self {}
    }

    fn encode(&self) -> Result<String, serde_json::Error> {
        match *self {}
    }

    fn decode(event_type: &str, _: u32, _: &str) -> Result<Self, DecodeError> {
        Err(DecodeError::unknown_type(event_type, &[]))
    }
}

/// Marks a type `#[derive(Event)]` wrote its routing for (enum or struct): what handlers'
/// and appliers' checks compare against.
pub trait EventType {}

/// The error type of an aggregate whose `#[aggregate(...)]` is missing altogether (reported):
/// generated code checks nothing against it, as [`Unknown`] and [`UnknownEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownError;

impl std::fmt::Display for UnknownError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no error type was declared")
    }
}

impl std::error::Error for UnknownError {}

/// Never implemented: what a handler that refuses with an error is told when its aggregate
/// declares none.
#[diagnostic::on_unimplemented(
    message = "aggregate `{A}` declares no error type, so its handlers cannot refuse with `{Self}`",
    label = "a refusal `{A}` cannot return",
    note = "add `error = {Self}` to `#[aggregate(...)]` of `{A}` (or an error type `{Self}` converts into with `From`)"
)]
pub trait RefusalWithoutError<A> {}

/// Turns the refusal of a handler returning a `Result<T>` alias into the aggregate's error.
#[inline]
pub fn refusal<A: Aggregate, Er: Into<A::Error>>(error: Er) -> A::Error {
    error.into()
}

/// How a handler's refusal becomes its aggregate's error, spanned at the `E` of its
/// `Result<_, E>`: as it is when it is that error; one error naming the missing
/// `error = ...` when the aggregate declares none (`Infallible`); nothing for the
/// [`UnknownError`] placeholder; else through `Into`. Call on
/// `&&&&Probe::<(A, A::Error, E)>::new()`.
pub mod refusal {
    use super::{Probe, RefusalWithoutError, UnknownError};
    use std::convert::Infallible;

    pub trait SameError<E> {
        #[inline]
        fn refusal(&self, error: E) -> E {
            error
        }
    }
    impl<A, E> SameError<E> for &&&Probe<(A, E, E)> {}

    pub trait NoErrorDeclared<A, Er> {
        fn refusal(&self, error: Er) -> Infallible
        where
            Er: RefusalWithoutError<A>,
        {
            let _ = error;
            unreachable!("a crate with a refusal its aggregate cannot return does not compile")
        }
    }
    impl<A, Er> NoErrorDeclared<A, Er> for &&Probe<(A, Infallible, Er)> {}

    pub trait UnknownRefusal<Er> {
        #[inline]
        fn refusal(&self, _: Er) -> UnknownError {
            UnknownError
        }
    }
    impl<A, Er> UnknownRefusal<Er> for &Probe<(A, UnknownError, Er)> {}

    pub trait IntoRefusal<E, Er> {
        #[inline]
        fn refusal(&self, error: Er) -> E
        where
            Er: Into<E>,
        {
            error.into()
        }
    }
    impl<A, E, Er> IntoRefusal<E, Er> for Probe<(A, E, Er)> {}
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

/// What the current version of an event's payload must be: stored and read as JSON, and
/// described by a JSON Schema with the `schema` feature. Every use by `#[derive(Event)]` is
/// spanned at the payload type and bounded by this one trait, so that a payload without its
/// derives is one error there.
#[cfg(feature = "schema")]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an event payload: events are stored as JSON, and `{Self}` is not `Serialize`, `Deserialize` and `JsonSchema`",
    label = "not `Serialize + Deserialize + JsonSchema`",
    note = "add `#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]` to `{Self}`, or give the variant named fields, `Variant {{ field: Type }}`, whose struct is written for you"
)]
pub trait EventPayload: Serialize + DeserializeOwned + JsonSchema {}
#[cfg(feature = "schema")]
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + JsonSchema> EventPayload for T {}

/// What the current version of an event's payload must be (see the `schema` feature's).
#[cfg(not(feature = "schema"))]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an event payload: events are stored as JSON, and `{Self}` is not `Serialize` and `Deserialize`",
    label = "not `Serialize + Deserialize`",
    note = "add `#[derive(serde::Serialize, serde::Deserialize)]` to `{Self}`, or give the variant named fields, `Variant {{ field: Type }}`, whose struct is written for you"
)]
pub trait EventPayload: Serialize + DeserializeOwned {}
#[cfg(not(feature = "schema"))]
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned> EventPayload for T {}

/// What generated code calls methods on to pick, at compile time, what to do with a type:
/// `(&&&Probe::<T>::new()).method()` resolves to the first impl (by how many references it
/// takes off the receiver) whose bounds `T` meets. This works on the concrete types generated
/// code names ("autoref specialization"), and lets a derive say nothing more about a type an
/// earlier check has already reported. Used by [`stored`], [`check`], [`route`],
/// [`refusal`](mod@refusal), [`follow`] and [`context`]; the macros write every call through
/// one helper.
#[derive(Debug)]
pub struct Probe<T: ?Sized>(std::marker::PhantomData<fn() -> T>);

impl<T: ?Sized> Probe<T> {
    #[inline]
    pub const fn new() -> Self {
        Probe(std::marker::PhantomData)
    }
}

impl<T: ?Sized> Default for Probe<T> {
    fn default() -> Self {
        Probe::new()
    }
}

/// The one check that an event's current payload type is storable, spanned at the type; its
/// encoding, decoding and schema go through [`stored`], which is silent for a type
/// that fails it.
#[inline]
pub const fn event_payload<T: EventPayload>() {}

/// How `#[derive(Event)]` encodes, decodes and describes the current version of a payload: as
/// JSON when it is an [`EventPayload`], and not at all (never run: the crate does not compile)
/// when [`event_payload`] has reported that it is not. Call on `&&Probe::<T>::new()`.
pub mod stored {
    use super::Probe;
    use super::{DecodeError, EventPayload};

    pub trait Stored<T> {
        fn encode(&self, payload: &T) -> Result<String, serde_json::Error>;
        fn decode(&self, event_type: &str, version: u32, payload: &str) -> Result<T, DecodeError>;
        #[cfg(feature = "schema")]
        fn schema(&self) -> serde_json::Value;
    }
    impl<T: EventPayload> Stored<T> for &Probe<T> {
        #[inline]
        fn encode(&self, payload: &T) -> Result<String, serde_json::Error> {
            super::encode(payload)
        }
        #[inline]
        fn decode(&self, event_type: &str, version: u32, payload: &str) -> Result<T, DecodeError> {
            super::from_str(event_type, version, payload)
        }
        #[cfg(feature = "schema")]
        #[inline]
        fn schema(&self) -> serde_json::Value {
            super::schema_of::<T>()
        }
    }

    pub trait Unstorable<T> {
        fn encode(&self, _: &T) -> Result<String, serde_json::Error> {
            Ok(String::new())
        }
        fn decode(&self, event_type: &str, version: u32, _: &str) -> Result<T, DecodeError> {
            let _ = version;
            Err(DecodeError::UnknownType {
                event_type: event_type.to_owned(),
                known: &[],
            })
        }
        #[cfg(feature = "schema")]
        fn schema(&self) -> serde_json::Value {
            serde_json::Value::Null
        }
    }
    impl<T> Unstorable<T> for Probe<T> {}
}

/// What `snapshot_every` needs of the state: one bound, so a missing derive is one error.
#[diagnostic::on_unimplemented(
    message = "`snapshot_every` stores `{Self}` as JSON, but `{Self}` is not Serialize and Deserialize",
    label = "snapshots need serde",
    note = "add `#[derive(serde::Serialize, serde::Deserialize)]` to `{Self}`, or remove `snapshot_every`"
)]
pub trait SnapshotState: Serialize + DeserializeOwned {}

// Not recommended: the state is reported as "not Serialize and Deserialize", once, rather than
// with serde's own bounds and its list of implementors.
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned> SnapshotState for T {}

/// JSON snapshots for a derived aggregate.
#[inline]
pub fn snapshots_json<A: SnapshotState>(every: u64, fingerprint: u64) -> Snapshots<A> {
    Snapshots::json(every, fingerprint)
}

/// How a derived aggregate is cached: cloned when it is `Clone`, not cached when it is not.
/// Call on `&&Probe::<Self>::new()`.
pub mod cached {
    use super::Probe;
    use crate::contract::aggregate::Caching;

    pub trait Cloned<T> {
        fn caching(&self) -> Option<Caching<T>>;
    }
    impl<T: Clone> Cloned<T> for &Probe<T> {
        #[inline]
        fn caching(&self) -> Option<Caching<T>> {
            Some(Caching::cloned())
        }
    }

    pub trait Uncached<T> {
        #[inline]
        fn caching(&self) -> Option<Caching<T>> {
            None
        }
    }
    impl<T> Uncached<T> for Probe<T> {}
}

/// The name of each command of a type: written by `#[derive(Command)]`, one arm per variant.
pub trait CommandName {
    fn command_name(&self) -> &'static str;
}

/// A derived aggregate's command names: the derive's when the command type has them, else the
/// type's name. Call on `&&Probe::<Self::Command>::new()`.
pub mod named {
    use super::{CommandName, Probe};

    pub trait Named<T> {
        fn name(&self, command: &T) -> &'static str;
    }
    impl<T: CommandName> Named<T> for &Probe<T> {
        #[inline]
        fn name(&self, command: &T) -> &'static str {
            command.command_name()
        }
    }

    pub trait Unnamed<T> {
        #[inline]
        fn name(&self, _: &T) -> &'static str {
            crate::contract::aggregate::short_type_name::<T>()
        }
    }
    impl<T> Unnamed<T> for Probe<T> {}
}

// ------------------------------------------------------------------------------ projections

pub use crate::contract::event::StoredEvent;
pub use crate::process::{Effects, ProcessManager, Refused, Route};
pub use crate::projection::{Projection, ProjectionHandlers};

/// The `sends(...)` list of a `#[process_manager]` with errors: it takes every command, so that
/// no `effects.send` raises an error of its own beside the one reported. Never used at run
/// time: a crate with errors does not compile.
#[derive(Debug)]
pub struct AnyTarget;

impl<C> crate::process::Accepts<C, ()> for AnyTarget {
    type Target = Nowhere;

    fn convert(_: C) -> Unknown {
        unreachable!("a crate with a `#[process_manager]` error does not compile")
    }
}

/// The aggregate [`AnyTarget`] names: no commands, no events.
#[derive(Debug)]
pub struct Nowhere;

impl Aggregate for Nowhere {
    const TYPE: &'static str = "";
    type Id = String;
    type Command = Unknown;
    type Event = UnknownEvent;
    type Error = std::convert::Infallible;
    type Services = ();

    fn initial() -> Self {
        Nowhere
    }

    async fn handle(
        &self,
        command: Unknown,
        _: &CommandContext<'_, Self>,
    ) -> Result<Vec<UnknownEvent>, std::convert::Infallible> {
        match command {}
    }

    fn apply(&mut self, event: &EventEnvelope<UnknownEvent>) {
        match event.event {}
    }
}

/// What a `#[process_manager]`'s schema registration reads of each type in `aggregates(...)`
/// and `sends(...)`: an aggregate's type name and the event types its handlers take, or, for a
/// type that is no aggregate (reported where it is used as one), nothing, so that the
/// registration adds no error of its own. Call on `&&Probe::<A>::new()`.
pub mod process_schema {
    use super::{Aggregate, DescribeCommands, FollowedEvents, Probe, SentCommands, StoredEvent};

    /// An aggregate whose commands describe themselves (`#[derive(Command)]`).
    pub trait Described<A> {
        fn sent(&self) -> SentCommands;
    }
    impl<A: Aggregate> Described<A> for &&Probe<A>
    where
        A::Command: DescribeCommands,
    {
        fn sent(&self) -> SentCommands {
            SentCommands {
                aggregate_type: A::TYPE.to_owned(),
                commands: A::Command::describe_commands()
                    .into_iter()
                    .map(|c| c.name)
                    .collect(),
            }
        }
    }

    pub trait Listed<A> {
        fn sent(&self) -> SentCommands {
            SentCommands {
                aggregate_type: self.aggregate_type(),
                commands: Vec::new(),
            }
        }
        fn followed(&self, handles: impl Fn(&StoredEvent) -> bool) -> FollowedEvents;
        fn aggregate_type(&self) -> String;
    }
    impl<A: Aggregate> Listed<A> for &Probe<A> {
        fn followed(&self, handles: impl Fn(&StoredEvent) -> bool) -> FollowedEvents {
            FollowedEvents::of::<A>(handles)
        }
        fn aggregate_type(&self) -> String {
            A::TYPE.to_owned()
        }
    }

    /// An enum of `contracts(...)`: its received events. (One that is no event enum is
    /// reported where it is listed, and describes nothing here.)
    pub trait Contracted<E> {
        fn received(
            &self,
            contract: &str,
            handles: impl Fn(&StoredEvent) -> bool,
        ) -> super::ReceivedEvents;
    }
    impl<E: super::DomainEvent> Contracted<E> for &Probe<E> {
        fn received(
            &self,
            contract: &str,
            handles: impl Fn(&StoredEvent) -> bool,
        ) -> super::ReceivedEvents {
            super::ReceivedEvents::of::<E>(contract, handles)
        }
    }

    pub trait Uncontracted {
        fn received(
            &self,
            contract: &str,
            _: impl Fn(&StoredEvent) -> bool,
        ) -> super::ReceivedEvents {
            super::ReceivedEvents {
                contract: contract.to_owned(),
                event_types: Vec::new(),
            }
        }
    }
    impl<E> Uncontracted for Probe<E> {}

    pub trait Unlisted {
        fn sent(&self) -> SentCommands {
            SentCommands {
                aggregate_type: String::new(),
                commands: Vec::new(),
            }
        }
        fn followed(&self, _: impl Fn(&StoredEvent) -> bool) -> FollowedEvents {
            FollowedEvents {
                aggregate_type: String::new(),
                event_types: Vec::new(),
            }
        }
        fn aggregate_type(&self) -> String {
            String::new()
        }
    }
    impl<A> Unlisted for Probe<A> {}
}

/// That each type of a `#[process_manager]`'s `sends(...)` is an aggregate: reported at the
/// type, where it is listed.
#[inline]
pub fn sends_to<A: Aggregate>() {}

/// That each type of a `#[process_manager]`'s `contracts(...)` is an event enum: reported at
/// the type, where it is listed.
#[inline]
pub fn contract<E: ContractEvents>() {}

/// What `contracts(...)` lists: the event enum another service publishes.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event enum, so it cannot be in `contracts(...)`",
    label = "not a `#[derive(Event)]` type",
    note = "`contracts(...)` lists the event enums other services publish (their public contracts, with `#[derive(Event)]`), whose events the runner receives from its `source`"
)]
pub trait ContractEvents {}

#[diagnostic::do_not_recommend]
impl<E: DomainEvent> ContractEvents for E {}

/// An entry of the followed list for an event enum of `contracts(...)`: its events are found
/// by their stored type names, whatever service and aggregate type they come from.
#[derive(Debug)]
pub struct Contract<E>(std::marker::PhantomData<E>);

/// What `on_deadline` of a `#[process_manager]` answers for a deadline it has no handler for.
pub fn unknown_deadline(manager: &str, name: &str) -> BoxError {
    format!(
        "process manager `{manager}` has no handler for deadline \"{name}\": add `#[deadline(\"{name}\")] fn name(&mut self, effects: &mut Effects<Self>)` to its impl block, or schedule a deadline it handles"
    )
    .into()
}

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

/// The aggregates a projection or process manager follows, as a list, with the one that stores `P` found at `I`.
#[diagnostic::on_unimplemented(
    message = "`{P}` is not an event of any aggregate followed here",
    label = "not an event of the aggregates in `aggregates(...)`",
    note = "add the aggregate whose event enum has a `{P}` variant to `aggregates(...)` (a process manager also takes the event enum of another service in `contracts(...)`), or handle one of its payload types"
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

impl<P, E, R> Follows<P, Here> for (Contract<E>, R)
where
    E: EventVariant<P>,
{
    #[inline]
    fn routes(event: &StoredEvent) -> bool {
        E::is_stored_as(&event.event_type)
    }

    #[inline]
    fn decode(event: &StoredEvent) -> Result<P, DecodeError> {
        let decoded = E::decode(&event.event_type, event.event_version, &event.event)?;
        decoded
            .into_variant()
            .ok_or_else(|| DecodeError::unknown_type(&event.event_type, E::EVENT_TYPES))
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

/// What a projection's or a process manager's handler may return: nothing, or a `Result` whose error converts into a
/// boxed error.
#[diagnostic::on_unimplemented(
    message = "an event handler returns `()` or `Result<(), E>`, not `{Self}`",
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

/// The check a handler or applier makes at its parameter: that `T` is one command (or event) of
/// an aggregate's command (or event) type `E`. Generated code brings these traits into scope
/// and calls `(&&&&Probe::<(E, T)>::new()).command()` (or `.event()`): method resolution takes
/// the first impl that applies, by how many references it removes from the receiver
/// (autoref specialization, which works on the concrete types generated code names):
///
/// 1. `T` is one of `E`'s: nothing to say;
/// 2. `T` is `E` itself, the whole enum: an error, from a bound no type meets;
/// 3. `E` derives its routing but has no `T`: an error, from the relation's own bound;
/// 4. `E` derives nothing: silent here, as the aggregate's impl reports it, once.
pub mod check {
    use super::{CommandOf, CommandType, EventOf, EventType, OneCommand, OneEvent, Probe};

    pub trait IsOneCommand {
        #[inline]
        fn command(&self) {}
    }
    impl<E, T: CommandOf<E>> IsOneCommand for &&&Probe<(E, T)> {}

    pub trait IsWholeCommand<E> {
        #[inline]
        fn command(&self)
        where
            E: OneCommand,
        {
        }
    }
    impl<E: CommandType> IsWholeCommand<E> for &&Probe<(E, E)> {}

    pub trait IsNoCommand<E, T> {
        #[inline]
        fn command(&self)
        where
            T: CommandOf<E>,
        {
        }
    }
    impl<E: CommandType, T> IsNoCommand<E, T> for &Probe<(E, T)> {}

    pub trait UnderivedCommand {
        #[inline]
        fn command(&self) {}
    }
    impl<E, T> UnderivedCommand for Probe<(E, T)> {}

    pub trait IsOneEvent {
        #[inline]
        fn event(&self) {}
    }
    impl<E, T: EventOf<E>> IsOneEvent for &&&Probe<(E, T)> {}

    pub trait IsWholeEvent<E> {
        #[inline]
        fn event(&self)
        where
            E: OneEvent,
        {
        }
    }
    impl<E: EventType> IsWholeEvent<E> for &&Probe<(E, E)> {}

    pub trait IsNoEvent<E, T> {
        #[inline]
        fn event(&self)
        where
            T: EventOf<E>,
        {
        }
    }
    impl<E: EventType, T> IsNoEvent<E, T> for &Probe<(E, T)> {}

    pub trait UnderivedEvent {
        #[inline]
        fn event(&self) {}
    }
    impl<E, T> UnderivedEvent for Probe<(E, T)> {}
}

/// How a derived `Aggregate` reaches its handlers and appliers: through the command and event
/// types' routing, or, when `#[handlers]` has a handler (applier) of the whole command (event)
/// type, straight to it. The latter is right for a command or event struct, and for a whole
/// enum it is the mistake the handler's own check reports at its parameter: routing straight to
/// it keeps that the only error. Same mechanism as [`check`]: call on `&&&Probe` (commands) or
/// `&&&&Probe` (events, whose last level takes a type that is no event at all).
pub mod route {
    use super::Probe;
    use std::future::Future;

    use super::{
        Aggregate, ApplyEvent, CommandContext, CommandDispatch, CommandSchema, CommandType,
        DescribeCommands, DescribeEvents, DomainEvent, EventDispatch, EventEnvelope, EventSchema,
        Existence, HandleCommand, IntoEvents, UnknownEvent,
    };

    pub trait ToHandler<A: HandleCommand<C>, C> {
        #[inline]
        fn existence(&self, _: &C) -> Existence {
            A::EXISTENCE
        }
        #[inline]
        fn handle(
            &self,
            state: &A,
            command: C,
            cx: &CommandContext<'_, A>,
        ) -> impl Future<Output = Result<Vec<A::Event>, A::Error>> + Send {
            state.handle_command(command, cx)
        }
    }
    impl<A: HandleCommand<C>, C: CommandType> ToHandler<A, C> for &&Probe<(A, C)> {}

    pub trait ThroughDispatch<A: Aggregate, C: CommandDispatch<A>> {
        #[inline]
        fn existence(&self, command: &C) -> Existence {
            command.existence()
        }
        #[inline]
        fn handle(
            &self,
            state: &A,
            command: C,
            cx: &CommandContext<'_, A>,
        ) -> impl Future<Output = Result<Vec<A::Event>, A::Error>> + Send {
            command.dispatch(state, cx)
        }
    }
    impl<A: Aggregate, C: CommandDispatch<A>> ThroughDispatch<A, C> for &Probe<(A, C)> {}

    /// A command type without its routing (no derive, or a handler missing): the error, once,
    /// from the method's bound. The return type is a plain one, so that the bound is not also
    /// one of an opaque type's, which rustc would report a second time.
    pub trait Undispatched<A: Aggregate, C> {
        #[inline]
        fn existence(&self, _: &C) -> Existence
        where
            C: CommandDispatch<A>,
        {
            Existence::Existing
        }
        #[inline]
        fn handle(
            &self,
            _: &A,
            _: C,
            _: &CommandContext<'_, A>,
        ) -> std::future::Pending<Result<Vec<A::Event>, A::Error>>
        where
            C: CommandDispatch<A>,
        {
            std::future::pending()
        }
    }
    impl<A: Aggregate, C> Undispatched<A, C> for Probe<(A, C)> {}

    pub trait ToApplier<A: Aggregate> {
        fn apply(&self, state: &mut A, envelope: &EventEnvelope<A::Event>);
    }
    impl<A> ToApplier<A> for &&&Probe<(A, A::Event)>
    where
        A: Aggregate + ApplyEvent<<A as Aggregate>::Event>,
    {
        #[inline]
        fn apply(&self, state: &mut A, envelope: &EventEnvelope<A::Event>) {
            state.apply_event(&envelope.event, envelope);
        }
    }

    pub trait ThroughEventDispatch<A: Aggregate> {
        fn apply(&self, state: &mut A, envelope: &EventEnvelope<A::Event>);
    }
    impl<A> ThroughEventDispatch<A> for &&Probe<(A, A::Event)>
    where
        A: Aggregate,
        A::Event: EventDispatch<A>,
    {
        #[inline]
        fn apply(&self, state: &mut A, envelope: &EventEnvelope<A::Event>) {
            <A::Event as EventDispatch<A>>::dispatch(state, envelope);
        }
    }

    /// An event type without its routing (an applier missing): the error, once, from the
    /// method's bound; none for a type that is no `DomainEvent` at all, which the `Aggregate`
    /// impl's own bound on `type Event` reports.
    pub trait UnroutedEvent<A: Aggregate> {
        #[inline]
        fn apply(&self, _: &mut A, _: &EventEnvelope<A::Event>)
        where
            A::Event: EventDispatch<A>,
        {
        }
    }
    impl<A: Aggregate, E: DomainEvent> UnroutedEvent<A> for &Probe<(A, E)> {}

    /// No event type at all: see [`UnroutedEvent`].
    pub trait NoEventType<A: Aggregate> {
        #[inline]
        fn apply(&self, _: &mut A, _: &EventEnvelope<A::Event>) {}
    }
    impl<A: Aggregate, E> NoEventType<A> for Probe<(A, E)> {}

    /// What a handler returned, as its aggregate's events. An event type that is no
    /// `DomainEvent` at all (`event = SomePayload`) is reported at `event = ...`, once: its
    /// handlers' returns are then not checked against it.
    pub trait AsEvents<E, T> {
        #[inline]
        fn events(&self, returned: T) -> Vec<E>
        where
            T: IntoEvents<E>,
        {
            returned.into_events()
        }
    }
    impl<E: DomainEvent, T> AsEvents<E, T> for &Probe<(E, T)> {}

    /// An aggregate without `event = ...` (reported there): what its handlers return is not
    /// checked against the placeholder.
    pub trait UnknownEvents<T> {
        #[inline]
        fn events(&self, _: T) -> Vec<UnknownEvent> {
            Vec::new()
        }
    }
    impl<T> UnknownEvents<T> for &&Probe<(UnknownEvent, T)> {}

    pub trait NoEventsOf<E, T> {
        #[inline]
        fn events(&self, _: T) -> Vec<E> {
            Vec::new()
        }
    }
    impl<E, T> NoEventsOf<E, T> for Probe<(E, T)> {}

    /// The schema registration's description of a command or event type: its derive's, or,
    /// without the derive (reported by the routing), nothing, so that is the one error.
    pub trait DescribedCommands {
        fn commands(&self) -> Vec<CommandSchema>;
    }
    impl<T: DescribeCommands> DescribedCommands for &Probe<T> {
        #[inline]
        fn commands(&self) -> Vec<CommandSchema> {
            T::describe_commands()
        }
    }

    pub trait DescribedEvents {
        fn events(&self) -> Vec<EventSchema>;
    }
    impl<T: DescribeEvents> DescribedEvents for &Probe<T> {
        #[inline]
        fn events(&self) -> Vec<EventSchema> {
            T::describe_events()
        }
    }

    pub trait Undescribed {
        fn commands(&self) -> Vec<CommandSchema> {
            Vec::new()
        }
        fn events(&self) -> Vec<EventSchema> {
            Vec::new()
        }
    }
    impl<T> Undescribed for Probe<T> {}
}

/// How a projection's handler reaches the stored events of its payload type: through the
/// aggregates it follows, or, when one of them is no aggregate at all (reported at
/// `aggregates(...)`), not at all, so that its handlers raise no second error. Call on
/// `&&Probe::<(P, Aggregates)>::new()`.
pub mod follow {
    use super::{Aggregate, BoxError, DecodeError, Follows, Probe, StoredEvent};

    /// A list `(A1, (A2, ()))` of aggregates.
    pub trait Aggregates {}
    impl Aggregates for () {}
    impl<A: Aggregate, R: Aggregates> Aggregates for (A, R) {}
    impl<E: super::DomainEvent, R: Aggregates> Aggregates for (super::Contract<E>, R) {}

    pub trait Followed<P, L> {
        #[inline]
        fn routes<I>(&self, event: &StoredEvent) -> bool
        where
            L: Follows<P, I>,
        {
            L::routes(event)
        }
        #[inline]
        fn decode<I>(&self, event: &StoredEvent) -> Result<P, BoxError>
        where
            L: Follows<P, I>,
        {
            L::decode(event).map_err(Into::into)
        }
    }
    impl<P, L: Aggregates> Followed<P, L> for &Probe<(P, L)> {}

    pub trait NotFollowed<P> {
        #[inline]
        fn routes(&self, _: &StoredEvent) -> bool {
            false
        }
        #[inline]
        fn decode(&self, event: &StoredEvent) -> Result<P, BoxError> {
            Err(DecodeError::unknown_type(&event.event_type, &[]).into())
        }
    }
    impl<P, L> NotFollowed<P> for Probe<(P, L)> {}
}

/// What a handler's `&CommandContext<'_, A>` parameter receives: its aggregate's context when
/// `A` is that aggregate; one error at `A` when it is another aggregate; nothing more when `A`
/// is no aggregate at all (rustc reports the signature itself). The latter two never run: the
/// crate does not compile. Call on `&&&Probe::<(Self, A)>::new()`.
pub mod context {
    use super::{Aggregate, CommandContext, Probe};

    /// Never implemented: what a handler taking another aggregate's context is told.
    #[diagnostic::on_unimplemented(
        message = "a handler of `{A}` takes the context of `{A}`, not of `{Self}`",
        label = "the context of another aggregate",
        note = "write `cx: &CommandContext<'_, Self>`"
    )]
    pub trait ContextOf<A> {}

    pub trait OwnContext<A: Aggregate> {
        #[inline]
        fn context<'c, 'a>(&self, cx: &'c CommandContext<'a, A>) -> &'c CommandContext<'a, A> {
            cx
        }
    }
    impl<A: Aggregate> OwnContext<A> for &&Probe<(A, A)> {}

    pub trait OtherContext<A: Aggregate, X> {
        fn context<T>(&self, _: &CommandContext<'_, A>) -> T
        where
            X: ContextOf<A>,
        {
            unreachable!("a crate with a handler of another aggregate's context does not compile")
        }
    }
    impl<A: Aggregate, X: Aggregate> OtherContext<A, X> for &Probe<(A, X)> {}

    pub trait NoContext<A: Aggregate> {
        fn context<T>(&self, _: &CommandContext<'_, A>) -> T {
            unreachable!("a crate with a handler of a context of no aggregate does not compile")
        }
    }
    impl<A: Aggregate, X> NoContext<A> for Probe<(A, X)> {}
}
