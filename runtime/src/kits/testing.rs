//! The backend conformance suite: checks that an [`EventStore`] keeps the store contract.
//!
//! Any backend, this crate's or a third party's, runs every check with one call:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use cqrs_runtime::InMemoryStore;
//!
//! cqrs_runtime::testing::conformance(|| async { InMemoryStore::new() }).await;
//! # }
//! ```
//!
//! Each check gets a fresh store from the factory and panics with a message naming the broken
//! rule. Checks that spawn tasks need a tokio runtime.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use crate::contract::error::{AppendError, StoreError};
use crate::contract::event::{LogPosition, Metadata, StoredEvent};
use crate::contract::store::{EventStore, EventStoreExt, NewEvent, PAGE_SIZE, Snapshot};
use crate::kits::doc_support::{Counter, CounterCommand};
use crate::repository::{Repository, RetryPolicy};

/// Runs every check, each on a fresh store from `new_store`.
pub async fn conformance<S, F, Fut>(new_store: F)
where
    S: EventStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    append_and_read_round_trip(&new_store().await).await;
    append_is_atomic(&new_store().await).await;
    stale_expected_version_conflicts(&new_store().await).await;
    streams_read_in_pages(&new_store().await).await;
    global_log_in_position_order(&new_store().await).await;
    log_of_some_aggregate_types(&new_store().await).await;
    snapshot_round_trip(&new_store().await).await;
    aggregate_folds_snapshot_and_tail(&new_store().await).await;
    repository_round_trip_with_snapshots(new_store().await).await;
    repository_ignores_unusable_snapshots(new_store().await).await;
    concurrent_writers_on_one_stream(new_store().await).await;
    command_ids_are_recorded_with_their_append(&new_store().await).await;
    a_command_id_runs_once_across_repositories(new_store().await).await;
}

/// Starts the stream `aggregate_type` / `a` with `n` events, which must succeed.
async fn seed<S: EventStore>(store: &S, aggregate_type: &str, n: u64) {
    let appended = store.append(aggregate_type, "a", 0, &events(1..=n)).await;
    appended.unwrap_or_else(|e| panic!("seeding {aggregate_type} `a` with {n} events: {e}"));
}

/// New events numbered `numbers` (see [`new_event`]).
fn events(numbers: std::ops::RangeInclusive<u64>) -> Vec<NewEvent> {
    numbers.map(new_event).collect()
}

/// A new event with recognisable content.
pub fn new_event(n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "Added",
        event_version: 1,
        payload: n.to_string(),
        metadata: Metadata::default(),
        recorded_at: now(),
    }
}

