//! What leaves the service: per aggregate type, the topic and how stored events become
//! messages.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::{Message, default_topic};
use crate::contract::aggregate::Aggregate;
use crate::contract::error::StoreError;
use crate::contract::event::{DomainEvent, StoredEvent};

type Map = dyn Fn(&StoredEvent) -> Result<Option<Message>, StoreError> + Send + Sync;

/// The events a [`Relay`](super::Relay) publishes, and as what. Events of aggregate types
/// without a route stay private.
///
/// ```
/// use cqrs_runtime::bus::Outbox;
/// use cqrs_runtime::doc_support::{Counter, CounterEvent};
///
/// // Every event of `Counter`, as stored, on the topic `counter`.
/// let outbox = Outbox::new().domain_events::<Counter>();
/// assert_eq!(outbox.topics(), vec!["counter"]);
///
/// // Or only what the public contract says, on a topic of its own.
/// #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
/// struct Grew {
///     by: u64,
/// }
///
/// #[derive(cqrs_runtime::Event)]
/// enum CounterPublic {
///     #[event(rename = "counter.Grew")]
///     Grew(Grew),
/// }
///
/// let outbox = Outbox::new().integration_events::<Counter, _>(|event| match event {
///     CounterEvent::Added(by) => Some(CounterPublic::Grew(Grew { by: *by })),
///     _ => None,
/// });
/// let outbox = outbox.topic("counters.public");
/// assert_eq!(outbox.topics(), vec!["counters.public"]);
/// ```
#[derive(Clone, Default)]
pub struct Outbox {
    routes: HashMap<&'static str, Route>,
    last: Option<&'static str>,
}

#[derive(Clone)]
struct Route {
    topic: String,
    map: Arc<Map>,
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut routes: Vec<_> = self
            .routes
            .iter()
            .map(|(aggregate, route)| (*aggregate, route.topic.as_str()))
            .collect();
        routes.sort_unstable();
        f.debug_struct("Outbox").field("routes", &routes).finish()
    }
}

impl Outbox {
    /// An outbox that publishes nothing yet.
    pub fn new() -> Self {
        Outbox::default()
    }

    /// Publishes every event of `A` as it is stored (type name, version, payload), on the
    /// topic [`default_topic`]`(A::TYPE)`. Consumers then depend on `A`'s event types.
    pub fn domain_events<A: Aggregate>(self) -> Self {
        let topic = default_topic(A::TYPE);
        self.route(A::TYPE, topic.clone(), move |event| {
            Ok(Some(Message::from_stored(topic.clone(), event)))
        })
    }

    /// Publishes the integration event `map` makes of each event of `A` (decoded through its
    /// upcasters), keeping the source event's id and envelope; `None` keeps an event private.
    /// The topic is [`default_topic`]`(A::TYPE)` unless [`topic`](Self::topic) says otherwise.
    ///
    /// An event that does not decode stops the relay with the error (it is never skipped):
    /// fix the upcaster and restart.
    pub fn integration_events<A, I>(
        self,
        map: impl Fn(&A::Event) -> Option<I> + Send + Sync + 'static,
    ) -> Self
    where
        A: Aggregate,
        I: DomainEvent,
    {
        let topic = default_topic(A::TYPE);
        self.route(A::TYPE, topic.clone(), move |stored| {
            let event = A::Event::decode(&stored.event_type, stored.event_version, &stored.event)
                .map_err(|source| StoreError::Decode {
                aggregate_type: stored.aggregate_type.clone(),
                aggregate_id: stored.aggregate_id.clone(),
                sequence: stored.sequence,
                source,
            })?;
            let Some(public) = map(&event) else {
                return Ok(None);
            };
            let payload = public.encode().map_err(|source| StoreError::Encode {
                aggregate_type: stored.aggregate_type.clone(),
                aggregate_id: stored.aggregate_id.clone(),
                event_type: public.event_type().to_owned(),
                source,
            })?;
            let mut message = Message::from_stored(topic.clone(), stored);
            message.event_type = public.event_type().to_owned();
            message.event_version = public.event_version();
            message.payload = payload;
            Ok(Some(message))
        })
    }

    /// Sets the topic (Kafka) or stream (NATS) of the route added last.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        let topic = topic.into();
        if let Some(route) = self.last.and_then(|a| self.routes.get_mut(a)) {
            let map = Arc::clone(&route.map);
            let renamed = topic.clone();
            route.topic = topic;
            route.map = Arc::new(move |event| {
                Ok(map(event)?.map(|mut message| {
                    message.topic.clone_from(&renamed);
                    message
                }))
            });
        }
        self
    }

    fn route(
        mut self,
        aggregate_type: &'static str,
        topic: String,
        map: impl Fn(&StoredEvent) -> Result<Option<Message>, StoreError> + Send + Sync + 'static,
    ) -> Self {
        self.routes.insert(
            aggregate_type,
            Route {
                topic,
                map: Arc::new(map),
            },
        );
        self.last = Some(aggregate_type);
        self
    }

    /// The topics this outbox publishes to, sorted.
    pub fn topics(&self) -> Vec<&str> {
        let mut topics: Vec<&str> = self.routes.values().map(|r| r.topic.as_str()).collect();
        topics.sort_unstable();
        topics.dedup();
        topics
    }

    /// The aggregate types whose events leave the service, sorted.
    pub fn aggregate_types(&self) -> Vec<&'static str> {
        let mut types: Vec<&'static str> = self.routes.keys().copied().collect();
        types.sort_unstable();
        types
    }

    /// The message a stored event becomes, if it leaves the service.
    pub fn message(&self, event: &StoredEvent) -> Result<Option<Message>, StoreError> {
        match self.routes.get(event.aggregate_type.as_str()) {
            Some(route) => (route.map)(event),
            None => Ok(None),
        }
    }
}
