//! Appends one event at a time, from a number of concurrent writers (one stream each), for a
//! number of seconds, for profiling the store's append path:
//! `perf record -g target/release/append_loop relaxed 16 5`.

use std::time::{Duration, Instant};

use cqrs_runtime::sqlite::{Durability, SqliteConfig, SqliteStore};
use cqrs_runtime::{EventStore, NewEvent};

fn main() {
    let mut args = std::env::args().skip(1);
    let durability = match args.next().as_deref() {
        Some("durable") => Durability::Full,
        _ => Durability::Relaxed,
    };
    let writers: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let rt = cqrs_benches::runtime();
    let dir = tempfile::tempdir().expect("a temporary directory");
    rt.block_on(async {
        let config = SqliteConfig::new(dir.path().join("loop.db")).durability(durability);
        let store = SqliteStore::open(config).await.expect("the store opens");
        let start = Instant::now();
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    let events = cqrs_benches::new_events(1);
                    let mut version = 0;
                    while start.elapsed() < Duration::from_secs(seconds) {
                        let fresh: Vec<_> = events
                            .iter()
                            .map(|e| NewEvent {
                                event_id: uuid::Uuid::now_v7(),
                                ..e.clone()
                            })
                            .collect();
                        store
                            .append("tally", &format!("loop-{w}"), version, &fresh)
                            .await
                            .expect("the append commits");
                        version += 1;
                    }
                    version
                })
            })
            .collect();
        let mut appends = 0;
        for task in tasks {
            appends += task.await.expect("the writer finishes");
        }
        let per_second = appends as f64 / start.elapsed().as_secs_f64();
        println!("{writers} writers: {appends} appends, {per_second:.0}/s");
    });
}