/// Reads the global log after `after` until it holds `expected` events (or more), for at most
/// 30 s, and returns what it read.
///
/// An event becomes readable once its own transaction and every older one have finished: at
/// once in stores that commit one writer at a time, a moment later in PostgreSQL while other
/// transactions on the server are still running. Checks wait for that instead of racing it.
pub async fn read_log_until<S: EventStore>(
    store: &S,
    after: LogPosition,
    expected: usize,
) -> Vec<StoredEvent> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        use futures::TryStreamExt;
        let log: Vec<StoredEvent> = store.log_events(after).try_collect().await.unwrap();
        if log.len() >= expected || std::time::Instant::now() >= deadline {
            return log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Now, at the microsecond precision every store must keep.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn assert_same(stored: &StoredEvent, new: &NewEvent, context: &str) {
    assert_eq!(stored.event_id, new.event_id, "{context}: event id");
    assert_eq!(stored.event_type, new.event_type, "{context}: event type");
    assert_eq!(
        stored.event_version, new.event_version,
        "{context}: event version"
    );
    // The same JSON, not necessarily the same bytes: a store may keep JSON in a normalized form.
    let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
    assert!(
        json(&stored.event).is_some() && json(&stored.event) == json(&new.payload),
        "{context}: payload {:?} does not read back as the JSON {:?}",
        stored.event,
        new.payload
    );
    assert_eq!(stored.metadata, new.metadata, "{context}: metadata");
    assert_eq!(
        stored.recorded_at, new.recorded_at,
        "{context}: recorded_at (stores keep microseconds)"
    );
}

/// Appended events read back exactly as written, with sequences 1, 2, 3.
pub async fn append_and_read_round_trip<S: EventStore>(store: &S) {
    let mut first = new_event(1);
    first.metadata = Metadata::correlated(Uuid::now_v7())
        .caused_by(Uuid::now_v7())
        .with("user", "ada")
        .with("tenant", "t-1");
    let mut object = new_event(2);
    object.payload =
        r#"{"name":"Ada \u00e9\n","nested":{"list":[1,2.5,null,true]},"big":9007199254740993}"#
            .into();
    let events = vec![first, object, new_event(3)];
    let positions = store
        .append("conf_rt", "a-1", 0, &events)
        .await
        .expect("round trip: appending to a new stream at expected version 0 must succeed");
    assert_eq!(
        positions.len(),
        3,
        "round trip: append returns one position per event"
    );
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "round trip: positions of one append increase: {positions:?}"
    );
    let read = store.read_stream("conf_rt", "a-1", 0, 100).await.unwrap();
    assert_eq!(
        read.len(),
        3,
        "round trip: every appended event is read back"
    );
    for (i, (stored, new)) in read.iter().zip(&events).enumerate() {
        assert_eq!(
            stored.sequence,
            i as u64 + 1,
            "round trip: sequences start at 1"
        );
        assert_eq!(stored.position, positions[i], "round trip: position");
        assert_eq!(stored.aggregate_type, "conf_rt");
        assert_eq!(stored.aggregate_id, "a-1");
        assert_same(stored, new, "round trip");
    }
    for (aggregate_type, id, rule) in [
        ("conf_rt", "other", "another id's stream is empty"),
        (
            "other_type",
            "a-1",
            "the same id under another aggregate type is another stream",
        ),
    ] {
        let stream = store.read_stream(aggregate_type, id, 0, 100).await.unwrap();
        assert!(stream.is_empty(), "round trip: {rule}");
    }
}

/// A multi-event append is all or nothing, and a rejected one leaves no trace.
pub async fn append_is_atomic<S: EventStore>(store: &S) {
    seed(store, "conf_atomic", 2).await;
    let rejected = store.append("conf_atomic", "a", 1, &events(3..=5)).await;
    assert!(
        matches!(rejected, Err(AppendError::Conflict(_))),
        "atomic: an append at a stale version is a conflict, got {rejected:?}"
    );
    let stream = store.read_stream("conf_atomic", "a", 0, 100).await.unwrap();
    assert_eq!(
        stream.len(),
        2,
        "atomic: a rejected append writes none of its events"
    );
    let log = store.read_all(LogPosition::START, 100).await.unwrap();
    assert_eq!(
        log.len(),
        2,
        "atomic: the global log holds no rejected event"
    );
    store
        .append("conf_atomic", "a", 2, &events(3..=5))
        .await
        .expect("atomic: the same append at the right version succeeds");
    let sequences: Vec<u64> = store
        .read_stream("conf_atomic", "a", 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(
        sequences,
        [1, 2, 3, 4, 5],
        "atomic: sequences stay contiguous"
    );
}

/// The conflict carries the expected and the actual version.
pub async fn stale_expected_version_conflicts<S: EventStore>(store: &S) {
    seed(store, "conf_conflict", 3).await;
    for expected in [0, 1, 2, 4, 9] {
        match store
            .append("conf_conflict", "a", expected, &[new_event(9)])
            .await
        {
            Err(AppendError::Conflict(conflict)) => {
                assert_eq!(conflict.expected, expected, "conflict: expected version");
                assert_eq!(conflict.actual, 3, "conflict: actual version");
                assert_eq!(conflict.aggregate_type, "conf_conflict");
                assert_eq!(conflict.aggregate_id, "a");
            }
            other => {
                panic!("conflict: expected version {expected} of 3 must conflict, got {other:?}")
            }
        }
    }
    let fresh = store
        .append("conf_conflict", "fresh", 1, &[new_event(1)])
        .await;
    assert!(
        matches!(fresh, Err(AppendError::Conflict(ref c)) if c.actual == 0),
        "conflict: expecting version 1 of a new stream conflicts with actual 0, got {fresh:?}"
    );
}

/// `read_stream` honours `after` and `limit`, and the streaming reader pages through.
pub async fn streams_read_in_pages<S: EventStore>(store: &S) {
    let total = PAGE_SIZE as u64 + 40;
    let mut version = 0;
    while version < total {
        let batch: Vec<_> = (version..(version + 100).min(total))
            .map(new_event)
            .collect();
        store
            .append("conf_pages", "long", version, &batch)
            .await
            .unwrap();
        version += batch.len() as u64;
    }
    let middle = store
        .read_stream("conf_pages", "long", 10, 5)
        .await
        .unwrap();
    let sequences: Vec<u64> = middle.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [11, 12, 13, 14, 15], "pages: after 10, limit 5");
    let tail = store
        .read_stream("conf_pages", "long", total - 2, 100)
        .await
        .unwrap();
    assert_eq!(tail.len(), 2, "pages: the last page is short");
    assert!(
        store
            .read_stream("conf_pages", "long", total, 100)
            .await
            .unwrap()
            .is_empty(),
        "pages: nothing after the last event"
    );
    use futures::TryStreamExt;
    let all: Vec<StoredEvent> = store
        .stream_events("conf_pages", "long", 0)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len() as u64, total, "pages: streaming reads every page");
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, e)| e.sequence == i as u64 + 1),
        "pages: streamed sequences are contiguous"
    );
}

