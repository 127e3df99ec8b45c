//! The spans of each unit of work, as a tracing subscriber sees them: a command with its load
//! and append, a projection batch, a relay batch and a subscriber message, each with the
//! attributes its name promises.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bank::{Account, AccountCommand, AccountSummaries, Deposit, Open, Withdraw};
use cqrs_runtime::bus::memory::MemoryBroker;
use cqrs_runtime::bus::{Message, MessageHandler, Outbox, Relay, Subscriber};
use cqrs_runtime::projection::{MemoryTarget, Projection};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_runtime::{BoxError, CommandError, InMemoryStore, Projector, Repository};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as recorded: its name, its parent's name, and every field it was given or recorded.
#[derive(Debug, Clone)]
struct Recorded {
    name: &'static str,
    parent: Option<&'static str>,
    fields: BTreeMap<String, String>,
}

impl Recorded {
    fn field(&self, name: &str) -> &str {
        self.fields.get(name).unwrap_or_else(|| {
            panic!(
                "span `{}` has no field `{name}`: {:?}",
                self.name, self.fields
            )
        })
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Keeps every span, in the order they were opened.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<(Id, Recorded)>>>);

impl Spans {
    fn named(&self, name: &str) -> Vec<Recorded> {
        let spans = self.0.lock().unwrap();
        spans
            .iter()
            .filter(|(_, s)| s.name == name)
            .map(|(_, s)| s.clone())
            .collect()
    }

    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, cx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let parent = cx.span(id).and_then(|span| span.parent()).map(|p| p.name());
        let recorded = Recorded {
            name: attrs.metadata().name(),
            parent,
            fields,
        };
        self.0.lock().unwrap().push((id.clone(), recorded));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some((_, span)) = spans.iter_mut().rev().find(|(i, _)| i == id) {
            values.record(&mut Fields(&mut span.fields));
        }
    }
}

fn install() -> (Spans, tracing::subscriber::DefaultGuard) {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    (spans, tracing::subscriber::set_default(subscriber))
}

fn open() -> AccountCommand {
    Open {
        owner: "Ada".into(),
        currency: "EUR".into(),
    }
    .into()
}

#[tokio::test]
async fn a_command_has_a_span_with_its_load_and_append_inside() {
    let (spans, _guard) = install();
    let repo = Repository::<Account, _>::new(InMemoryStore::new());
    let id = "acc-1".to_owned();
    repo.execute(&id, open()).await.unwrap();

    let [command] = &spans.named("command")[..] else {
        panic!("one command span")
    };
    assert_eq!(command.field("aggregate.type"), "bank_account");
    assert_eq!(command.field("aggregate.id"), "acc-1");
    assert_eq!(command.field("command.name"), "Open");
    assert_eq!(command.field("command.expected_version"), "0");
    assert_eq!(command.field("command.attempts"), "1");
    assert_eq!(command.field("command.outcome"), "committed");
    assert_eq!(command.field("otel.status_code"), "OK");
    let [load] = &spans.named("load")[..] else {
        panic!("one load span")
    };
    assert_eq!(load.parent, Some("command"));
    assert_eq!(
        (
            load.field("load.cache_hit"),
            load.field("load.events"),
            load.field("load.snapshot_used")
        ),
        ("false", "0", "false")
    );
    let [append] = &spans.named("append")[..] else {
        panic!("one append span")
    };
    assert_eq!(append.parent, Some("command"));
    assert_eq!(append.field("db.system.name"), "memory");
    assert_eq!(append.field("append.events"), "1");
    assert_eq!(append.field("append.expected_version"), "0");

    // Decided on the cached state: the load is a cache hit.
    spans.clear();
    repo.execute(&id, Deposit { cents: 5 }).await.unwrap();
    let [load] = &spans.named("load")[..] else {
        panic!("one load span")
    };
    assert_eq!(load.field("load.cache_hit"), "true");
    assert_eq!(spans.named("command")[0].field("command.name"), "Deposit");
    assert_eq!(
        spans.named("command")[0].field("command.expected_version"),
        "1"
    );

    // Uncached: the load replays the stream.
    spans.clear();
    let uncached = repo.clone().no_cache();
    let refused = uncached
        .execute(&id, Withdraw { cents: 500 })
        .await
        .unwrap_err();
    assert!(matches!(refused, CommandError::Rejected(_)), "{refused}");
    let [load] = &spans.named("load")[..] else {
        panic!("one load span")
    };
    assert_eq!(
        (load.field("load.cache_hit"), load.field("load.events")),
        ("false", "2")
    );
    let [command] = &spans.named("command")[..] else {
        panic!("one command span")
    };
    assert_eq!(
        (
            command.field("command.outcome"),
            command.field("otel.status_code")
        ),
        ("rejected", "OK"),
        "a refusal is the domain's answer, not a failure"
    );
    assert!(
        spans.named("append").is_empty(),
        "a refusal appends nothing"
    );
}

