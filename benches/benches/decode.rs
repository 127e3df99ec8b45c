//! Event decoding through the generated code: current-version payloads, and v1 payloads
//! through the two-hop upcast chain of the bank's `Deposited` (a `From` hop, then a function),
//! against plain `serde_json` decoding of the current payload type (the ceiling).

use std::hint::black_box;

use bank::{AccountEvent, Deposited};
use cqrs_runtime::DomainEvent;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const CURRENT: &str = r#"{"amount":{"cents":123456,"currency":"EUR"}}"#;
const V1: &str = r#"{"euros":1234}"#;

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    group.bench_function("serde_json_current_type", |b| {
        b.iter(|| serde_json::from_str::<Deposited>(black_box(CURRENT)).unwrap())
    });
    group.bench_function("derived_current_version", |b| {
        b.iter(|| {
            AccountEvent::decode(black_box("Deposited"), black_box(3), black_box(CURRENT)).unwrap()
        })
    });
    group.bench_function("derived_v1_two_hops", |b| {
        b.iter(|| {
            AccountEvent::decode(black_box("Deposited"), black_box(1), black_box(V1)).unwrap()
        })
    });
    group.bench_function("serde_json_v1_type", |b| {
        b.iter(|| serde_json::from_str::<bank::DepositedV1>(black_box(V1)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
