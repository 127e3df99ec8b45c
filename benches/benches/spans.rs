//! What the runtime's spans cost when no tracing subscriber is installed (the default of a
//! library user who installs none): a cached deposit in memory, the command's whole path with
//! its three spans (`command`, `load`, `append`), against the same three spans made, entered
//! and recorded on their own as the runtime makes them (its `work_span!`: `Span::none()` while
//! no subscriber was ever installed), and as `tracing`'s macro alone makes them. The ratios are
//! the share of a command the spans take.

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

criterion_group!(benches, spans);
criterion_main!(benches);
