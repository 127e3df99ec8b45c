//! Process managers: workflows that follow events and send commands, across aggregates and
//! services, with deadlines.
//!
//! A process manager keeps one instance per workflow (a transfer, an order), found from each
//! event it follows by a correlation id ([`Route`]). For each event, [`ProcessManager::handle`]
//! evolves the instance's state and decides what to do through [`Effects`]: commands to send,
//! deadlines to set or cancel ("if the credit has not happened within 30 minutes, refund"),
//! and completion, after which the instance is removed.
//!
//! Effects happen exactly once although the runner may see an event twice (after a crash):
//! - every command carries a deterministic idempotency key ([`Metadata::command_id`]), derived
//!   from the manager, the instance and the event or deadline that caused it, and the
//!   repository runs a key once per aggregate;
//! - the instance's state, its deadlines and the runner's checkpoint move in one transaction
//!   of the target.
//!
//! Across services, the runner also takes events from a bus [`Source`](crate::bus::Source)
//! ([`ProcessRunner::source`]: each message's id is recorded with the instance it moved, so a
//! redelivery is skipped) and publishes commands for other services
//! ([`Effects::publish`], through [`ProcessRunner::publisher`], before the commit and with
//! their keys, which the receiver's [`CommandHandler`](crate::bus::CommandHandler) runs once).
//!
//! Handlers must therefore decide from the state and the event alone: the same inputs, the
//! same effects. [`Effects::now`] is the event's own time (or the deadline's), never the
//! clock, so a deadline set while replaying is the deadline set the first time.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bus::Message;
use crate::contract::aggregate::Aggregate;
use crate::contract::error::{BoxError, CommandError};
use crate::contract::event::{LogPosition, Metadata, StoredEvent};
use crate::contract::store::EventStore;
use crate::repository::Repository;

mod runner;

pub use runner::{ProcessError, ProcessProgress, ProcessRunner};

/// A workflow driven by events: see the [module docs](self).
///
/// Usually written with `#[process_manager]`; implemented by hand, it reads like this:
///
/// ```
/// use std::time::Duration;
/// use cqrs_runtime::doc_support::{Counter, CounterCommand};
/// use cqrs_runtime::process::{Effects, ProcessManager, Route};
/// use cqrs_runtime::{BoxError, StoredEvent};
///
/// /// Doubles every addition to a counter into its `mirror-` twin, within a minute.
/// struct Mirror;
///
/// impl ProcessManager for Mirror {
///     const NAME: &'static str = "mirror";
///     const FOLLOWS: &'static [&'static str] = &["counter"];
///     type State = u64;
///
///     fn route(&self, event: &StoredEvent) -> Result<Route, BoxError> {
///         Ok(match event.aggregate_id.strip_prefix("mirror-") {
///             Some(_) => Route::Ignore,
///             None => Route::Start(event.aggregate_id.clone()),
///         })
///     }
///
///     fn handle(&self, seen: &mut u64, event: &StoredEvent, effects: &mut Effects) -> Result<(), BoxError> {
///         let added: u64 = serde_json::from_str(&event.event)?;
///         *seen += 1;
///         effects.send::<Counter>(format!("mirror-{}", event.aggregate_id), CounterCommand::Add(added));
///         effects.schedule("give-up", Duration::from_secs(60));
///         Ok(())
///     }
///
///     fn on_deadline(&self, _: &mut u64, _: &str, effects: &mut Effects) -> Result<(), BoxError> {
///         effects.complete();
///         Ok(())
///     }
/// }
/// ```
pub trait ProcessManager: Send + Sync + 'static {
    /// The name its instances, deadlines, checkpoint and lease are kept under. Never change it
    /// while instances are running.
    const NAME: &'static str;
    /// The aggregate types whose events it reads from the log.
    const FOLLOWS: &'static [&'static str];
    /// One instance's state, kept as JSON between events (`Default` is a new instance's):
    /// any `Serialize + Deserialize + Default` type.
    type State: ProcessState;

    /// Which instance `event` belongs to, and whether it may start one.
    fn route(&self, event: &StoredEvent) -> Result<Route, BoxError>;

    /// Evolves the instance by `event` and decides its effects.
    fn handle(
        &self,
        state: &mut Self::State,
        event: &StoredEvent,
        effects: &mut Effects,
    ) -> Result<(), BoxError>;

    /// The deadline `name` came due (it was neither cancelled nor set again).
    fn on_deadline(
        &self,
        state: &mut Self::State,
        name: &str,
        effects: &mut Effects,
    ) -> Result<(), BoxError>;

    /// A command this instance sent was refused by its aggregate. The default ignores it;
    /// a saga compensates here.
    fn on_refused(
        &self,
        state: &mut Self::State,
        refused: &Refused,
        effects: &mut Effects,
    ) -> Result<(), BoxError> {
        let _ = (state, refused, effects);
        Ok(())
    }
}

