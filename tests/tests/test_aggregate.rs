//! `#[derive(Aggregate)]`, `#[derive(Command)]` and `#[handlers]` together: names, routing of
//! every handler shape, ignored events, snapshot fingerprints, generics.

use std::convert::Infallible;

use cqrs_runtime::schema::DescribeCommands;
use cqrs_runtime::{
    Aggregate, AggregateTest, Command, CommandContext, Event, EventEnvelope, InMemoryStore,
    Repository, handlers,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Add {
    pub n: i64,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AddTwice {
    pub n: i64,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Noop {}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MaybeAdd {
    pub n: Option<i64>,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AddScaled {
    pub n: i64,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Annotate {
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Command)]
pub enum TallyCommand {
    Add(Add),
    AddTwice(AddTwice),
    Noop(Noop),
    MaybeAdd(MaybeAdd),
    #[command(rename = "Scale")]
    AddScaled(AddScaled),
    Annotate(Annotate),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Added {
    pub n: i64,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Annotated {
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Event)]
pub enum TallyEvent {
    Added(Added),
    Annotated(Annotated),
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum TallyError {
    #[error("tally is closed to {0}")]
    Refused(i64),
    #[error("the scale service failed: {0}")]
    Scale(#[from] ScaleError),
}

/// A handler may return its own error type if it converts into the aggregate's.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("cannot scale by zero")]
pub struct ScaleError;

#[derive(Debug, Default)]
pub struct Scaler {
    pub factor: i64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(
    command = TallyCommand,
    event = TallyEvent,
    error = TallyError,
    services = Scaler,
    ignore(Annotated),
    snapshot_every = 3
)]
pub struct TallyBoard {
    pub total: i64,
    pub seen_sequences: Vec<u64>,
}

#[handlers]
impl TallyBoard {
    /// One payload event.
    fn add(&self, cmd: Add) -> Result<Added, TallyError> {
        if cmd.n < 0 {
            return Err(TallyError::Refused(cmd.n));
        }
        Ok(Added { n: cmd.n })
    }

    /// Several events, with the context.
    fn add_twice(
        &self,
        cmd: AddTwice,
        cx: &CommandContext<Self>,
    ) -> Result<Vec<TallyEvent>, TallyError> {
        assert!(cx.version() == self.seen_sequences.len() as u64);
        Ok(vec![Added { n: cmd.n }.into(), Added { n: cmd.n }.into()])
    }

    /// No event at all.
    fn noop(&self, _: Noop) -> Result<(), TallyError> {
        Ok(())
    }

    /// Maybe one.
    fn maybe_add(&self, cmd: MaybeAdd) -> Result<Option<TallyEvent>, TallyError> {
        Ok(cmd.n.map(|n| Added { n }.into()))
    }

    /// Async, with services, and another error type.
    async fn add_scaled(&self, cmd: AddScaled, scaler: &Scaler) -> Result<Added, ScaleError> {
        std::future::ready(()).await;
        if scaler.factor == 0 {
            return Err(ScaleError);
        }
        Ok(Added {
            n: cmd.n * scaler.factor,
        })
    }

    /// An array of events.
    fn annotate(&self, cmd: Annotate) -> Result<[TallyEvent; 1], TallyError> {
        Ok([Annotated { note: cmd.note }.into()])
    }

    /// An applier that reads the envelope.
    fn added(&mut self, event: &Added, envelope: &EventEnvelope<TallyEvent>) {
        self.total += event.n;
        self.seen_sequences.push(envelope.sequence);
    }
}

#[test]
fn the_type_name_is_the_snake_case_of_the_state_type() {
    assert_eq!(TallyBoard::TYPE, "tally_board");
}

#[test]
fn every_handler_shape_is_routed() {
    let added = |n| TallyEvent::Added(Added { n });
    AggregateTest::<TallyBoard>::for_id("t".into())
        .when(Add { n: 2 })
        .then_expect_events([added(2)]);
    AggregateTest::<TallyBoard>::for_id("t".into())
        .given([added(1)])
        .when(AddTwice { n: 3 })
        .then_expect_events([added(3), added(3)])
        .then_state(|t| assert_eq!((t.total, t.seen_sequences.clone()), (7, vec![1, 2, 3])));
    AggregateTest::<TallyBoard>::for_id("t".into())
        .when(Noop {})
        .then_expect_no_events();
    AggregateTest::<TallyBoard>::for_id("t".into())
        .when(MaybeAdd { n: None })
        .then_expect_no_events();
    AggregateTest::<TallyBoard>::for_id("t".into())
        .when(MaybeAdd { n: Some(4) })
        .then_expect_events([added(4)]);
    AggregateTest::<TallyBoard>::with_services("t".into(), Scaler { factor: 10 })
        .when(AddScaled { n: 4 })
        .then_expect_events([added(40)]);
    AggregateTest::<TallyBoard>::for_id("t".into())
        .when(AddScaled { n: 4 })
        .then_expect_error(TallyError::Scale(ScaleError));
    AggregateTest::<TallyBoard>::for_id("t".into())
        .when(Add { n: -1 })
        .then_expect_error(TallyError::Refused(-1));
}

#[test]
fn ignored_events_leave_the_state_alone() {
    AggregateTest::<TallyBoard>::for_id("t".into())
        .when(Annotate { note: "hi".into() })
        .then_expect_events(Annotated { note: "hi".into() })
        .then_state(|t| assert_eq!(*t, TallyBoard::default()));
}

#[test]
fn commands_describe_themselves_with_renames() {
    let described = TallyCommand::describe_commands();
    let names: Vec<&str> = described.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["Add", "AddTwice", "Noop", "MaybeAdd", "Scale", "Annotate"]
    );
}

#[tokio::test]
async fn snapshots_follow_the_policy_and_reload_the_same_state() {
    let store = InMemoryStore::new();
    let repo = Repository::with_services(store.clone(), Scaler { factor: 1 });
    let id = "snap".to_owned();
    for n in 1..=7 {
        repo.execute(&id, Add { n }).await.unwrap();
    }
    let snapshot = cqrs_runtime::EventStore::load_snapshot(&store, "tally_board", "snap")
        .await
        .unwrap()
        .expect("snapshots every 3 events");
    assert_eq!(snapshot.version, 6);
    let loaded: cqrs_runtime::AggregateRoot<TallyBoard> = repo.load(&id).await.unwrap();
    assert_eq!(loaded.state().total, 28);
    assert_eq!(loaded.state().seen_sequences, (1..=7).collect::<Vec<u64>>());
}

// ---------------------------------------------------------------- snapshot fingerprints

mod shape_a {
    use super::*;
    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(command = TallyCommand, event = TallyEvent, error = TallyError, services = Scaler, snapshot_every = 10)]
    pub struct TallyBoard {
        /// Docs do not change the shape.
        pub total: i64,
        pub seen_sequences: Vec<u64>,
    }
}

mod shape_b {
    use super::*;
    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(command = TallyCommand, event = TallyEvent, error = TallyError, services = Scaler, snapshot_every = 10)]
    pub struct TallyBoard {
        pub total: i32,
        pub seen_sequences: Vec<u64>,
    }
}

mod shape_a_salted {
    use super::*;
    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(command = TallyCommand, event = TallyEvent, error = TallyError, services = Scaler, snapshot_every = 10, snapshot_version = 2)]
    pub struct TallyBoard {
        pub total: i64,
        pub seen_sequences: Vec<u64>,
    }
}

macro_rules! forward_handlers {
    ($($m:ident),*) => {$(
        #[handlers]
        impl $m::TallyBoard {
            fn add(&self, cmd: Add) -> Result<Added, TallyError> { Ok(Added { n: cmd.n }) }
            fn add_twice(&self, _: AddTwice) -> Result<(), TallyError> { Ok(()) }
            fn noop(&self, _: Noop) -> Result<(), TallyError> { Ok(()) }
            fn maybe_add(&self, _: MaybeAdd) -> Result<(), TallyError> { Ok(()) }
            fn add_scaled(&self, _: AddScaled) -> Result<(), TallyError> { Ok(()) }
            fn annotate(&self, _: Annotate) -> Result<(), TallyError> { Ok(()) }
            fn added(&mut self, _: &Added) {}
            fn annotated(&mut self, _: &Annotated) {}
        }
    )*};
}
forward_handlers!(shape_a, shape_b, shape_a_salted);

fn fingerprint<A: Aggregate>() -> u64 {
    A::snapshots().expect("snapshots configured").fingerprint
}

#[test]
fn fingerprints_change_with_the_shape_of_the_state_and_with_snapshot_version() {
    let a = fingerprint::<shape_a::TallyBoard>();
    assert_eq!(
        a,
        fingerprint::<TallyBoard>(),
        "doc comments and attributes are not shape"
    );
    assert_ne!(
        a,
        fingerprint::<shape_b::TallyBoard>(),
        "a field type changed"
    );
    assert_ne!(
        a,
        fingerprint::<shape_a_salted::TallyBoard>(),
        "snapshot_version bumped"
    );
    assert_eq!(shape_a::TallyBoard::snapshots().unwrap().every, 10);
}

// ------------------------------------------------------------------------------- generics

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Put<T> {
    pub value: T,
}

#[derive(Debug, Clone, PartialEq, Command)]
pub enum SlotCommand<T> {
    Put(Put<T>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Stored<T> {
    pub value: T,
}

#[derive(Debug, Clone, PartialEq, Event)]
pub enum SlotEvent<T> {
    Stored(Stored<T>),
}

/// A generic aggregate: one slot holding a value of any serde type.
#[derive(Debug, Default, Aggregate)]
#[aggregate(command = SlotCommand<T>, event = SlotEvent<T>)]
pub struct Slot<T>
where
    T: Clone + Default + Send + Sync + Serialize + serde::de::DeserializeOwned + 'static,
{
    pub value: T,
}

#[handlers]
impl<T> Slot<T>
where
    T: Clone + Default + Send + Sync + Serialize + serde::de::DeserializeOwned + 'static,
{
    fn put(&self, cmd: Put<T>) -> Result<Stored<T>, Infallible> {
        Ok(Stored { value: cmd.value })
    }

    fn stored(&mut self, event: &Stored<T>) {
        self.value = event.value.clone();
    }
}

#[tokio::test]
async fn generic_aggregates_run_for_each_instantiation() {
    assert_eq!(Slot::<u8>::TYPE, "slot");
    let numbers = Repository::<Slot<u64>, _>::new(InMemoryStore::new());
    numbers
        .execute(&"n".into(), Put { value: 42u64 })
        .await
        .unwrap();
    assert_eq!(numbers.load(&"n".into()).await.unwrap().state().value, 42);
    AggregateTest::<Slot<String>>::new()
        .when(Put {
            value: "x".to_owned(),
        })
        .then_expect_events([SlotEvent::Stored(Stored { value: "x".into() })]);
}
