//! SQLite when the disk fills up: a child process whose files may not grow past a limit
//! (RLIMIT_FSIZE, with SIGXFSZ ignored, so a write past it fails as on a full disk) runs
//! commands until they fail, then the limit is lifted. The appends that hit the limit fail with
//! a typed backend error naming the disk; nothing is half-written (the stream has no gap and
//! every event decodes); and the same store takes commands again, with no restart.

use std::process::Command;

use cqrs_runtime::doc_support::{Counter, CounterCommand};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_runtime::{EventStore, Repository};

#[tokio::test]
async fn a_full_disk_fails_appends_cleanly_and_the_store_recovers_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.db");
    drop(SqliteStore::open(SqliteConfig::new(&path)).await.unwrap());
    // The shell ignores SIGXFSZ for the child (an ignored signal stays ignored across exec).
    let output = Command::new("sh")
        .args(["-c", "trap '' XFSZ; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_sqlite_writer"))
        .args(["diskfull", path.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value = |prefix: &str| -> u64 {
        said.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `{prefix}` in {said}"))
    };
    let acknowledged = value("acknowledged ");
    let failures: Vec<&str> = said
        .lines()
        .filter_map(|l| l.strip_prefix("failed "))
        .collect();
    assert!(!failures.is_empty(), "the limit was reached: {said}");
    for error in &failures {
        assert!(
            error.starts_with(
                "event store backend failed: SQLite commit failed, nothing was written: disk"
            ),
            "a typed error naming the disk: {error}"
        );
    }
    assert_eq!(
        value("after "),
        5,
        "the store takes commands again without a restart: {said}"
    );

    let store = SqliteStore::open(SqliteConfig::new(&path)).await.unwrap();
    let stream = store
        .read_stream("counter", "full", 0, usize::MAX)
        .await
        .unwrap();
    let landed = stream.len() as u64;
    assert!(
        (acknowledged + 5..=acknowledged + 5 + failures.len() as u64).contains(&landed),
        "{landed} events for {acknowledged} + 5 acknowledged commands"
    );
    assert!(
        stream
            .iter()
            .enumerate()
            .all(|(i, e)| e.sequence == i as u64 + 1),
        "no gap"
    );
    let counter = Repository::<Counter, _>::new(store)
        .load(&"full".to_owned())
        .await
        .unwrap();
    assert_eq!(counter.state().total, landed, "every stored event decodes");
}

/// Runs `sqlite_writer ioerror` with `fault` (see its docs) and checks what it printed and the
/// file it left: the commands during the fault fail with a typed error naming the disk, reads
/// still answer, nothing is half-written, and the store takes commands once opened again.
async fn io_fault(fault: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{fault}.db"));
    drop(SqliteStore::open(SqliteConfig::new(&path)).await.unwrap());
    let output = Command::new(env!("CARGO_BIN_EXE_sqlite_writer"))
        .args(["ioerror", path.to_str().unwrap(), fault])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let failures: Vec<&str> = said
        .lines()
        .filter_map(|l| l.strip_prefix("failed "))
        .collect();
    assert_eq!(
        failures.len(),
        3,
        "every command during the fault fails: {said}"
    );
    for error in &failures {
        assert_eq!(
            *error,
            "event store backend failed: SQLite commit failed, nothing was written: disk I/O error",
            "a typed error naming the disk"
        );
    }
    assert!(
        said.lines().any(|l| l == "loaded 5"),
        "reads still answer during the fault, with the acknowledged state: {said}"
    );

    let store = SqliteStore::open(SqliteConfig::new(&path)).await.unwrap();
    let stream = store
        .read_stream("counter", "faulty", 0, usize::MAX)
        .await
        .unwrap();
    assert_eq!(
        stream.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (1..=5).collect::<Vec<_>>(),
        "the acknowledged events, and none of the failed commands'"
    );
    let repo = Repository::<Counter, _>::new(store);
    for _ in 0..5 {
        repo.execute(&"faulty".to_owned(), CounterCommand::Add(1))
            .await
            .expect("the store takes commands once the file system is writable again");
    }
    assert_eq!(
        repo.load(&"faulty".to_owned()).await.unwrap().state().total,
        10
    );
}

#[tokio::test]
async fn an_io_error_fails_appends_cleanly_and_loses_nothing() {
    io_fault("eio").await;
}

#[tokio::test]
async fn a_file_system_gone_read_only_fails_appends_cleanly_and_loses_nothing() {
    io_fault("erofs").await;
}
