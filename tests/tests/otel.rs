//! One trace across services (feature `otel`): a client's request carries a W3C
//! `traceparent`; the command it runs records its span's context in the event's metadata; the
//! outbox relay publishes it as the `traceparent` header over a real broker (NATS and Kafka);
//! and the consuming service's span for the message, with its read model's update inside, is a
//! child of the command's span, in the client's trace. The spans are read back from
//! OpenTelemetry's in-memory exporter.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bank::{Account, Open};
use cqrs_runtime::bus::{Message, MessageHandler, Outbox, Relay, Subscriber};
use cqrs_runtime::projection::MemoryTarget;
use cqrs_runtime::{BoxError, InMemoryStore, Repository, TRACEPARENT};
use cqrs_tests::brokers::{Broker, Kind};
use cqrs_tests::bus::{AnyPublisher, AnySource, PATIENCE};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// The trace the client started, and its span, as its `traceparent` header says.
const CLIENT_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN: &str = "b7ad6b7169203331";

/// The consuming service's read model: the accounts opened, updated inside a span of its own.
#[derive(Debug, Clone, Default)]
struct Opened(Arc<Mutex<Vec<String>>>);

impl MessageHandler<()> for Opened {
    async fn handle(&mut self, message: &Message, _: &mut ()) -> Result<(), BoxError> {
        let _update = tracing::info_span!("read model update", account = %message.key).entered();
        self.0.lock().unwrap().push(message.key.clone());
        Ok(())
    }
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        panic!(
            "no span `{name}` in {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        )
    })
}

async fn one_trace_over(kind: Kind) {
    let Some(broker) = Broker::start(kind, "trace propagation tests") else {
        return;
    };
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("otel-test")));
    let _traced = tracing::subscriber::set_default(subscriber);

    // The producing service: a command in the span of the client's request.
    let store = InMemoryStore::new();
    let repo = Repository::<Account, _>::new(store.clone());
    let headers = std::collections::HashMap::from([(
        "traceparent".to_owned(),
        format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"),
    )]);
    let request = tracing::info_span!("POST /accounts/{id}/commands");
    request
        .set_parent(TraceContextPropagator::new().extract(&headers))
        .unwrap();
    let open = Open {
        owner: "Ada".into(),
        currency: "EUR".into(),
    };
    let id = format!("traced-{}", uuid::Uuid::now_v7());
    let committed = repo.execute(&id, open).instrument(request).await.unwrap();
    let recorded = committed.events[0]
        .metadata
        .traceparent()
        .unwrap()
        .to_owned();
    assert!(
        recorded.starts_with(&format!("00-{CLIENT_TRACE}-")),
        "{recorded}"
    );

    // The relay publishes it; the consuming service applies it.
    let topic = format!("traced-{}", kind.name());
    let mut relay = Relay::new(
        store,
        MemoryTarget::new(),
        Outbox::new().domain_events::<Account>().topic(&topic),
        AnyPublisher::connect(kind, broker.address()).await,
    )
    .poll_interval(Duration::from_millis(20));
    let opened = Opened::default();
    let mut consumer = Subscriber::new(
        "traced",
        AnySource::connect(&broker, &topic, "traced").await,
        MemoryTarget::new(),
        opened.clone(),
    );
    let seen = opened.clone();
    let arrived = async move {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while seen.0.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let (relayed, consumed, ()) = tokio::join!(
        relay.run(wait(stopped.clone())),
        consumer.run(wait(stopped)),
        async {
            arrived.await;
            let _ = stop.send(true);
        }
    );
    relayed.unwrap();
    consumed.unwrap();
    assert_eq!(
        *opened.0.lock().unwrap(),
        std::slice::from_ref(&id),
        "the message arrived"
    );

    let spans = exporter.get_finished_spans().unwrap();
    let trace = TraceId::from_hex(CLIENT_TRACE).unwrap();
    let request = named(&spans, "POST /accounts/{id}/commands");
    let command = named(&spans, "command");
    let append = named(&spans, "append");
    let message = named(&spans, "subscriber message");
    let update = named(&spans, "read model update");
    for span in [request, command, append, message, update] {
        assert_eq!(
            span.span_context.trace_id(),
            trace,
            "`{}` is in the client's trace",
            span.name
        );
    }
    assert_eq!(
        request.parent_span_id,
        SpanId::from_hex(CLIENT_SPAN).unwrap()
    );
    assert_eq!(command.parent_span_id, request.span_context.span_id());
    assert_eq!(
        message.parent_span_id,
        command.span_context.span_id(),
        "the consumer's span continues the command's"
    );
    assert_eq!(update.parent_span_id, message.span_context.span_id());
    assert_eq!(
        recorded,
        format!("00-{CLIENT_TRACE}-{}-01", command.span_context.span_id()),
        "the event carries the command span's context as `{TRACEPARENT}`"
    );
}

#[tokio::test]
async fn one_trace_from_the_request_to_the_consumers_read_model_over_nats() {
    one_trace_over(Kind::Nats).await;
}

#[tokio::test]
async fn one_trace_from_the_request_to_the_consumers_read_model_over_kafka() {
    one_trace_over(Kind::Kafka).await;
}
