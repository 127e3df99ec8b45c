//! Arbitrary bytes in every decoder (property tests, proptest): bus messages and their headers,
//! stored events' types, versions and payloads through the upcasters, metadata, and stored rows
//! and snapshots damaged in an SQLite file. Never a panic; always a typed error that names the
//! message's topic and header or the row's stream and sequence.
//!
//! Cases proptest finds are kept in `tests/fixtures/proptest/` and run first next time.

use bank::AccountEvent;
use cqrs_runtime::bus::{Message, headers};
use cqrs_runtime::doc_support::{Counter, CounterCommand};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_runtime::{DomainEvent, EventStore, LogPosition, Metadata, Repository, StoreError};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

fn config(cases: u32, file: &'static str) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
        ..ProptestConfig::default()
    }
}

/// The headers a relay writes, for a message to damage.
fn sent() -> Vec<(String, String)> {
    let message = Message::from_stored(
        "bank-account",
        &cqrs_runtime::StoredEvent {
            aggregate_type: "bank_account".into(),
            aggregate_id: "acc-1".into(),
            sequence: 3,
            position: LogPosition::serial(7),
            event_id: uuid::Uuid::now_v7(),
            event_type: "Deposited".into(),
            event_version: 1,
            recorded_at: chrono::Utc::now(),
            metadata: Metadata::default().with(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
            event: r#"{"cents":5}"#.into(),
        },
    );
    message
        .headers()
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect()
}

/// A header name: one a relay writes, or any string.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            headers::EVENT_ID,
            headers::EVENT_TYPE,
            headers::EVENT_VERSION,
            headers::AGGREGATE_TYPE,
            headers::AGGREGATE_ID,
            headers::SEQUENCE,
            headers::RECORDED_AT,
            headers::CORRELATION_ID,
            headers::CAUSATION_ID,
            headers::METADATA,
            headers::TRACEPARENT,
        ])
        .prop_map(str::to_owned),
        ".*",
    ]
}

proptest! {
    #![proptest_config(config(512, "fixtures/proptest/bus_messages.txt"))]

    /// Any header replaced or added, any payload bytes: a message, or an error naming the topic.
    #[test]
    fn bus_messages_decode_or_name_what_is_wrong(
        changes in prop::collection::vec((header_name(), ".*"), 0..4),
        dropped in prop::option::of(header_name()),
        payload in prop::collection::vec(any::<u8>(), 0..48),
    ) {
        let mut pairs = sent();
        for (name, value) in changes {
            pairs.retain(|(n, _)| *n != name);
            pairs.push((name, value));
        }
        if let Some(name) = dropped {
            pairs.retain(|(n, _)| *n != name);
        }
        let find = |name: &str| pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        match Message::from_headers("bank-account", find, &payload) {
            Ok(message) => {
                // What decodes, encodes back to the same message.
                let again = message.headers();
                let find = |name: &str| again.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
                prop_assert_eq!(Message::from_headers("bank-account", find, message.payload.as_bytes()).unwrap(), message);
            }
            Err(error) => {
                let said = error.to_string();
                prop_assert!(said.starts_with("malformed message on `bank-account`: "), "{}", said);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(1024, "fixtures/proptest/events.txt"))]

    /// Any type, version and payload through the bank's decoder and its upcasters: an event, or
    /// a decode error naming the type and version.
    #[test]
    fn stored_events_decode_or_name_type_and_version(
        event_type in prop_oneof![prop::sample::select(AccountEvent::EVENT_TYPES.to_vec()).prop_map(str::to_owned), ".*"],
        version in prop_oneof![0u32..4, any::<u32>()],
        payload in prop_oneof![".*", r#"\{"[a-z_]{1,8}":[0-9a-z"]{1,6}\}"#],
    ) {
        if let Err(error) = AccountEvent::decode(&event_type, version, &payload) {
            let said = error.to_string();
            prop_assert!(!said.is_empty());
            prop_assert!(said.contains(&event_type) || said.contains("unknown"), "{}", said);
        }
    }

    /// Any text as metadata: parsed, or a JSON error.
    #[test]
    fn metadata_parses_or_fails(text in ".*") {
        let _ = serde_json::from_str::<Metadata>(&text);
    }
}

/// A value for a damaged column: text, bytes, a number or NULL.
#[derive(Debug, Clone)]
enum Cell {
    Text(String),
    Bytes(Vec<u8>),
    Int(i64),
    Null,
}

fn cell() -> impl Strategy<Value = Cell> {
    prop_oneof![
        ".*".prop_map(Cell::Text),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(Cell::Bytes),
        any::<i64>().prop_map(Cell::Int),
        Just(Cell::Null),
    ]
}

fn bind<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    cell: &'q Cell,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    match cell {
        Cell::Text(text) => query.bind(text.as_str()),
        Cell::Bytes(bytes) => query.bind(bytes.as_slice()),
        Cell::Int(n) => query.bind(*n),
        Cell::Null => query.bind(None::<String>),
    }
}

proptest! {
    #![proptest_config(config(96, "fixtures/proptest/sqlite_rows.txt"))]

    /// One column of a stored event overwritten with anything (the schema's checks allowing):
    /// a load, a stream read and the log reader return the events or an error naming the row;
    /// a damaged snapshot is ignored and the stream replayed.
    #[test]
    fn damaged_rows_and_snapshots_are_named_errors_or_ignored(
        column in prop::sample::select(vec!["payload", "metadata", "event_type", "event_version", "recorded_at", "event_id", "sequence"]),
        value in cell(),
        state in cell(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("d.db");
            let store = SqliteStore::open(SqliteConfig::new(&path)).await.unwrap();
            let repo = Repository::<Counter, _>::new(store.clone());
            let id = "c".to_owned();
            for n in 1..=5 {
                repo.execute(&id, CounterCommand::Add(n)).await.unwrap();
            }
            let raw = store.projection_target().pool().clone();
            let update = format!("UPDATE cqrs_events SET {column} = ? WHERE sequence = 2");
            // The schema may refuse the value (a CHECK, NOT NULL, UNIQUE): nothing to read then.
            let _ = bind(sqlx::query(sqlx::AssertSqlSafe(update.clone())), &value).execute(&raw).await;
            let _ = bind(sqlx::query("UPDATE cqrs_snapshots SET state = ?"), &state).execute(&raw).await;

            let fresh = Repository::<Counter, _>::new(store.clone());
            let named = |error: &StoreError| {
                let said = error.to_string();
                assert!(
                    said.contains("counter `c`") || said.contains("position"),
                    "{column} = {value:?}: {said}"
                );
            };
            match fresh.load(&id).await {
                Ok(root) => assert!(root.version() <= 5),
                Err(error) => named(&error),
            }
            if let Err(error) = store.read_stream("counter", "c", 0, 10).await {
                named(&error);
            }
            if let Err(error) = store.read_all(LogPosition::START, 10).await {
                named(&error);
            }
        });
    }
}
