//! What the runtime's spans and metrics cost when no tracing subscriber and no metrics recorder
//! are installed (the default of a library user who installs neither): a cached deposit in
//! memory, the command's whole path with its three spans (`command`, `load`, `append`) and its
//! metrics, against the same three spans made, entered and recorded on their own as the runtime
//! makes them (its `work_span!`: `Span::none()` while no subscriber was ever installed), as
//! `tracing`'s macro alone makes them, and against the command's metric calls alone. The ratios
//! are the share of a command each takes.

use std::time::Duration;

use bank::{Account, AccountCommand, Deposit, Open};
use cqrs_runtime::{InMemoryStore, Repository};
use criterion::{Criterion, criterion_group, criterion_main};

fn spans(c: &mut Criterion) {
    assert!(
        !tracing::dispatcher::has_been_set(),
        "measured without a subscriber"
    );
    let rt = cqrs_benches::runtime();
    let repo = Repository::<Account, _>::new(InMemoryStore::new());
    let id = "acc".to_owned();
    let open = Open {
        owner: "Ada".into(),
        currency: "EUR".into(),
    };
    rt.block_on(repo.execute(&id, AccountCommand::from(open)))
        .unwrap();

    let mut group = c.benchmark_group("spans_without_subscriber");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("cached_deposit", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    repo.execute(&id, Deposit { cents: 1 }).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("its_three_spans", |b| b.iter(|| three_spans(&id, true)));
    group.bench_function("its_three_spans_unguarded", |b| {
        b.iter(|| three_spans(&id, false))
    });
    group.bench_function("its_metrics_by_macro", |b| b.iter(metrics_by_macro));
    let keys = keys();
    group.bench_function("its_metrics", |b| b.iter(|| metrics_with_keys(&keys)));
    group.finish();
}

/// The spans of a cached command, as the runtime makes them (`guarded`) or through
/// `tracing`'s macro alone.
fn three_spans(id: &str, guarded: bool) {
    macro_rules! span {
        ($($span:tt)*) => {
            if !guarded || tracing::dispatcher::has_been_set() {
                tracing::info_span!($($span)*)
            } else {
                tracing::Span::none()
            }
        };
    }
    let command = span!(
        "command",
        "aggregate.type" = "bank_account",
        aggregate.id = %id,
        command.name = "Deposit",
        command.expected_version = tracing::field::Empty,
        command.attempts = tracing::field::Empty,
        command.outcome = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let _entered = command.enter();
    command.record("command.attempts", 1);
    let load = span!(
        "load",
        "aggregate.type" = "bank_account",
        aggregate.id = %id,
        load.cache_hit = true,
        load.snapshot_used = false,
        load.events = 0,
    );
    drop(load.enter());
    let append = span!(
        "append",
        db.system.name = "memory",
        "aggregate.type" = "bank_account",
        aggregate.id = %id,
        append.expected_version = 1,
        append.events = 1,
    );
    drop(append.enter());
    command.record("command.expected_version", 1);
    command.record("command.outcome", "committed");
    command.record("otel.status_code", "OK");
}

/// The metric calls of a cached command (the cache hit, the append's latency and events, the
/// command's outcome), with keys built at each call, as `metrics`' macros build them from
/// labels that are not literals.
fn metrics_by_macro() {
    use cqrs_runtime::metrics as m;
    use metrics::{counter, histogram};
    let kind = std::hint::black_box("bank_account");
    counter!(m::CACHE, "aggregate_type" => kind, "result" => "hit").increment(1);
    let started = std::time::Instant::now();
    histogram!(m::APPEND_DURATION, "aggregate_type" => kind, "store" => "memory")
        .record(started.elapsed());
    counter!(m::EVENTS_APPENDED, "aggregate_type" => kind).increment(1);
    counter!(m::COMMANDS, "aggregate_type" => kind, "command" => "Deposit", "outcome" => "committed")
        .increment(1);
}

/// The same calls with keys made once, as the runtime records them.
fn metrics_with_keys(keys: &[metrics::Key; 4]) {
    static META: metrics::Metadata<'static> =
        metrics::Metadata::new(module_path!(), metrics::Level::INFO, None);
    metrics::with_recorder(|r| {
        r.register_counter(&keys[0], &META).increment(1);
        let started = std::time::Instant::now();
        r.register_histogram(&keys[1], &META)
            .record(started.elapsed().as_secs_f64());
        r.register_counter(&keys[2], &META).increment(1);
        r.register_counter(&keys[3], &META).increment(1);
    });
}

fn keys() -> [metrics::Key; 4] {
    use cqrs_runtime::metrics as m;
    use metrics::{Key, Label};
    let kind = || Label::new("aggregate_type", "bank_account");
    [
        Key::from_parts(m::CACHE, vec![kind(), Label::new("result", "hit")]),
        Key::from_parts(
            m::APPEND_DURATION,
            vec![kind(), Label::new("store", "memory")],
        ),
        Key::from_parts(m::EVENTS_APPENDED, vec![kind()]),
        Key::from_parts(
            m::COMMANDS,
            vec![
                kind(),
                Label::new("command", "Deposit"),
                Label::new("outcome", "committed"),
            ],
        ),
    ]
}

criterion_group!(benches, spans);
criterion_main!(benches);