/// What a process manager's instance state is: kept as JSON between events, `Default` for a
/// new instance. Implemented for every `Serialize + Deserialize + Default` type that can be
/// shared with the runner's task; written as one trait so that a state type missing one of
/// them is one error.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a process manager's state: it is kept as JSON between events and starts from `Default`",
    label = "not `Serialize + Deserialize + Default`",
    note = "add `#[derive(Default, serde::Serialize, serde::Deserialize)]` to `{Self}`"
)]
pub trait ProcessState: Send + Sync + Sized + 'static {
    /// A new instance's state.
    fn initial() -> Self;
    /// The state as JSON.
    fn to_json(&self) -> Result<String, serde_json::Error>;
    /// The state read back from JSON.
    fn from_json(json: &str) -> Result<Self, serde_json::Error>;
}

// Not recommended: reported as the one bound above, rather than once per missing trait.
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Default + Send + Sync + 'static> ProcessState for T {
    fn initial() -> Self {
        T::default()
    }

    fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// Where an event goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To this instance, which it starts if there is none yet.
    Start(String),
    /// To this instance if it exists; ignored otherwise (it completed, or never started).
    Existing(String),
    /// Nowhere: the manager does not care about this event.
    Ignore,
}

/// A command on its way to an aggregate, with its idempotency key.
pub struct Outgoing {
    /// The target aggregate's type.
    pub aggregate_type: &'static str,
    /// The target aggregate's id.
    pub aggregate_id: String,
    /// The command's name (its variant).
    pub command_name: &'static str,
    /// The idempotency key it is sent with: the same on every run of the same cause.
    pub command_id: String,
    /// `(A::Id, A::Command)` of the target aggregate `A`.
    command: Box<dyn Any + Send + Sync>,
    /// The command, as `Debug` shows it, for messages.
    shown: String,
}

impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("aggregate_type", &self.aggregate_type)
            .field("aggregate_id", &self.aggregate_id)
            .field("command", &format_args!("{}", self.shown))
            .field("command_id", &self.command_id)
            .finish()
    }
}

impl Outgoing {
    /// The id and command, if this command is for aggregate `A`.
    pub fn downcast<A: Aggregate>(&self) -> Option<(&A::Id, &A::Command)> {
        self.command
            .downcast_ref::<(A::Id, A::Command)>()
            .map(|(id, command)| (id, command))
    }
}

/// A command an instance sent that its aggregate refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The aggregate type.
    pub aggregate_type: &'static str,
    /// The aggregate id.
    pub aggregate_id: String,
    /// The command's name.
    pub command_name: &'static str,
    /// The command's idempotency key.
    pub command_id: String,
    /// The refusal, as displayed.
    pub reason: String,
}

/// What a handler decides: commands to send, deadlines to set or cancel, completion.
///
/// `Effects` (of [`Untyped`]) is what [`ProcessManager`]'s methods receive; its
/// [`send::<A>`](Effects::send) names the target aggregate. The handlers of a
/// `#[process_manager(sends(...))]` receive `Effects<Self>`, whose [`send`](Effects#method.send-1)
/// finds the target from the command's type among the aggregates in `sends(...)`, and
/// refuses to compile for a command none of them accepts.
pub struct Effects<S = Untyped> {
    manager: &'static str,
    instance: String,
    cause: String,
    now: DateTime<Utc>,
    pub(crate) commands: Vec<Outgoing>,
    pub(crate) published: Vec<Message>,
    pub(crate) scheduled: Vec<(String, DateTime<Utc>)>,
    pub(crate) cancelled: Vec<String>,
    pub(crate) completed: bool,
    targets: PhantomData<fn() -> S>,
}

/// The `Effects` of a hand-written [`ProcessManager`]: commands name their aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Untyped;

/// The aggregates a process manager sends commands to, as a list `(A1, (A2, ()))`.
/// Implemented by `#[process_manager(sends(...))]` for the manager's state type.
pub trait Targets {
    /// The list.
    type List;
}

/// The aggregates that come before `A` in a list: where [`Accepts`] found the target of a
/// command type.
#[derive(Debug)]
pub struct Skip<I>(PhantomData<I>);

