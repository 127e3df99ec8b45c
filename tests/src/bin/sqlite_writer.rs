//! The child process of the SQLite crash and multi-process tests.
//!
//! - `sqlite_writer crash <file>`: appends whole batches of 3 events to 4 streams in a loop,
//!   printing `committed <stream> <version>` after each append returned, until killed.
//! - `sqlite_writer contend <file> <tasks> <commands>`: `tasks` tasks each add 1 to the counter
//!   `shared` `commands` times through one repository with the default retry policy, then
//!   print `failed <n>` (the commands that returned an error) and exit.
//! - `sqlite_writer diskfull <file>`: commands on counter `full` until the files may grow no
//!   more (RLIMIT_FSIZE, as a full disk; the parent ignores SIGXFSZ for it), then the limit
//!   lifted and five more commands, with no restart; prints `acknowledged <n>`, `failed <error>`
//!   per failure, and `after <n>` (the commands that succeeded after).
//! - `sqlite_writer ioerror <file> eio|erofs`: five commands on counter `faulty`, then every
//!   write and sync of the database's files fails in the kernel with EIO (a failing disk) or
//!   EROFS (the file system remounted read-only), through a seccomp filter on their file
//!   descriptors; three more commands, then a load; prints `acknowledged <n>`, `failed <error>`
//!   per failure and `loaded <total>`. A seccomp filter cannot be lifted, so recovery is the
//!   parent's: it opens the file again.
//! - `sqlite_writer history <file> <seed> <operations> <counters> <writers> <first writer>`:
//!   `writers` writers of `cqrs_tests::history`, numbered from `first writer`, each with its own
//!   repository; prints every call as a JSON line and exits.

use std::io::Write;

use cqrs_runtime::doc_support::{Counter, CounterCommand};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_runtime::{EventStore, Metadata, NewEvent, Repository};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, path) = match &args[..] {
        [_, mode, path, ..] => (mode.as_str(), path.as_str()),
        _ => {
            eprintln!("usage: sqlite_writer crash|contend <file> [commands]");
            std::process::exit(2);
        }
    };
    let store = SqliteStore::open(SqliteConfig::new(path))
        .await
        .expect("open the store");
    match mode {
        "crash" => crash(store).await,
        "contend" => {
            let number = |i: usize| args.get(i).and_then(|n| n.parse().ok()).unwrap_or(1);
            contend(store, number(3), number(4)).await;
        }
        "diskfull" => disk_full(store, path).await,
        "ioerror" => io_error(store, path, args.get(3).map(String::as_str)).await,
        "history" => {
            let number =
                |i: usize| -> u64 { args.get(i).and_then(|n| n.parse().ok()).unwrap_or(1) };
            let plan = cqrs_tests::history::Plan {
                seed: number(3),
                operations: number(4) as usize,
                counters: number(5) as usize,
            };
            history(store, plan, number(6), number(7)).await;
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    }
}

async fn crash(store: SqliteStore) {
    let streams = ["s0", "s1", "s2", "s3"];
    let mut versions = Vec::new();
    for stream in streams {
        let events = store
            .read_stream("crash", stream, 0, usize::MAX)
            .await
            .unwrap();
        versions.push(events.len() as u64);
    }
    let mut stdout = std::io::stdout();
    for round in 0u64.. {
        let k = (round % 4) as usize;
        let batch_id = uuid::Uuid::now_v7();
        let events: Vec<NewEvent> = (0..3)
            .map(|index| NewEvent {
                event_id: uuid::Uuid::now_v7(),
                event_type: "Part",
                event_version: 1,
                payload: serde_json::json!({ "batch": batch_id, "index": index }).to_string(),
                metadata: Metadata::default(),
                recorded_at: chrono::Utc::now(),
            })
            .collect();
        store
            .append("crash", streams[k], versions[k], &events)
            .await
            .expect("append");
        versions[k] += 3;
        writeln!(stdout, "committed {} {}", streams[k], versions[k]).unwrap();
        stdout.flush().unwrap();
    }
}

