//! Trace context in event metadata: the W3C `traceparent` (and `tracestate`) of the command
//! that recorded an event travel with it, in its metadata's free key/values and on the bus as
//! headers of the same names, so that a consumer's span continues the producer's trace.
//!
//! With the `otel` feature (and a `tracing-opentelemetry` layer installed), the repository
//! records the command span's context in every event it appends, and a subscriber makes each
//! message's span a child of it. Without the feature nothing is recorded, but a context already
//! in the metadata (set by the caller) still travels.

use std::borrow::Cow;

use super::event::Metadata;

/// The metadata key (and bus header) of the W3C trace parent.
pub const TRACEPARENT: &str = "traceparent";
/// The metadata key (and bus header) of the W3C trace state.
pub const TRACESTATE: &str = "tracestate";

impl Metadata {
    /// The W3C `traceparent` of the span that recorded the event, if any.
    pub fn traceparent(&self) -> Option<&str> {
        self.extra.get(TRACEPARENT).map(String::as_str)
    }
}

/// `metadata` with the current span's trace context, when there is one to record (feature
/// `otel`); else `metadata` as it is.
pub(crate) fn with_current_context(metadata: &Metadata) -> Cow<'_, Metadata> {
    #[cfg(feature = "otel")]
    {
        use opentelemetry::propagation::TextMapPropagator;
        use opentelemetry::trace::TraceContextExt;
        use tracing_opentelemetry::OpenTelemetrySpanExt;

        let cx = tracing::Span::current().context();
        if cx.span().span_context().is_valid() {
            let mut traced = metadata.clone();
            let propagator = opentelemetry_sdk::propagation::TraceContextPropagator::new();
            propagator.inject_context(&cx, &mut carrier::Carrier(&mut traced.extra));
            return Cow::Owned(traced);
        }
    }
    Cow::Borrowed(metadata)
}

/// Makes `span` (not entered yet) a child of the span whose context `metadata` carries
/// (feature `otel`); without one, or without the feature, leaves it as it is.
pub(crate) fn continue_trace(span: &tracing::Span, metadata: &Metadata) {
    #[cfg(feature = "otel")]
    if metadata.traceparent().is_some() && !span.is_disabled() {
        use opentelemetry::propagation::TextMapPropagator;
        use tracing_opentelemetry::OpenTelemetrySpanExt;

        let mut extra = metadata.extra.clone();
        let propagator = opentelemetry_sdk::propagation::TraceContextPropagator::new();
        let parent = propagator.extract(&carrier::Carrier(&mut extra));
        if let Err(error) = span.set_parent(parent) {
            tracing::debug!(%error, "cannot continue the trace of a message");
        }
    }
    #[cfg(not(feature = "otel"))]
    let _ = (span, metadata);
}

#[cfg(feature = "otel")]
mod carrier {
    use std::collections::BTreeMap;

    use opentelemetry::propagation::{Extractor, Injector};

    /// The metadata's free key/values as what a propagator writes to and reads from.
    pub(super) struct Carrier<'a>(pub(super) &'a mut BTreeMap<String, String>);

    impl Injector for Carrier<'_> {
        fn set(&mut self, key: &str, value: String) {
            self.0.insert(key.to_owned(), value);
        }
    }

    impl Extractor for Carrier<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).map(String::as_str)
        }

        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(String::as_str).collect()
        }
    }
}