/// A list of aggregates one of which takes command `C`, found at index `I` (`()` for the
/// head, [`Skip`] for further down): what [`Effects::send`] routes a command through.
#[diagnostic::on_unimplemented(
    message = "`{C}` is not a command of any aggregate this process manager sends to",
    label = "no aggregate in `sends(...)` takes a `{C}`",
    note = "add the aggregate whose command enum has a `{C}` variant to `#[process_manager(sends(...))]`"
)]
pub trait Accepts<C, I> {
    /// The aggregate that takes `C`.
    type Target: Aggregate;

    /// `C` as a command of [`Target`](Self::Target).
    fn convert(command: C) -> <Self::Target as Aggregate>::Command;
}

#[diagnostic::do_not_recommend]
impl<C, A: Aggregate, R> Accepts<C, ()> for (A, R)
where
    C: Into<A::Command>,
{
    type Target = A;

    fn convert(command: C) -> A::Command {
        command.into()
    }
}

#[diagnostic::do_not_recommend]
impl<C, A, R: Accepts<C, I>, I> Accepts<C, Skip<I>> for (A, R) {
    type Target = R::Target;

    fn convert(command: C) -> <R::Target as Aggregate>::Command {
        R::convert(command)
    }
}

impl<S> fmt::Debug for Effects<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Effects")
            .field("manager", &self.manager)
            .field("instance", &self.instance)
            .field("cause", &self.cause)
            .field("now", &self.now)
            .field("commands", &self.commands)
            .field("published", &self.published)
            .field("scheduled", &self.scheduled)
            .field("cancelled", &self.cancelled)
            .field("completed", &self.completed)
            .finish()
    }
}

impl Effects {
    /// The effects of one cause (an event id, a deadline, a refusal) on an instance, at `now`.
    pub(crate) fn new(
        manager: &'static str,
        instance: &str,
        cause: String,
        now: DateTime<Utc>,
    ) -> Self {
        Effects {
            manager,
            instance: instance.to_owned(),
            cause,
            now,
            commands: Vec::new(),
            published: Vec::new(),
            scheduled: Vec::new(),
            cancelled: Vec::new(),
            completed: false,
            targets: PhantomData,
        }
    }

    /// Sends `command` to aggregate `A` `id`, with an idempotency key of its own.
    pub fn send<A: Aggregate>(&mut self, id: impl Into<A::Id>, command: impl Into<A::Command>)
    where
        A::Command: fmt::Debug + Sync,
    {
        self.push::<A>(id.into(), command.into());
    }

    /// Runs `f` on these effects seen as `Effects<S>`: how generated handlers get their typed
    /// effects.
    #[doc(hidden)]
    pub fn typed<S, R>(&mut self, f: impl FnOnce(&mut Effects<S>) -> R) -> R {
        let empty = Effects::new(self.manager, "", String::new(), self.now);
        let mut typed = std::mem::replace(self, empty).retype::<S>();
        let out = f(&mut typed);
        *self = typed.retype();
        out
    }
}

/// The aggregate of `sends(...)` of `S` that takes a `C`, its id and its command.
type TargetOf<S, C, I> = <<S as Targets>::List as Accepts<C, I>>::Target;
type IdOf<S, C, I> = <TargetOf<S, C, I> as Aggregate>::Id;
type CommandOf<S, C, I> = <TargetOf<S, C, I> as Aggregate>::Command;

impl<S: Targets> Effects<S> {
    /// Sends `command` to aggregate `id` of the type in `sends(...)` that takes it, with an
    /// idempotency key of its own.
    pub fn send<C, I>(&mut self, id: impl Into<IdOf<S, C, I>>, command: C)
    where
        S::List: Accepts<C, I>,
        CommandOf<S, C, I>: fmt::Debug + Sync,
    {
        let command = <S::List as Accepts<C, I>>::convert(command);
        self.push::<TargetOf<S, C, I>>(id.into(), command);
    }
}

impl<S> Effects<S> {
    fn retype<T>(self) -> Effects<T> {
        Effects {
            manager: self.manager,
            instance: self.instance,
            cause: self.cause,
            now: self.now,
            commands: self.commands,
            published: self.published,
            scheduled: self.scheduled,
            cancelled: self.cancelled,
            completed: self.completed,
            targets: PhantomData,
        }
    }