async fn contend(store: SqliteStore, tasks: u64, commands: u64) {
    let repo = Repository::<Counter, _>::new(store);
    let tasks: Vec<_> = (0..tasks)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move {
                let (id, mut failed) = ("shared".to_owned(), 0u64);
                for _ in 0..commands {
                    if let Err(error) = repo.execute(&id, CounterCommand::Add(1)).await {
                        eprintln!("an add failed: {error}");
                        failed += 1;
                    }
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        failed += task.await.expect("a contending task panicked");
    }
    println!("failed {failed}");
}

async fn history(store: SqliteStore, plan: cqrs_tests::history::Plan, writers: u64, first: u64) {
    let repos: Vec<Repository<Counter, SqliteStore>> = (0..writers)
        .map(|_| Repository::new(store.clone()))
        .collect();
    let runs = repos
        .iter()
        .enumerate()
        .map(|(w, repo)| cqrs_tests::history::write(repo, plan, first + w as u64));
    let calls = futures::future::join_all(runs).await;
    let mut stdout = std::io::stdout();
    for call in calls.into_iter().flatten() {
        writeln!(stdout, "{}", serde_json::to_string(&call).unwrap()).unwrap();
    }
}

async fn disk_full(store: SqliteStore, path: &str) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let repo = Repository::<Counter, _>::new(store);
    let id = "full".to_owned();
    repo.execute(&id, CounterCommand::Add(1))
        .await
        .expect("a first command");
    let size = |p: &str| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let grown = size(path).max(size(&format!("{path}-wal")));
    let unlimited = getrlimit(Resource::Fsize);
    setrlimit(
        Resource::Fsize,
        Rlimit {
            current: Some(grown + 64 * 1024),
            maximum: unlimited.maximum,
        },
    )
    .expect("limit the file size");
    let mut stdout = std::io::stdout();
    let (mut acknowledged, mut failures) = (1, 0);
    while failures < 3 && acknowledged < 100_000 {
        match repo.execute(&id, CounterCommand::Add(1)).await {
            Ok(_) => acknowledged += 1,
            Err(error) => {
                failures += 1;
                writeln!(stdout, "failed {error}").unwrap();
            }
        }
    }
    writeln!(stdout, "acknowledged {acknowledged}").unwrap();
    setrlimit(Resource::Fsize, unlimited).expect("lift the limit");
    let mut after = 0;
    for _ in 0..5 {
        match repo.execute(&id, CounterCommand::Add(1)).await {
            Ok(_) => after += 1,
            Err(error) => writeln!(stdout, "still failing {error}").unwrap(),
        }
    }
    writeln!(stdout, "after {after}").unwrap();
}

async fn io_error(store: SqliteStore, path: &str, fault: Option<&str>) {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule,
    };
    let errno = match fault {
        Some("eio") => libc::EIO,
        Some("erofs") => libc::EROFS,
        other => panic!("ioerror takes eio or erofs, not {other:?}"),
    };
    let repo = Repository::<Counter, _>::new(store);
    let id = "faulty".to_owned();
    for _ in 0..5 {
        repo.execute(&id, CounterCommand::Add(1))
            .await
            .expect("a command before the fault");
    }
    // The store's files, as this process has them open: the database, its WAL and shared memory.
    let database = std::fs::canonicalize(path).expect("the database file");
    let descriptors: Vec<u64> = std::fs::read_dir("/proc/self/fd")
        .expect("the open files")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            let name = target.to_str()?;
            let ours = name.starts_with(database.to_str()?);
            ours.then(|| entry.file_name().to_str()?.parse().ok())?
        })
        .collect();
    assert!(!descriptors.is_empty(), "the store holds its files open");
    let on = |fd: u64| {
        SeccompRule::new(vec![
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, fd)
                .expect("a condition"),
        ])
        .expect("a rule")
    };
    let calls = [
        libc::SYS_write,
        libc::SYS_pwrite64,
        libc::SYS_writev,
        libc::SYS_pwritev,
        libc::SYS_pwritev2,
        libc::SYS_fsync,
        libc::SYS_fdatasync,
        libc::SYS_ftruncate,
        libc::SYS_fallocate,
    ];
    let rules = calls
        .iter()
        .map(|&call| (call, descriptors.iter().map(|&fd| on(fd)).collect()))
        .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        std::env::consts::ARCH
            .try_into()
            .expect("a seccomp architecture"),
    )
    .expect("a seccomp filter");
    let program: BpfProgram = filter.try_into().expect("a BPF program");
    seccompiler::apply_filter_all_threads(&program).expect("install the filter");

    let mut stdout = std::io::stdout();
    writeln!(stdout, "acknowledged 5").unwrap();
    for _ in 0..3 {
        match repo.execute(&id, CounterCommand::Add(1)).await {
            Ok(_) => writeln!(stdout, "acknowledged during the fault").unwrap(),
            Err(error) => writeln!(stdout, "failed {error}").unwrap(),
        }
    }
    match repo.load(&id).await {
        Ok(counter) => writeln!(stdout, "loaded {}", counter.state().total).unwrap(),
        Err(error) => writeln!(stdout, "load failed {error}").unwrap(),
    }
}