#[tokio::test]
async fn a_projection_batch_and_the_bus_have_spans() {
    let (spans, _guard) = install();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("events.db")))
        .await
        .unwrap();
    let repo = Repository::<Account, _>::new(store.clone());
    for id in ["a", "b"] {
        repo.execute(&id.to_owned(), open()).await.unwrap();
    }

    let mut projector = Projector::new(
        store.clone(),
        MemoryTarget::new(),
        AccountSummaries::default(),
    );
    projector.catch_up().await.unwrap();
    let batches = spans.named("projection batch");
    let first = batches.first().expect("a projection batch span");
    assert_eq!(
        first.field("projection.name"),
        <AccountSummaries as Projection>::NAME
    );
    assert_eq!(first.field("batch.events"), "2");
    assert_ne!(
        first.field("batch.from"),
        first.field("batch.to"),
        "the batch moved the checkpoint"
    );

    let broker = MemoryBroker::new();
    let outbox = Outbox::new().domain_events::<Account>().topic("accounts");
    let mut relay = Relay::new(
        store.clone(),
        store.projection_target(),
        outbox,
        broker.publisher(),
    );
    relay.catch_up().await.unwrap();
    let relayed = spans.named("relay batch");
    let first = relayed.first().expect("a relay batch span");
    assert_eq!(first.field("messaging.batch.message_count"), "2");
    assert_eq!(first.field("messaging.destination.name"), "accounts");

    struct Count;
    impl MessageHandler<sqlx::SqliteConnection> for Count {
        async fn handle(
            &mut self,
            _: &Message,
            _: &mut sqlx::SqliteConnection,
        ) -> Result<(), BoxError> {
            Ok(())
        }
    }
    let consumer = SqliteStore::open(SqliteConfig::new(dir.path().join("consumer.db")))
        .await
        .unwrap();
    let mut subscriber = Subscriber::new(
        "counter",
        broker.subscribe("counter", &["accounts"]),
        consumer.projection_target(),
        Count,
    );
    subscriber.process_next(1).await.unwrap();
    let [message] = &spans.named("subscriber message")[..] else {
        panic!("one message span")
    };
    assert_eq!(message.field("consumer"), "counter");
    assert_eq!(message.field("messaging.destination.name"), "accounts");
    assert_eq!(message.field("attempt"), "1");
    assert_eq!(message.field("outcome"), "processed");
    let published = broker.messages("accounts");
    assert_eq!(
        message.field("messaging.message.id"),
        published[0].event_id.to_string()
    );
}

#[test]
fn commands_are_named_by_their_variant_or_else_by_their_type() {
    use cqrs_runtime::Aggregate;
    use cqrs_runtime::doc_support::{Counter, CounterCommand};
    assert_eq!(Account::command_name(&open()), "Open");
    assert_eq!(
        Account::command_name(&Deposit { cents: 1 }.into()),
        "Deposit"
    );
    // Written by hand against the traits: the default, the command type's own name.
    assert_eq!(
        Counter::command_name(&CounterCommand::Add(1)),
        "CounterCommand"
    );
}
