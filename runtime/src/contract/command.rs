//! Commands: what a handler sees ([`CommandContext`]), the per-command handler trait
//! [`HandleCommand`] that `#[handlers]` implements, and [`IntoEvents`], which lets a handler
//! return one event, several, or none.

use std::future::Future;

use crate::contract::aggregate::Aggregate;
use crate::contract::event::{DomainEvent, EventEnvelope, Metadata};

/// What a command handler knows besides the state and the command.
#[derive(Debug)]
pub struct CommandContext<'a, A: Aggregate> {
    pub(crate) id: &'a A::Id,
    pub(crate) version: u64,
    pub(crate) services: &'a A::Services,
    pub(crate) metadata: &'a Metadata,
}

impl<'a, A: Aggregate> CommandContext<'a, A> {
    /// A context for handling a command outside a repository (tests, tools).
    pub fn new(
        id: &'a A::Id,
        version: u64,
        services: &'a A::Services,
        metadata: &'a Metadata,
    ) -> Self {
        CommandContext {
            id,
            version,
            services,
            metadata,
        }
    }

    /// The id of the aggregate the command is for.
    pub fn id(&self) -> &'a A::Id {
        self.id
    }

    /// The version the command is decided on; 0 if the aggregate was never created.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether the aggregate was created (some event was recorded for it).
    pub fn exists(&self) -> bool {
        self.version > 0
    }

    /// The services injected into the repository.
    pub fn services(&self) -> &'a A::Services {
        self.services
    }

    /// The metadata the command was sent with; it is recorded on every resulting event.
    pub fn metadata(&self) -> &'a Metadata {
        self.metadata
    }
}

/// Handling of one command type by an aggregate.
///
/// `#[handlers]` implements it for each command handler method; `#[derive(Command)]` routes
/// each variant of a command enum to it.
#[diagnostic::on_unimplemented(
    message = "aggregate `{Self}` has no handler for command `{C}`",
    label = "no handler for `{C}`",
    note = "add `fn name(&self, command: {C}) -> Result<Event, Error>` to a `#[handlers]` impl block of `{Self}` (the methods of an impl block without `#[handlers]` are no handlers)"
)]
pub trait HandleCommand<C>: Aggregate {
    /// Whether the handler runs on a new aggregate, an existing one, or both: see
    /// [`Existence`]. `#[handlers]` sets it from `#[create]` and `#[upsert]`.
    const EXISTENCE: Existence = Existence::Existing;

    /// Decides which events the command produces.
    fn handle_command(
        &self,
        command: C,
        cx: &CommandContext<'_, Self>,
    ) -> impl Future<Output = Result<Vec<Self::Event>, Self::Error>> + Send;
}

/// When a command handler runs, as `#[handlers]` marks it. The refusals are declared once on
/// the aggregate, `#[aggregate(missing = CardError::NotRegistered, exists =
/// CardError::AlreadyRegistered)]`; the check runs before the handler, which then never needs
/// `cx.exists()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existence {
    /// Unmarked: only on an aggregate that exists, refused with `missing` otherwise (when the
    /// aggregate declares `missing`; without it, the handler always runs).
    Existing,
    /// `#[create]`: only on an aggregate that does not exist yet, refused with `exists`
    /// otherwise.
    Create,
    /// `#[upsert]`: on both; the handler tells them apart with `cx.exists()`.
    Any,
}

/// Applying one event payload type to an aggregate.
///
/// `#[handlers]` implements it for each `&mut self` method; `#[derive(Event)]` routes each
/// variant of an event enum to it.
#[diagnostic::on_unimplemented(
    message = "aggregate `{Self}` does not apply event `{T}`",
    label = "`{T}` is not applied",
    note = "add `fn name(&mut self, event: &{T})` to a `#[handlers]` impl block of `{Self}` (the methods of an impl block without `#[handlers]` are no appliers), or ignore the event with `#[aggregate(ignore({T}))]`"
)]
pub trait ApplyEvent<T>: Aggregate {
    /// Changes state by one event; `envelope` is the whole recorded event.
    fn apply_event(&mut self, event: &T, envelope: &EventEnvelope<Self::Event>);
}

/// What a command handler may return inside `Ok`: one event, several, or none.
#[diagnostic::on_unimplemented(
    message = "a command handler cannot return `{Self}` as events of `{E}`",
    note = "return `T` or `Result<T, Error>` where `T` is `{E}` or a payload type of one of its variants, a `Vec`, `Option`, array or tuple of those, or `()`"
)]
pub trait IntoEvents<E> {
    /// The events, in order.
    fn into_events(self) -> Vec<E>;
}

impl<E: DomainEvent> IntoEvents<E> for E {
    fn into_events(self) -> Vec<E> {
        vec![self]
    }
}

// Collections take anything that converts into the event: the event itself or a payload type
// (`#[derive(Event)]` writes `From<Payload> for Event`).
impl<E: DomainEvent, T: Into<E>> IntoEvents<E> for Vec<T> {
    fn into_events(self) -> Vec<E> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<E: DomainEvent, T: Into<E>> IntoEvents<E> for Option<T> {
    fn into_events(self) -> Vec<E> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<E: DomainEvent, T: Into<E>, const N: usize> IntoEvents<E> for [T; N] {
    fn into_events(self) -> Vec<E> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<E: DomainEvent> IntoEvents<E> for () {
    fn into_events(self) -> Vec<E> {
        Vec::new()
    }
}

// Tuples mix payload types, `(Registered { .. }, Deposited { .. })`, in handlers and in the
// given/when/then tests.
macro_rules! tuple_into_events {
    ($($name:ident)+) => {
        #[diagnostic::do_not_recommend]
        impl<E: DomainEvent, $($name: IntoEvents<E>),+> IntoEvents<E> for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_events(self) -> Vec<E> {
                let ($($name,)+) = self;
                let mut events = Vec::new();
                $(events.extend($name.into_events());)+
                events
            }
        }
    };
}

tuple_into_events!(A);
tuple_into_events!(A B);
tuple_into_events!(A B C);
tuple_into_events!(A B C D);
tuple_into_events!(A B C D F);
tuple_into_events!(A B C D F G);
tuple_into_events!(A B C D F G H);
tuple_into_events!(A B C D F G H I);