/// The global log returns every event once, in increasing position order, in pages.
pub async fn global_log_in_position_order<S: EventStore>(store: &S) {
    assert_eq!(
        store.head().await.unwrap(),
        0,
        "head: 0 while the log is empty"
    );
    let mut expected_ids = Vec::new();
    let mut versions = BTreeMap::new();
    for round in 0..5u64 {
        for stream in ["a", "b", "c"] {
            let version = versions.entry(stream).or_insert(0u64);
            let batch = vec![new_event(round), new_event(round + 100)];
            expected_ids.extend(batch.iter().map(|e| e.event_id));
            store
                .append("conf_log", stream, *version, &batch)
                .await
                .unwrap();
            *version += 2;
        }
    }
    let log = read_log_until(store, LogPosition::START, expected_ids.len()).await;
    let ids: Vec<Uuid> = log.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, expected_ids, "log: every event once, in commit order");
    assert!(
        log.windows(2).all(|w| w[0].position < w[1].position),
        "log: positions strictly increase"
    );
    let after = log[6].position;
    let page = store.read_all(after, 4).await.unwrap();
    let page_ids: Vec<Uuid> = page.iter().map(|e| e.event_id).collect();
    assert_eq!(page_ids, ids[7..11], "log: after a position, limited");
    let last = log.last().unwrap().position;
    assert!(
        store.read_all(last, 10).await.unwrap().is_empty(),
        "log: nothing after the last position"
    );
    assert_eq!(
        store.count_events().await.unwrap(),
        expected_ids.len() as u64,
        "count_events: every event of the log"
    );
    assert_eq!(
        store.head().await.unwrap(),
        last.event,
        "head: the number of the newest event"
    );
    use futures::TryStreamExt;
    let streamed: Vec<StoredEvent> = store
        .log_events(LogPosition::START)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        streamed.len(),
        log.len(),
        "log: the streaming reader reads it all"
    );
}