    /// The idempotency key of the next command: `<manager>/<instance>/<cause>/<n>`.
    fn next_key(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.manager,
            escape_instance(&self.instance),
            self.cause,
            self.commands.len() + self.published.len()
        )
    }

    fn push<A: Aggregate>(&mut self, id: A::Id, command: A::Command)
    where
        A::Command: fmt::Debug + Sync,
    {
        let command_id = self.next_key();
        self.commands.push(Outgoing {
            aggregate_type: A::TYPE,
            aggregate_id: id.to_string(),
            command_name: A::command_name(&command),
            command_id,
            shown: format!("{command:?}"),
            command: Box::new((id, command)),
        });
    }

    /// Publishes `command` for aggregate `id` of another service, on `topic` (the topic or
    /// NATS stream that service's [`CommandHandler`](crate::bus::CommandHandler) subscribes
    /// to), with an idempotency key of its own. `command` is sent as its JSON, so any type
    /// that serializes as the receiver's command enum does (that enum itself, shared in a
    /// contract crate, or a copy of it).
    ///
    /// The runner publishes after the commands sent to local aggregates and before it commits
    /// the instance (through its [`publisher`](ProcessRunner::publisher)), at least once: a
    /// crash in between publishes it again with the same key, and the receiver runs a key
    /// once. The receiver's events come back through the runner's
    /// [`source`](ProcessRunner::source), with the key: `#[existing(caused)]` (or
    /// [`caused`](Self::caused)) finds the instance from them. A refusal does not come back:
    /// a deadline notices what did not happen.
    ///
    /// Fails only if `command` does not serialize.
    pub fn publish(
        &mut self,
        topic: impl Into<String>,
        id: impl fmt::Display,
        command: &impl Serialize,
    ) -> Result<(), serde_json::Error> {
        let value = serde_json::to_value(command)?;
        let name = match &value {
            // An enum's variant, as serde writes it: `{"Deposit": {...}}` or `"Close"`.
            serde_json::Value::Object(map) if map.len() == 1 => map.keys().next().cloned(),
            serde_json::Value::String(unit) => Some(unit.clone()),
            _ => None,
        };
        let name = name.unwrap_or_else(|| std::any::type_name_of_val(command).to_owned());
        let metadata = Metadata::default().command_id(self.next_key());
        let message = Message::command(
            topic,
            id.to_string(),
            name,
            value.to_string(),
            self.now,
            metadata,
        );
        self.published.push(message);
        Ok(())
    }

    /// The commands published so far ([`publish`](Self::publish)), as messages.
    pub fn published(&self) -> &[Message] {
        &self.published
    }

    /// The instance's id.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Whether `event` was recorded by a command this instance sent (its idempotency key names
    /// this manager and this instance): the manager's own doing, not news from outside.
    pub fn caused(&self, event: &StoredEvent) -> bool {
        caused_by(self.manager, event).as_deref() == Some(self.instance.as_str())
    }

    /// When the cause happened: the event's recording time, or the deadline's due time.
    /// Deadlines count from it.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Sets deadline `name` to `after` from [`now`](Self::now), replacing one of the same name.
    pub fn schedule(&mut self, name: impl Into<String>, after: Duration) {
        let after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
        let due = self
            .now
            .checked_add_signed(after)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let name = name.into();
        self.cancelled.retain(|n| *n != name);
        self.scheduled.retain(|(n, _)| *n != name);
        self.scheduled.push((name, due));
    }

    /// Cancels deadline `name`, if set.
    pub fn cancel(&mut self, name: impl Into<String>) {
        let name = name.into();
        self.scheduled.retain(|(n, _)| *n != name);
        self.cancelled.push(name);
    }

    /// Ends the instance once these effects are done: its state and deadlines are removed.
    pub fn complete(&mut self) {
        self.completed = true;
    }

    /// The commands decided so far.
    pub fn commands(&self) -> &[Outgoing] {
        &self.commands
    }
}

/// The instance of manager `manager` whose command recorded `event`, read from the command's
/// idempotency key; `None` for an event no command of `manager` recorded.
/// `#[existing(caused)]` routes by it.
pub fn caused_by(manager: &str, event: &StoredEvent) -> Option<String> {
    instance_of(manager, event.metadata.command_id.as_deref()?)
}

/// The instance named in `key`, the idempotency key of a command `manager` sent
/// (`<manager>/<instance>/<cause>/<n>`, with `%` and `/` in the instance escaped).
///
/// ```
/// use cqrs_runtime::process::instance_of;
///
/// assert_eq!(instance_of("transfers", "transfers/t%2F1/0c8e/0").as_deref(), Some("t/1"));
/// assert_eq!(instance_of("orders", "transfers/t-1/0c8e/0"), None);
/// ```
pub fn instance_of(manager: &str, key: &str) -> Option<String> {
    let rest = key.strip_prefix(manager)?.strip_prefix('/')?;
    let (instance, _) = rest.split_once('/')?;
    Some(unescape_instance(instance))
}

