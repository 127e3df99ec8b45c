//! Replays one bank account of N events (default 1,000) from the in-memory store again and
//! again, without the cache, for profiling: `perf record -g target/release/memory_replay 1000 5`.

use std::time::{Duration, Instant};

use bank::Account;
use cqrs_runtime::{EventStore, InMemoryStore, Repository};

fn main() {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let rt = cqrs_benches::runtime();
    let store = InMemoryStore::new();
    let stored = cqrs_benches::account_events(events);
    rt.block_on(store.append(bank::ACCOUNT_TYPE, "acc", 0, &stored))
        .expect("the events are stored");
    let repo = Repository::<Account, _>::new(store).no_cache();
    let (start, mut loads) = (Instant::now(), 0u32);
    while start.elapsed() < Duration::from_secs(seconds) {
        let root = rt.block_on(repo.load(&"acc".to_owned())).expect("the load");
        assert_eq!(root.version(), events as u64);
        loads += 1;
    }
    println!(
        "{loads} loads of {events} events, {:?} each",
        start.elapsed() / loads
    );
}
