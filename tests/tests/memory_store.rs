//! The in-memory store passes the backend conformance suite.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_store_conforms() {
    cqrs_runtime::testing::conformance(|| async { cqrs_runtime::InMemoryStore::new() }).await;
}

/// A store that ignores the expected version: the suite must catch it.
#[derive(Debug, Default)]
struct NoConcurrencyCheck(cqrs_runtime::InMemoryStore);

impl cqrs_runtime::EventStore for NoConcurrencyCheck {
    async fn append(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        _expected_version: u64,
        events: &[cqrs_runtime::NewEvent],
    ) -> Result<Vec<cqrs_runtime::LogPosition>, cqrs_runtime::AppendError> {
        let current = self
            .0
            .read_stream(aggregate_type, aggregate_id, 0, usize::MAX)
            .await?
            .len() as u64;
        self.0
            .append(aggregate_type, aggregate_id, current, events)
            .await
    }

    fn read_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: usize,
    ) -> impl std::future::Future<
        Output = Result<Vec<cqrs_runtime::StoredEvent>, cqrs_runtime::StoreError>,
    > + Send {
        self.0
            .read_stream(aggregate_type, aggregate_id, after, limit)
    }

    fn read_all(
        &self,
        after: cqrs_runtime::LogPosition,
        limit: usize,
    ) -> impl std::future::Future<
        Output = Result<Vec<cqrs_runtime::StoredEvent>, cqrs_runtime::StoreError>,
    > + Send {
        self.0.read_all(after, limit)
    }

    fn count_events(
        &self,
    ) -> impl std::future::Future<Output = Result<u64, cqrs_runtime::StoreError>> + Send {
        self.0.count_events()
    }

    fn head(
        &self,
    ) -> impl std::future::Future<Output = Result<u64, cqrs_runtime::StoreError>> + Send {
        self.0.head()
    }

    fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> impl std::future::Future<
        Output = Result<Option<cqrs_runtime::Snapshot>, cqrs_runtime::StoreError>,
    > + Send {
        self.0.load_snapshot(aggregate_type, aggregate_id)
    }

    fn save_snapshot(
        &self,
        snapshot: &cqrs_runtime::Snapshot,
    ) -> impl std::future::Future<Output = Result<(), cqrs_runtime::StoreError>> + Send {
        self.0.save_snapshot(snapshot)
    }

    fn find_command(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        command_id: &str,
    ) -> impl std::future::Future<
        Output = Result<Option<cqrs_runtime::CommandRecord>, cqrs_runtime::StoreError>,
    > + Send {
        self.0
            .find_command(aggregate_type, aggregate_id, command_id)
    }
}

#[tokio::test]
#[should_panic(expected = "atomic: an append at a stale version is a conflict")]
async fn the_suite_rejects_a_store_without_concurrency_control() {
    cqrs_runtime::testing::conformance(|| async { NoConcurrencyCheck::default() }).await;
}

#[tokio::test]
async fn command_ids_expire_after_the_retention() {
    let retention = std::time::Duration::from_millis(50);
    let store = cqrs_runtime::InMemoryStore::new().command_retention(retention);
    cqrs_runtime::testing::command_ids_expire(store, retention).await;
}