/// An instance id as it goes into a command key: `%` and `/` escaped, so the key splits at
/// its slashes.
fn escape_instance(instance: &str) -> std::borrow::Cow<'_, str> {
    if !instance.contains(['%', '/']) {
        return instance.into();
    }
    instance.replace('%', "%25").replace('/', "%2F").into()
}

fn unescape_instance(escaped: &str) -> String {
    escaped.replace("%2F", "/").replace("%25", "%")
}

/// One instance as the runner keeps it between causes: its state and its deadlines.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance<S> {
    /// The state its handlers evolve.
    pub state: S,
    /// Its deadlines by name, with their due times.
    pub deadlines: std::collections::BTreeMap<String, DateTime<Utc>>,
}

impl<S: Default> Default for Instance<S> {
    fn default() -> Self {
        Instance {
            state: S::default(),
            deadlines: std::collections::BTreeMap::new(),
        }
    }
}

/// What became of an instance after a cause.
#[derive(Debug)]
pub(crate) enum After<S> {
    /// It runs on.
    Running(Instance<S>),
    /// It completed, in this final state.
    Completed(S),
}

/// What happens to an instance: the state its handler left, then the deadline changes.
pub(crate) fn settle<S>(mut instance: Instance<S>, effects: &Effects) -> After<S> {
    if effects.completed {
        return After::Completed(instance.state);
    }
    for name in &effects.cancelled {
        instance.deadlines.remove(name);
    }
    for (name, due) in &effects.scheduled {
        instance.deadlines.insert(name.clone(), *due);
    }
    After::Running(instance)
}

/// Runs `event` through `manager`: `Ok(None)` when the event goes to no instance (ignored, or
/// for an instance that does not exist), else the instance's id, what it became and the
/// effects.
pub(crate) fn on_event<P: ProcessManager>(
    manager: &P,
    event: &StoredEvent,
    load: impl FnOnce(&str) -> Option<Instance<P::State>>,
) -> Result<Option<Step<P::State>>, BoxError> {
    let (id, may_start) = match manager.route(event)? {
        Route::Ignore => return Ok(None),
        Route::Start(id) => (id, true),
        Route::Existing(id) => (id, false),
    };
    let mut instance = match load(&id) {
        Some(instance) => instance,
        None if may_start => Instance {
            state: P::State::initial(),
            deadlines: std::collections::BTreeMap::new(),
        },
        None => return Ok(None),
    };
    let cause = event.event_id.to_string();
    let mut effects = Effects::new(P::NAME, &id, cause, event.recorded_at);
    manager.handle(&mut instance.state, event, &mut effects)?;
    Ok(Some(Step {
        after: settle(instance, &effects),
        id,
        effects,
    }))
}

/// Fires deadline `name` of instance `id`, due at `due`.
pub(crate) fn on_deadline<P: ProcessManager>(
    manager: &P,
    id: &str,
    mut instance: Instance<P::State>,
    name: &str,
    due: DateTime<Utc>,
) -> Result<Step<P::State>, BoxError> {
    instance.deadlines.remove(name);
    let cause = format!("deadline:{name}@{}", due.timestamp_micros());
    let mut effects = Effects::new(P::NAME, id, cause, due);
    manager.on_deadline(&mut instance.state, name, &mut effects)?;
    Ok(Step {
        after: settle(instance, &effects),
        id: id.to_owned(),
        effects,
    })
}

/// Tells instance `id` its command was refused.
pub(crate) fn on_refused<P: ProcessManager>(
    manager: &P,
    id: &str,
    mut instance: Instance<P::State>,
    refused: &Refused,
    at: DateTime<Utc>,
) -> Result<Step<P::State>, BoxError> {
    let cause = format!("refused:{}", refused.command_id);
    let mut effects = Effects::new(P::NAME, id, cause, at);
    manager.on_refused(&mut instance.state, refused, &mut effects)?;
    Ok(Step {
        after: settle(instance, &effects),
        id: id.to_owned(),
        effects,
    })
}

/// One cause handled by one instance.
#[derive(Debug)]
pub(crate) struct Step<S> {
    pub(crate) id: String,
    pub(crate) after: After<S>,
    pub(crate) effects: Effects,
}

