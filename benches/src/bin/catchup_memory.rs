//! Peak memory of a projection catching up over a long log from SQLite:
//! `catchup_memory [EVENTS] [FILE]`.
//!
//! Writes EVENTS (default 1,000,000) events of 1,000 tallies to FILE (default in a temporary
//! directory) if it does not hold them yet, then, in a second run of itself, catches an
//! in-memory read model up over the whole log and prints the peak resident memory before and
//! after. Memory must stay flat: batches are read, applied and dropped; only the read model
//! (1,000 totals) stays.

use cqrs_benches::{TallyTotals, fill_tallies, peak_rss_kib};
use cqrs_runtime::Projector;
use cqrs_runtime::projection::MemoryTarget;
use cqrs_runtime::sqlite::{Durability, SqliteConfig, SqliteStore};

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
        .unwrap_or_else(|| dir.path().join("catchup.db"));
    if std::env::var_os("CATCHUP_MEMORY_CHILD").is_none() {
        let store = SqliteStore::open(SqliteConfig::new(&path).durability(Durability::Relaxed))
            .await
            .unwrap();
        fill_tallies(&store, events).await;
        drop(store);
        // Measure in a fresh process, so the writing phase does not count.
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .arg(events.to_string())
            .arg(&path)
            .env("CATCHUP_MEMORY_CHILD", "1")
            .status()
            .unwrap();
        std::process::exit(status.code().unwrap_or(1));
    }
    let store = SqliteStore::open(SqliteConfig::new(&path)).await.unwrap();
    let before = peak_rss_kib().unwrap_or(0);
    let start = std::time::Instant::now();
    let mut runner =
        Projector::new(store, MemoryTarget::new(), TallyTotals::default()).batch_size(2048);
    let done = runner.catch_up().await.unwrap();
    let elapsed = start.elapsed();
    let after = peak_rss_kib().unwrap_or(0);
    assert_eq!(done.read, events);
    assert_eq!(runner.projection().applied, events);
    println!(
        "caught up over {events} events in {:.2} s ({:.0} events/s); peak RSS {:.1} MiB after open, {:.1} MiB after catch-up",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
}
