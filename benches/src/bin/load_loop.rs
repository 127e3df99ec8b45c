//! Loads one aggregate of N events (default 10,000) from SQLite again and again for a number
//! of seconds, without the cache, for profiling the uncached load:
//! `perf record -g target/release/load_loop 10000 5`.

use std::time::{Duration, Instant};

use cqrs_benches::{Tally, new_events};
use cqrs_runtime::sqlite::{Durability, SqliteConfig, SqliteStore};
use cqrs_runtime::{EventStore, Repository};

fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let rt = cqrs_benches::runtime();
    let dir = tempfile::tempdir().expect("a temporary directory");
    rt.block_on(async {
        let config = SqliteConfig::new(dir.path().join("load.db")).durability(Durability::Relaxed);
        let store = SqliteStore::open(config).await.expect("the store opens");
        let mut version = 0;
        while version < events {
            let batch = (events - version).min(500);
            let page = new_events(batch as usize);
            store
                .append("tally", "big", version, &page)
                .await
                .expect("the append commits");
            version += batch;
        }
        let repo = Repository::<Tally, _>::new(store).no_cache();
        let (start, mut loads) = (Instant::now(), 0u32);
        while start.elapsed() < Duration::from_secs(seconds) {
            let root = repo.load(&"big".into()).await.expect("the load");
            assert_eq!(root.version(), events);
            loads += 1;
        }
        let each = start.elapsed() / loads;
        println!("{loads} loads of {events} events, {each:?} each");
    });
}