/// The log of some aggregate types is the log without the others, in the same order, pages
/// included.
pub async fn log_of_some_aggregate_types<S: EventStore>(store: &S) {
    let types = ["conf_of_a", "conf_of_b", "conf_of_c"];
    for round in 0..4u64 {
        for aggregate_type in types {
            let batch = [new_event(round), new_event(round + 100)];
            store
                .append(aggregate_type, "x", round * 2, &batch)
                .await
                .unwrap_or_else(|e| panic!("appending to {aggregate_type}: {e}"));
        }
    }
    let log = read_log_until(store, LogPosition::START, 24).await;
    let of = |wanted: &[&str]| -> Vec<Uuid> {
        log.iter()
            .filter(|e| wanted.contains(&e.aggregate_type.as_str()))
            .map(|e| e.event_id)
            .collect()
    };
    let ids = |events: &[StoredEvent]| events.iter().map(|e| e.event_id).collect::<Vec<_>>();
    for wanted in [
        &types[..1],
        &types[1..2],
        &[types[0], types[2]][..],
        &types[..],
    ] {
        let read = store
            .read_all_of(wanted, LogPosition::START, 100)
            .await
            .unwrap();
        assert_eq!(
            ids(&read),
            of(wanted),
            "read_all_of({wanted:?}): its events, in log order"
        );
        let (mut paged, mut after) = (Vec::new(), LogPosition::START);
        loop {
            let page = store.read_all_of(wanted, after, 3).await.unwrap();
            assert!(
                page.len() <= 3,
                "read_all_of({wanted:?}): at most the limit"
            );
            paged.extend(ids(&page));
            match page.last() {
                Some(last) if page.len() == 3 => after = last.position,
                _ => break,
            }
        }
        assert_eq!(
            paged,
            of(wanted),
            "read_all_of({wanted:?}) in pages of 3: every event once"
        );
    }
    let middle = log[10].position;
    let read = store.read_all_of(&types[..1], middle, 100).await.unwrap();
    let expected: Vec<Uuid> = log[11..]
        .iter()
        .filter(|e| e.aggregate_type == types[0])
        .map(|e| e.event_id)
        .collect();
    assert_eq!(ids(&read), expected, "read_all_of: after a position");
    assert!(
        store
            .read_all_of(&[], LogPosition::START, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .read_all_of(&["conf_of_nobody"], LogPosition::START, 10)
            .await
            .unwrap()
            .is_empty(),
        "read_all_of: a type with no events reads nothing"
    );
}

/// A snapshot reads back as written; a newer one replaces it.
pub async fn snapshot_round_trip<S: EventStore>(store: &S) {
    let load = async |id: &str| store.load_snapshot("conf_snap", id).await.unwrap();
    assert_eq!(
        load("a").await,
        None,
        "snapshot: none before the first save"
    );
    let first = Snapshot {
        aggregate_type: "conf_snap".into(),
        aggregate_id: "a".into(),
        version: 4,
        fingerprint: u64::MAX - 7,
        state: r#"{"total":4}"#.into(),
    };
    store.save_snapshot(&first).await.unwrap();
    assert_eq!(
        load("a").await.as_ref(),
        Some(&first),
        "snapshot: round trip (fingerprints use all 64 bits)"
    );
    let newer = Snapshot {
        version: 8,
        state: r#"{"total":8}"#.into(),
        ..first.clone()
    };
    store.save_snapshot(&newer).await.unwrap();
    assert_eq!(
        load("a").await.as_ref(),
        Some(&newer),
        "snapshot: a newer snapshot replaces the older"
    );
    assert_eq!(load("b").await, None, "snapshot: per aggregate");
}

/// `fold_aggregate` hands over the snapshot, then the events from the snapshot's own on when
/// its fingerprint is the one asked for, and every event otherwise.
pub async fn aggregate_folds_snapshot_and_tail<S: EventStore>(store: &S) {
    seed(store, "conf_agg", 6).await;
    let fold = async |id: &str, fingerprint: Option<u64>| {
        store
            .fold_aggregate(
                "conf_agg",
                id,
                fingerprint,
                |snapshot| (snapshot, Vec::new()),
                |(_, lent): &mut (Option<Snapshot>, Vec<(u64, String)>), event| {
                    lent.push((event.sequence, event.event.to_owned()));
                    Ok(())
                },
            )
            .await
            .unwrap()
    };
    let sequences = |lent: &[(u64, String)]| lent.iter().map(|(s, _)| *s).collect::<Vec<_>>();
    let (snapshot, lent) = fold("a", Some(42)).await;
    assert_eq!(snapshot, None, "fold_aggregate: no snapshot stored yet");
    assert_eq!(
        sequences(&lent),
        [1, 2, 3, 4, 5, 6],
        "fold_aggregate: the whole stream"
    );
    assert_eq!(
        lent[2].1,
        events(3..=3)[0].payload,
        "fold_aggregate: the stored payloads"
    );

    let stored = Snapshot {
        aggregate_type: "conf_agg".into(),
        aggregate_id: "a".into(),
        version: 4,
        fingerprint: 42,
        state: r#"{"total":4}"#.into(),
    };
    store.save_snapshot(&stored).await.unwrap();
    let (snapshot, lent) = fold("a", Some(42)).await;
    assert_eq!(
        snapshot.as_ref(),
        Some(&stored),
        "fold_aggregate: the snapshot"
    );
    assert_eq!(
        sequences(&lent),
        [4, 5, 6],
        "fold_aggregate: the events from the snapshot's own on"
    );
    let (snapshot, lent) = fold("a", Some(43)).await;
    assert_eq!(
        snapshot.as_ref(),
        Some(&stored),
        "fold_aggregate: a snapshot of another fingerprint is still handed over"
    );
    assert_eq!(
        sequences(&lent),
        [1, 2, 3, 4, 5, 6],
        "fold_aggregate: every event after a snapshot of another fingerprint"
    );
    let (snapshot, lent) = fold("a", None).await;
    assert_eq!(
        snapshot, None,
        "fold_aggregate: no snapshot read without a fingerprint"
    );
    assert_eq!(sequences(&lent), [1, 2, 3, 4, 5, 6]);
    let (snapshot, lent) = fold("b", Some(42)).await;
    assert_eq!(
        (snapshot, lent),
        (None, Vec::new()),
        "fold_aggregate: an unknown stream"
    );
}

/// Commands through a repository: state reloads the same with and without snapshots.
pub async fn repository_round_trip_with_snapshots<S: EventStore>(store: S) {
    let repo = Repository::<Counter, _>::new(store);
    let id = "repo-1".to_owned();
    for n in 1..=10 {
        repo.execute(&id, CounterCommand::Add(n)).await.unwrap();
    }
    repo.execute(&id, CounterCommand::Subtract(5))
        .await
        .unwrap();
    let root = repo.load(&id).await.unwrap();
    assert_eq!(
        root.version(),
        11,
        "repository: version is the last sequence"
    );
    assert_eq!(
        root.state().total,
        50,
        "repository: state replays to the same total"
    );
    let snapshot = repo
        .store()
        .load_snapshot("counter", "repo-1")
        .await
        .unwrap()
        .expect("repository: a snapshot is taken every 4 events");
    assert_eq!(snapshot.version, 8, "repository: the newest due snapshot");
    let missing = repo.load(&"never".to_owned()).await.unwrap();
    assert!(
        !missing.exists(),
        "repository: an unknown id loads as not existing"
    );
    assert_eq!(missing.version(), 0);
}

/// A load falls back to replaying the whole stream when the stored snapshot is of another
/// shape, does not decode, or is ahead of its stream; a good one is used.
pub async fn repository_ignores_unusable_snapshots<S: EventStore>(store: S) {
    let repo = Repository::<Counter, _>::new(store).no_cache();
    let id = "unusable".to_owned();
    for n in 1..=5 {
        repo.execute(&id, CounterCommand::Add(n)).await.unwrap();
    }
    let fingerprint =
        <Counter as crate::Aggregate>::snapshots().map_or(0, |codec| codec.fingerprint);
    // The counter snapshots every 4 events; a stored snapshot is replaced by one of the same
    // version or newer.
    let cases = [
        (fingerprint ^ 1, 5, r#"{"total":1000}"#, "of another shape"),
        (
            fingerprint,
            5,
            r#"{"total":"many"}"#,
            "that does not decode",
        ),
        (fingerprint, 9, r#"{"total":1000}"#, "ahead of its stream"),
    ];
    for (fingerprint, version, state, what) in cases {
        let forged = Snapshot {
            aggregate_type: "counter".into(),
            aggregate_id: id.clone(),
            version,
            fingerprint,
            state: state.into(),
        };
        repo.store().save_snapshot(&forged).await.unwrap();
        let root = repo.load(&id).await.unwrap();
        assert_eq!(
            (root.version(), root.state().total),
            (5, 15),
            "repository: a snapshot {what} is ignored and the stream replayed"
        );
    }
    // A usable one is used: the stream's first 4 events (1 + 2 + 3 + 4) are read as 1000.
    let usable = "usable".to_owned();
    for n in 1..=5 {
        repo.execute(&usable, CounterCommand::Add(n)).await.unwrap();
    }
    let forged = Snapshot {
        aggregate_type: "counter".into(),
        aggregate_id: usable.clone(),
        version: 4,
        fingerprint,
        state: r#"{"total":1000}"#.into(),
    };
    repo.store().save_snapshot(&forged).await.unwrap();
    let root = repo.load(&usable).await.unwrap();
    assert_eq!(
        (root.version(), root.state().total),
        (5, 1005),
        "repository: a usable snapshot is restored and its tail applied"
    );
}

/// New events carrying command id `key`.
fn keyed(numbers: std::ops::RangeInclusive<u64>, key: &str) -> Vec<NewEvent> {
    numbers
        .map(|n| new_event(n).with_metadata(Metadata::default().command_id(key)))
        .collect()
}

/// An append whose events carry a command id records it with the append's sequences; the same
/// id on the same stream is refused with nothing written, on another stream it is another
/// command; an append that conflicts records nothing.
pub async fn command_ids_are_recorded_with_their_append<S: EventStore>(store: &S) {
    let kind = "conf_commands";
    assert_eq!(
        store.find_command(kind, "a", "k1").await.unwrap(),
        None,
        "command ids: nothing recorded yet"
    );
    store
        .append(kind, "a", 0, &keyed(1..=2, "k1"))
        .await
        .expect("command ids: a first append with an id");
    let record = store
        .find_command(kind, "a", "k1")
        .await
        .unwrap()
        .expect("command ids: the append recorded its id");
    assert_eq!(
        (record.first_sequence, record.last_sequence),
        (1, 2),
        "command ids: the record names the append's sequences"
    );
    assert_eq!(
        (
            &*record.aggregate_type,
            &*record.aggregate_id,
            &*record.command_id
        ),
        (kind, "a", "k1")
    );
    match store.append(kind, "a", 2, &keyed(3..=3, "k1")).await {
        Err(AppendError::Store(StoreError::DuplicateCommand(first))) => assert_eq!(
            *first, record,
            "command ids: the refusal carries the first record"
        ),
        other => panic!("command ids: the same id again must be refused, got {other:?}"),
    }
    assert_eq!(
        store.read_stream(kind, "a", 0, 10).await.unwrap().len(),
        2,
        "command ids: a refused duplicate writes nothing"
    );
    store
        .append(kind, "b", 0, &keyed(1..=1, "k1"))
        .await
        .expect("command ids: an id is per stream");
    let stale = store.append(kind, "a", 1, &keyed(3..=3, "k2")).await;
    assert!(
        matches!(stale, Err(AppendError::Conflict(_))),
        "command ids: a stale append with a new id conflicts, got {stale:?}"
    );
    assert_eq!(
        store.find_command(kind, "a", "k2").await.unwrap(),
        None,
        "command ids: a conflicting append records no id"
    );
    store
        .append(kind, "a", 2, &events(3..=3))
        .await
        .expect("command ids: appends without an id go on");
    store
        .append(kind, "a", 3, &keyed(4..=4, "k2"))
        .await
        .expect("command ids: the id refused with a conflict is free");
}

/// Eight repositories (as eight processes would) send the same command with the same id at
/// once: it is applied once, and every caller gets the events of that one run.
pub async fn a_command_id_runs_once_across_repositories<S: EventStore>(store: S) {
    let store = Arc::new(store);
    let id = "once".to_owned();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let repo = Repository::<Counter, _>::new(Arc::clone(&store)).no_cache();
            let id = id.clone();
            tokio::spawn(async move {
                let metadata = Metadata::default().command_id("add-5");
                repo.execute_with(&id, CounterCommand::Add(5), metadata)
                    .await
                    .expect("command ids: every caller gets an answer")
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("command ids: a caller panicked"));
    }
    let repo = Repository::<Counter, _>::new(Arc::clone(&store));
    assert_eq!(
        repo.load(&id).await.unwrap().state().total,
        5,
        "command ids: the command was applied once"
    );
    let stored = store.read_stream("counter", &id, 0, 10).await.unwrap();
    assert_eq!(stored.len(), 1, "command ids: one event stored");
    assert_eq!(
        answers.iter().filter(|a| !a.duplicate).count(),
        1,
        "command ids: one run, the others answered as duplicates"
    );
    for answer in &answers {
        let ids: Vec<Uuid> = answer.events.iter().map(|e| e.event_id).collect();
        assert_eq!(
            ids,
            [stored[0].event_id],
            "command ids: every caller gets the first run's events"
        );
    }
    let refused = repo
        .execute_with(
            &id,
            CounterCommand::Subtract(100),
            Metadata::default().command_id("too-much"),
        )
        .await;
    assert!(refused.is_err(), "command ids: the refusal is returned");
    assert_eq!(
        store
            .find_command("counter", &id, "too-much")
            .await
            .unwrap(),
        None,
        "command ids: a refused command records nothing (it changed nothing)"
    );
}

/// For a store configured to keep command ids for `retention` (short): an id older than that
/// is forgotten, and the command sent again with it runs again. Not part of
/// [`conformance`]: the retention is the store's own configuration.
pub async fn command_ids_expire<S: EventStore>(store: S, retention: std::time::Duration) {
    let repo = Repository::<Counter, _>::new(store);
    let id = "expiring".to_owned();
    let once = || Metadata::default().command_id("add-1");
    let first = repo.execute_with(&id, CounterCommand::Add(1), once()).await;
    let again = repo.execute_with(&id, CounterCommand::Add(1), once()).await;
    assert!(
        !first.expect("retention: a first run").duplicate && again.expect("retention").duplicate,
        "retention: within the retention the id is a duplicate"
    );
    tokio::time::sleep(retention * 3).await;
    assert_eq!(
        repo.store()
            .find_command("counter", &id, "add-1")
            .await
            .unwrap(),
        None,
        "retention: an id older than the retention is forgotten"
    );
    let late = repo
        .execute_with(&id, CounterCommand::Add(1), once())
        .await
        .expect("retention: the command runs again");
    assert!(!late.duplicate, "retention: a forgotten id runs again");
    assert_eq!(late.root.state().total, 2);
}

/// Sixteen tasks add to one counter concurrently, retrying on conflicts: every add lands once,
/// sequences are 1..N with no gap or duplicate.
pub async fn concurrent_writers_on_one_stream<S: EventStore>(store: S) {
    const WRITERS: u64 = 16;
    const COMMANDS: u64 = 8;
    let repo = Repository::<Counter, _>::new(Arc::new(store))
        .retry(RetryPolicy::attempts(WRITERS as u32 * 8));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let repo = repo.clone();
            tokio::spawn(async move {
                for _ in 0..COMMANDS {
                    repo.execute(&"contended".to_owned(), CounterCommand::Add(writer + 1))
                        .await
                        .expect("concurrency: retries resolve every conflict");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("concurrency: a writer task panicked");
    }
    let events = repo
        .store()
        .read_stream("counter", "contended", 0, 10_000)
        .await
        .unwrap();
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    let expected: Vec<u64> = (1..=WRITERS * COMMANDS).collect();
    assert_eq!(
        sequences, expected,
        "concurrency: sequences 1..N, no gap or duplicate"
    );
    let root = repo.load(&"contended".to_owned()).await.unwrap();
    let want: u64 = (1..=WRITERS).map(|w| w * COMMANDS).sum();
    assert_eq!(
        root.state().total,
        want,
        "concurrency: every add applied exactly once"
    );
}
