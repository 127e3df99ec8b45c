//! A given/when/then test kit for process managers: events in, commands and deadlines out,
//! with a virtual clock. No store or runner is involved: it tests the decisions alone, through
//! the same steps the runner takes.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::bus::Message;
use crate::contract::aggregate::Aggregate;
use crate::contract::event::{DomainEvent, EventEnvelope, LogPosition, Metadata, StoredEvent};
use crate::process::{self, After, Instance, Outgoing, ProcessManager, Refused, Step};

/// Given events, when an event (or time passing, or a refusal), then expect commands,
/// deadlines, completion or a state.
///
/// ```
/// use std::time::Duration;
/// use cqrs_runtime::doc_support::{Counter, CounterCommand, CounterEvent, Mirror};
/// use cqrs_runtime::ProcessTest;
///
/// ProcessTest::new(Mirror)
///     .when::<Counter>("c-1", CounterEvent::Added(2))
///     .then_expect_commands::<Counter>([("mirror-c-1", CounterCommand::Add(2))])
///     .then_expect_deadline("c-1", "give-up", Duration::from_secs(60))
///     .advance(Duration::from_secs(61))
///     .then_expect_no_commands()
///     .then_completed("c-1");
/// ```
pub struct ProcessTest<P: ProcessManager> {
    manager: P,
    now: DateTime<Utc>,
    instances: BTreeMap<String, Instance<P::State>>,
    /// Per stream, its last sequence.
    streams: BTreeMap<(String, String), u64>,
    position: u64,
    /// The commands of the last `when` or `advance`, not yet checked.
    sent: Vec<(String, Outgoing)>,
    /// The commands the last `when` or `advance` published for other services.
    published: Vec<Message>,
}

