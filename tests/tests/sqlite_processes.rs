//! SQLite across processes: a writer killed with SIGKILL at random moments never leaves a torn
//! batch or loses an append that returned, and two processes writing one stream land every
//! command with the default retry policy.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use cqrs_runtime::EventStore;
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};

const CHILD: &str = env!("CARGO_BIN_EXE_sqlite_writer");

/// A small deterministic generator for kill delays (no dependency, reproducible by seed).
struct Lcg(u64);

impl Lcg {
    fn next_in(&mut self, low: u64, high: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        low + (self.0 >> 33) % (high - low)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_never_tears_a_batch_or_loses_a_returned_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("kill delay seed: {seed}");
    let mut delays = Lcg(seed);
    // The highest version each stream was reported committed at, across all runs.
    let mut committed: HashMap<String, u64> = HashMap::new();
    for run in 0..24 {
        let mut child = Command::new(CHILD)
            .args(["crash", path.to_str().unwrap()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the writer");
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(delays.next_in(30, 300)));
        child.kill().expect("SIGKILL the writer");
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            let mut parts = line.split_whitespace().skip(1);
            let (stream, version) = (parts.next().unwrap(), parts.next().unwrap());
            let version: u64 = version.parse().unwrap();
            let best = committed.entry(stream.to_owned()).or_default();
            *best = (*best).max(version);
        }
        check(&path, &committed, run).await;
        println!(
            "run {run}: committed so far {:?}",
            committed.values().sum::<u64>()
        );
    }
    assert!(
        committed.values().sum::<u64>() > 0,
        "the writer committed something before being killed"
    );
}

/// Every stream is contiguous, made of whole batches, and holds every reported append.
async fn check(path: &std::path::Path, committed: &HashMap<String, u64>, run: usize) {
    let store = SqliteStore::open(SqliteConfig::new(path)).await.unwrap();
    for stream in ["s0", "s1", "s2", "s3"] {
        let events = store
            .read_stream("crash", stream, 0, usize::MAX)
            .await
            .unwrap();
        for (i, event) in events.iter().enumerate() {
            assert_eq!(
                event.sequence,
                i as u64 + 1,
                "run {run}: {stream} has a gap"
            );
        }
        assert_eq!(
            events.len() % 3,
            0,
            "run {run}: {stream} ends in a torn batch"
        );
        for batch in events.chunks(3) {
            let parts: Vec<serde_json::Value> = batch
                .iter()
                .map(|e| serde_json::from_str(&e.event).unwrap())
                .collect();
            assert!(
                parts.iter().all(|p| p["batch"] == parts[0]["batch"]),
                "run {run}: {stream} mixes batches"
            );
            let indexes: Vec<u64> = parts.iter().map(|p| p["index"].as_u64().unwrap()).collect();
            assert_eq!(
                indexes,
                [0, 1, 2],
                "run {run}: {stream} has a partial batch"
            );
        }
        let reported = committed.get(stream).copied().unwrap_or(0);
        assert!(
            events.len() as u64 >= reported,
            "run {run}: {stream} lost an append that returned: stored {}, reported {reported}",
            events.len()
        );
    }
}

/// Two processes, each with 4 tasks adding to one counter 250 times, through repositories
/// with the default retry policy: all 2,000 commands land, none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_writing_one_stream_land_every_command_with_the_default_retry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contend.db");
    // Create the schema first, so that the two children only race on appends.
    drop(SqliteStore::open(SqliteConfig::new(&path)).await.unwrap());
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(CHILD)
                .args(["contend", path.to_str().unwrap(), "4", "250"])
                .stdout(Stdio::piped())
                .spawn()
                .expect("start a writer")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "a writer failed");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            "failed 0",
            "a writer's commands failed"
        );
    }
    let store = SqliteStore::open(SqliteConfig::new(&path)).await.unwrap();
    let events = store
        .read_stream("counter", "shared", 0, usize::MAX)
        .await
        .unwrap();
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=2000).collect::<Vec<u64>>());
}
