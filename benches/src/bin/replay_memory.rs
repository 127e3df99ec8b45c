//! Peak memory of replaying a long stream from SQLite: `replay_memory [EVENTS] [FILE]`.
//!
//! Writes EVENTS (default 1,000,000) events to one stream in FILE (default in a temporary
//! directory) if it does not hold them yet, then, in a second process run of itself, loads the
//! aggregate by replaying every event and prints the peak resident memory before and after.
//! Memory must not grow with the stream: pages are read and dropped as they are applied.

use cqrs_benches::{Tally, new_events, peak_rss_kib};
use cqrs_runtime::sqlite::{Durability, SqliteConfig, SqliteStore};
use cqrs_runtime::{EventStore, Repository};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("replay.db"));
    if std::env::var_os("REPLAY_MEMORY_CHILD").is_none() {
        write(&path, events).await;
        // Measure in a fresh process, so the writing phase does not count.
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .arg(events.to_string())
            .arg(&path)
            .env("REPLAY_MEMORY_CHILD", "1")
            .status()
            .unwrap();
        std::process::exit(status.code().unwrap_or(1));
    }
    let store = SqliteStore::open(SqliteConfig::new(&path)).await.unwrap();
    let before = peak_rss_kib().unwrap_or(0);
    let start = std::time::Instant::now();
    let root = Repository::<Tally, _>::new(store)
        .load(&"long".into())
        .await
        .unwrap();
    let elapsed = start.elapsed();
    let after = peak_rss_kib().unwrap_or(0);
    assert_eq!(root.version(), events);
    println!(
        "replayed {events} events in {:.2} s ({:.0} events/s); peak RSS {:.1} MiB after open, {:.1} MiB after replay",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
}

async fn write(path: &std::path::Path, events: u64) {
    let store = SqliteStore::open(SqliteConfig::new(path).durability(Durability::Relaxed))
        .await
        .unwrap();
    let have = store.read_stream("tally", "long", 0, 1).await.unwrap();
    if !have.is_empty() {
        return;
    }
    const BATCH: u64 = 1000;
    let mut version = 0;
    while version < events {
        let n = BATCH.min(events - version) as usize;
        store
            .append("tally", "long", version, &new_events(n))
            .await
            .unwrap();
        version += n as u64;
    }
}
