//! A given/when/then test framework for aggregates: given past events, when a command, then
//! expect events or an error. No store is involved: it tests the decisions alone.

use std::fmt::Debug;

use chrono::Utc;
use uuid::Uuid;

use crate::contract::aggregate::{Aggregate, AggregateRoot};
use crate::contract::command::{CommandContext, IntoEvents};
use crate::contract::event::{DomainEvent, EventEnvelope, LogPosition, Metadata};

/// Given events, when a command, then expect events or an error.
///
/// ```
/// use cqrs_runtime::AggregateTest;
/// # use cqrs_runtime::doc_support::{Counter, CounterCommand, CounterError, CounterEvent};
///
/// AggregateTest::<Counter>::new()
///     .given([CounterEvent::Added(5)])
///     .when(CounterCommand::Add(2))
///     .then_expect_events([CounterEvent::Added(2)])
///     .then_state(|counter| assert_eq!(counter.total, 7));
///
/// AggregateTest::<Counter>::new()
///     .given([CounterEvent::Added(5)])
///     .when(CounterCommand::Subtract(9))
///     .then_expect_error(CounterError::WouldGoNegative { total: 5, by: 9 });
/// ```
pub struct AggregateTest<A: Aggregate> {
    root: AggregateRoot<A>,
    services: A::Services,
    metadata: Metadata,
}

impl<A: Aggregate> Debug for AggregateTest<A>
where
    A: Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateTest")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate> AggregateTest<A>
where
    A::Id: Default,
    A::Services: Default,
{
    /// A test on the aggregate with the default id, with default services.
    pub fn new() -> Self {
        AggregateTest::for_id(A::Id::default())
    }
}

impl<A: Aggregate> Default for AggregateTest<A>
where
    A::Id: Default,
    A::Services: Default,
{
    fn default() -> Self {
        AggregateTest::new()
    }
}

impl<A: Aggregate> AggregateTest<A>
where
    A::Services: Default,
{
    /// A test on the aggregate with this id, with default services.
    pub fn for_id(id: A::Id) -> Self {
        AggregateTest::with_services(id, A::Services::default())
    }
}

impl<A: Aggregate> AggregateTest<A> {
    /// A test on the aggregate with this id, whose handlers receive `services`.
    pub fn with_services(id: A::Id, services: A::Services) -> Self {
        AggregateTest {
            root: AggregateRoot::new(id),
            services,
            metadata: Metadata::default(),
        }
    }

    /// Sets the metadata the command is sent with.
    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Past events, applied in order after any given before: one payload or event, or a
    /// tuple, array, `Vec` or `Option` of them, `given((Opened { .. }, Deposited { .. }))`.
    pub fn given(mut self, events: impl IntoEvents<A::Event>) -> Self {
        let events = events.into_events();
        for envelope in envelopes::<A>(&self.root, events, &self.metadata) {
            self.root.apply(&envelope);
        }
        self
    }

    /// Runs the command. Async handlers are driven to completion on the current thread.
    pub fn when(self, command: impl Into<A::Command>) -> Outcome<A>
    where
        A::Event: Clone,
    {
        futures::executor::block_on(self.when_async(command))
    }

    /// Runs the command in an async test (use this when handlers need a runtime like tokio).
    pub async fn when_async(self, command: impl Into<A::Command>) -> Outcome<A>
    where
        A::Event: Clone,
    {
        let AggregateTest {
            mut root,
            services,
            metadata,
        } = self;
        let cx = CommandContext::new(&root.id, root.version, &services, &metadata);
        let result = root.state.handle(command.into(), &cx).await;
        if let Ok(events) = &result {
            for envelope in envelopes::<A>(&root, events.iter().map(Clone::clone), &metadata) {
                root.apply(&envelope);
            }
        }
        Outcome { root, result }
    }
}

/// Wraps events in envelopes numbered after the root's version, as a store would.
fn envelopes<A: Aggregate>(
    root: &AggregateRoot<A>,
    events: impl IntoIterator<Item = A::Event>,
    metadata: &Metadata,
) -> Vec<EventEnvelope<A::Event>> {
    let recorded_at = Utc::now();
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let sequence = root.version + i as u64 + 1;
            EventEnvelope {
                aggregate_type: A::TYPE.to_owned(),
                aggregate_id: root.id.to_string(),
                sequence,
                position: LogPosition::serial(sequence),
                event_id: Uuid::now_v7(),
                event_type: event.event_type().to_owned(),
                event_version: event.event_version(),
                recorded_at,
                metadata: metadata.clone(),
                event,
            }
        })
        .collect()
}

/// What a command did in an [`AggregateTest`]: the events it decided on, or its error.
pub struct Outcome<A: Aggregate> {
    root: AggregateRoot<A>,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> Debug for Outcome<A>
where
    A: Debug,
    A::Event: Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcome")
            .field("root", &self.root)
            .field("result", &self.result)
            .finish()
    }
}

impl<A: Aggregate> Outcome<A> {
    /// The events or the error, to inspect by hand.
    pub fn result(&self) -> &Result<Vec<A::Event>, A::Error> {
        &self.result
    }

    /// The aggregate after the command's events (unchanged if it failed).
    pub fn root(&self) -> &AggregateRoot<A> {
        &self.root
    }

    /// Asserts that the command produced exactly these events, in this order: one payload or
    /// event, or a tuple, array, `Vec` or `Option` of them.
    #[track_caller]
    pub fn then_expect_events(&self, expected: impl IntoEvents<A::Event>) -> &Self
    where
        A::Event: PartialEq + Debug,
    {
        let expected = expected.into_events();
        match &self.result {
            Ok(events) => assert!(
                *events == expected,
                "the command produced other events than expected\n  expected: {expected:#?}\n    actual: {events:#?}"
            ),
            Err(error) => panic!(
                "expected events {expected:#?}, but the command was rejected: {error} ({error:?})"
            ),
        }
        self
    }

    /// Asserts that the command succeeded without producing events.
    #[track_caller]
    pub fn then_expect_no_events(&self) -> &Self
    where
        A::Event: PartialEq + Debug,
    {
        self.then_expect_events(())
    }

    /// Asserts that the command was rejected with exactly this error.
    #[track_caller]
    pub fn then_expect_error(&self, expected: A::Error) -> &Self
    where
        A::Error: PartialEq,
        A::Event: Debug,
    {
        self.then_expect_error_matches(|error| *error == expected)
    }

    /// Asserts that the command was rejected with an error for which `check` holds.
    #[track_caller]
    pub fn then_expect_error_matches(&self, check: impl FnOnce(&A::Error) -> bool) -> &Self
    where
        A::Event: Debug,
    {
        match &self.result {
            Ok(events) => {
                panic!("expected the command to be rejected, but it produced events: {events:#?}")
            }
            Err(error) => assert!(
                check(error),
                "the command was rejected with another error than expected: {error} ({error:?})"
            ),
        }
        self
    }

    /// Runs assertions on the state after the command's events.
    pub fn then_state(&self, check: impl FnOnce(&A)) -> &Self {
        check(&self.root.state);
        self
    }
}