impl<P: ProcessManager> Debug for ProcessTest<P>
where
    P::State: Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessTest")
            .field("now", &self.now)
            .field("instances", &self.instances)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl<P: ProcessManager> ProcessTest<P> {
    /// A test of `manager` with no instances, its clock at 2026-01-01T00:00:00Z.
    pub fn new(manager: P) -> Self {
        ProcessTest {
            manager,
            now: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
            instances: BTreeMap::new(),
            streams: BTreeMap::new(),
            position: 0,
            sent: Vec::new(),
            published: Vec::new(),
        }
    }

    /// The virtual clock: events are recorded at it, deadlines fire against it.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Past events of aggregate `A` `id`: handled, their commands dropped.
    pub fn given<A: Aggregate>(
        mut self,
        id: &str,
        events: impl IntoIterator<Item = impl Into<A::Event>>,
    ) -> Self {
        for event in events {
            self = self.when::<A>(id, event);
        }
        self.clear();
        self
    }

    /// An event of aggregate `A` `id`, recorded now: its commands are what the next `then`
    /// checks.
    pub fn when<A: Aggregate>(mut self, id: &str, event: impl Into<A::Event>) -> Self {
        let event = self.stored::<A>(id, event.into());
        self.clear();
        self.handle(&event);
        self
    }

    /// Forgets what the last step sent and published: the next `then` checks the next step.
    fn clear(&mut self) {
        self.sent.clear();
        self.published.clear();
    }

    /// An event of another service, received from the bus ([`ProcessRunner::source`]): `E` is
    /// its event type (the other service's public contract, or its domain events), recorded
    /// now by its aggregate `id` of type `aggregate_type`.
    ///
    /// [`ProcessRunner::source`]: crate::process::ProcessRunner::source
    pub fn when_received<E: DomainEvent>(
        mut self,
        aggregate_type: &str,
        id: &str,
        event: impl Into<E>,
    ) -> Self {
        let event = self.received(aggregate_type, id, &event.into());
        self.clear();
        self.handle(&event);
        self
    }

    /// The command the last step published for `id` ran in the other service and recorded
    /// `event`, which came back over the bus with that command's id: a manager that routes
    /// by `caused` finds its instance from it.
    #[track_caller]
    pub fn when_received_applied<E: DomainEvent>(
        mut self,
        aggregate_type: &str,
        id: &str,
        event: impl Into<E>,
    ) -> Self {
        let at = self
            .published
            .iter()
            .rposition(|m| m.key == id)
            .unwrap_or_else(|| panic!("the last step published no command for `{id}`"));
        let command = self.published.remove(at);
        let mut received = self.received(aggregate_type, id, &event.into());
        received.metadata.command_id = command.metadata.command_id;
        self.clear();
        self.handle(&received);
        self
    }

    fn handle(&mut self, event: &StoredEvent) {
        let instances = &mut self.instances;
        let step = process::on_event(&self.manager, event, |id| instances.remove(id))
            .unwrap_or_else(|error| {
                let (kind, sequence) = (&event.event_type, event.sequence);
                panic!("{} failed on {kind} #{sequence}: {error}", P::NAME)
            });
        if let Some(step) = step {
            self.settle(step);
        }
    }

    /// The command the last step sent to `A` `id` ran and recorded `event`: the event carries
    /// that command's id and cause, as in the log, so a manager that finds its instance from
    /// them gets it.
    pub fn when_applied<A: Aggregate>(mut self, id: &str, event: impl Into<A::Event>) -> Self {
        let at = self.last_sent::<A>(id);
        let (_, outgoing) = self.sent.remove(at);
        let mut stored = self.stored::<A>(id, event.into());
        stored.metadata = Metadata::default().command_id(outgoing.command_id);
        self.clear();
        self.handle(&stored);
        self
    }

    #[track_caller]
    fn last_sent<A: Aggregate>(&self, id: &str) -> usize {
        self.sent
            .iter()
            .rposition(|(_, c)| c.aggregate_type == A::TYPE && c.aggregate_id == id)
            .unwrap_or_else(|| panic!("the last step sent no command to {} `{id}`", A::TYPE))
    }

    /// The clock moves by `by`: every deadline due by then fires, earliest first (a deadline a
    /// firing one sets fires too if it is due).
    pub fn advance(mut self, by: Duration) -> Self {
        self.clear();
        let until = self.now + chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        loop {
            let next = self
                .instances
                .iter()
                .flat_map(|(id, instance)| {
                    instance
                        .deadlines
                        .iter()
                        .map(move |(name, due)| (*due, id.clone(), name.clone()))
                })
                .filter(|(due, ..)| *due <= until)
                .min();
            let Some((due, id, name)) = next else {
                break;
            };
            self.now = self.now.max(due);
            let Some(instance) = self.instances.remove(&id) else {
                break;
            };
            let step = process::on_deadline(&self.manager, &id, instance, &name, due)
                .unwrap_or_else(|error| {
                    panic!("{} failed on deadline `{name}` of `{id}`: {error}", P::NAME)
                });
            self.settle(step);
        }
        self.now = until;
        self
    }

    /// The aggregate refused the command the last step sent to `A` `id`: the instance that sent
    /// it hears of it.
    pub fn when_refused<A: Aggregate>(mut self, id: &str, reason: &str) -> Self {
        let at = self.last_sent::<A>(id);
        let (instance_id, outgoing) = self.sent.remove(at);
        self.clear();
        let refused = Refused {
            aggregate_type: outgoing.aggregate_type,
            aggregate_id: outgoing.aggregate_id,
            command_name: outgoing.command_name,
            command_id: outgoing.command_id,
            reason: reason.to_owned(),
        };
        let Some(instance) = self.instances.remove(&instance_id) else {
            return self;
        };
        let step = process::on_refused(&self.manager, &instance_id, instance, &refused, self.now)
            .unwrap_or_else(|error| panic!("{} failed on a refusal: {error}", P::NAME));
        self.settle(step);
        self
    }

    /// The commands the last step sent to aggregates of type `A`, in order, are `expected`.
    #[track_caller]
    pub fn then_expect_commands<A: Aggregate>(
        self,
        expected: impl IntoIterator<Item = (impl Into<A::Id>, impl Into<A::Command>)>,
    ) -> Self
    where
        A::Command: PartialEq + Debug,
    {
        let expected: Vec<(String, A::Command)> = expected
            .into_iter()
            .map(|(id, command)| (id.into().to_string(), command.into()))
            .collect();
        let sent: Vec<(String, &A::Command)> = self
            .sent
            .iter()
            .filter_map(|(_, c)| c.downcast::<A>())
            .map(|(id, command)| (id.to_string(), command))
            .collect();
        let expected: Vec<(String, &A::Command)> =
            expected.iter().map(|(id, c)| (id.clone(), c)).collect();
        assert_eq!(sent, expected, "commands sent to `{}`", A::TYPE);
        self
    }

    /// The commands the last step published on `topic` for other services
    /// ([`Effects::publish`](crate::process::Effects::publish)), in order, are `expected`:
    /// aggregate ids and commands, compared as the JSON they are sent as.
    #[track_caller]
    pub fn then_expect_published<C: serde::Serialize>(
        self,
        topic: &str,
        expected: impl IntoIterator<Item = (impl std::fmt::Display, C)>,
    ) -> Self {
        let json = |payload: &str| -> serde_json::Value {
            serde_json::from_str(payload).unwrap_or(serde_json::Value::Null)
        };
        let expected: Vec<(String, serde_json::Value)> = expected
            .into_iter()
            .map(|(id, command)| {
                let value = serde_json::to_value(&command).unwrap_or_else(|error| {
                    panic!("an expected command does not serialize: {error}")
                });
                (id.to_string(), value)
            })
            .collect();
        let published: Vec<(String, serde_json::Value)> = self
            .published
            .iter()
            .filter(|m| m.topic == topic)
            .map(|m| (m.key.clone(), json(&m.payload)))
            .collect();
        assert_eq!(published, expected, "commands published on `{topic}`");
        self
    }

    /// The last step sent no command.
    #[track_caller]
    pub fn then_expect_no_commands(self) -> Self {
        assert!(
            self.sent.is_empty() && self.published.is_empty(),
            "expected no command, {} sent {:?} and published {:?}",
            P::NAME,
            self.sent,
            self.published
        );
        self
    }

    /// Instance `id` has deadline `name` due `after` from now.
    #[track_caller]
    pub fn then_expect_deadline(self, id: &str, name: &str, after: Duration) -> Self {
        let due = self.now + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
        let deadlines = self.instance(id).deadlines.clone();
        assert_eq!(
            deadlines.get(name),
            Some(&due),
            "deadline `{name}` of `{id}`: {deadlines:?}"
        );
        self
    }

    /// Instance `id` has no deadline `name`.
    #[track_caller]
    pub fn then_expect_no_deadline(self, id: &str, name: &str) -> Self {
        let deadlines = &self.instance(id).deadlines;
        assert!(
            !deadlines.contains_key(name),
            "deadline `{name}` of `{id}` is set: {deadlines:?}"
        );
        self
    }

    /// Instance `id` completed (or never started).
    #[track_caller]
    pub fn then_completed(self, id: &str) -> Self {
        assert!(
            !self.instances.contains_key(id),
            "instance `{id}` of {} is still running",
            P::NAME
        );
        self
    }

    /// Checks instance `id`'s state.
    #[track_caller]
    pub fn then_state(self, id: &str, check: impl FnOnce(&P::State)) -> Self {
        check(&self.instance(id).state);
        self
    }

    #[track_caller]
    fn instance(&self, id: &str) -> &Instance<P::State> {
        self.instances
            .get(id)
            .unwrap_or_else(|| panic!("no running instance `{id}` of {}", P::NAME))
    }

    fn settle(&mut self, step: Step<P::State>) {
        let Step { id, after, effects } = step;
        for outgoing in effects.commands {
            self.sent.push((id.clone(), outgoing));
        }
        self.published.extend(effects.published);
        match after {
            After::Running(instance) => {
                self.instances.insert(id, instance);
            }
            After::Completed(_) => {
                self.instances.remove(&id);
            }
        }
    }

    /// `event` of another service as a message brings it ([`Message::to_stored`]), recorded
    /// now: positions belong to the other service's log.
    fn received<E: DomainEvent>(
        &mut self,
        aggregate_type: &str,
        id: &str,
        event: &E,
    ) -> StoredEvent {
        self.envelope(aggregate_type, id, event, LogPosition::START)
    }

    /// `event` as the log would hold it, recorded now.
    fn stored<A: Aggregate>(&mut self, id: &str, event: A::Event) -> StoredEvent {
        self.position += 1;
        let position = LogPosition::serial(self.position);
        self.envelope(A::TYPE, id, &event, position)
    }

    /// `event` as the next of its stream, recorded now at `position`.
    fn envelope<E: DomainEvent>(
        &mut self,
        aggregate_type: &str,
        id: &str,
        event: &E,
        position: LogPosition,
    ) -> StoredEvent {
        let sequence = self
            .streams
            .entry((aggregate_type.to_owned(), id.to_owned()))
            .and_modify(|s| *s += 1)
            .or_insert(1);
        let payload = event
            .encode()
            .unwrap_or_else(|error| panic!("cannot encode `{}`: {error}", event.event_type()));
        EventEnvelope {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: id.to_owned(),
            sequence: *sequence,
            position,
            event_id: Uuid::now_v7(),
            event_type: event.event_type().to_owned(),
            event_version: event.event_version(),
            recorded_at: self.now,
            metadata: Metadata::default(),
            event: payload,
        }
    }
}