/// How a sent command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// It ran and committed its events (or recorded none); the position of the last one.
    Done(Option<LogPosition>),
    /// Its key had run already: nothing ran again; the position of its first run's last event.
    Duplicate(Option<LogPosition>),
    /// The aggregate refused it; the reason as displayed.
    Refused(String),
}

impl Delivery {
    /// Where the command's last event is in the log, if it recorded any.
    pub fn position(&self) -> Option<LogPosition> {
        match self {
            Delivery::Done(position) | Delivery::Duplicate(position) => *position,
            Delivery::Refused(_) => None,
        }
    }
}

/// Why a command could not be delivered: no route to its aggregate type, or a store failure
/// or conflict that outlived the repository's retries. The runner stops (or retries, as its
/// policy says) and sends it again later, with the same key.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// No repository was registered for the command's aggregate type.
    #[error(
        "no repository for aggregate type `{0}`: add `.route(repository)` for it to the dispatcher"
    )]
    NoRoute(&'static str),
    /// The repository failed.
    #[error("sending `{command}` to {aggregate_type} `{aggregate_id}` failed: {source}")]
    Failed {
        /// The aggregate type.
        aggregate_type: &'static str,
        /// The aggregate id.
        aggregate_id: String,
        /// The command's name.
        command: &'static str,
        /// What failed.
        #[source]
        source: BoxError,
    },
}

type Send_ = Box<
    dyn Fn(&(dyn Any + Send + Sync), Metadata) -> BoxFuture<'static, Result<Delivery, BoxError>>
        + Send
        + Sync,
>;

/// The repositories a process manager's commands go to, by aggregate type.
///
/// ```
/// use cqrs_runtime::doc_support::Counter;
/// use cqrs_runtime::process::Dispatcher;
/// use cqrs_runtime::{InMemoryStore, Repository};
///
/// let dispatcher = Dispatcher::new().route(Repository::<Counter, _>::new(InMemoryStore::new()));
/// assert!(dispatcher.routes("counter"));
/// ```
#[derive(Default)]
pub struct Dispatcher {
    routes: HashMap<&'static str, Send_>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut types: Vec<_> = self.routes.keys().collect();
        types.sort();
        f.debug_struct("Dispatcher")
            .field("routes", &types)
            .finish()
    }
}

impl Dispatcher {
    /// A dispatcher with no routes.
    pub fn new() -> Self {
        Dispatcher::default()
    }

    /// Sends the commands for `A` through `repository`.
    pub fn route<A, S>(mut self, repository: Repository<A, S>) -> Self
    where
        A: Aggregate,
        A::Command: Clone + Sync,
        A::Id: Sync,
        S: EventStore + Clone,
    {
        let send: Send_ = Box::new(move |command, metadata| {
            let repository = repository.clone();
            let command = command.downcast_ref::<(A::Id, A::Command)>().cloned();
            Box::pin(async move {
                let Some((id, command)) = command else {
                    return Err(format!(
                        "a command routed to `{}` is not one of its commands",
                        A::TYPE
                    )
                    .into());
                };
                match repository.execute_with(&id, command, metadata).await {
                    Ok(done) => {
                        let last = done.events.last().map(|e| e.position);
                        match done.duplicate {
                            true => Ok(Delivery::Duplicate(last)),
                            false => Ok(Delivery::Done(last)),
                        }
                    }
                    Err(CommandError::Rejected(refusal)) => {
                        Ok(Delivery::Refused(refusal.to_string()))
                    }
                    Err(error) => Err(error.into()),
                }
            })
        });
        self.routes.insert(A::TYPE, send);
        self
    }

    /// Whether commands for `aggregate_type` have a route.
    pub fn routes(&self, aggregate_type: &str) -> bool {
        self.routes.contains_key(aggregate_type)
    }

    /// Sends one command with its key and `metadata` (its cause). Sent again, it runs once.
    pub async fn deliver(
        &self,
        outgoing: &Outgoing,
        metadata: Metadata,
    ) -> Result<Delivery, DispatchError> {
        let send = self
            .routes
            .get(outgoing.aggregate_type)
            .ok_or(DispatchError::NoRoute(outgoing.aggregate_type))?;
        let metadata = metadata.command_id(outgoing.command_id.clone());
        send(&*outgoing.command, metadata)
            .await
            .map_err(|source| DispatchError::Failed {
                aggregate_type: outgoing.aggregate_type,
                aggregate_id: outgoing.aggregate_id.clone(),
                command: outgoing.command_name,
                source,
            })
    }
}
