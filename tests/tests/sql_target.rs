//! The one SQL target behaves alike on SQLite and PostgreSQL where the stored rows are wrong:
//! a negative checkpoint, a negative or oversized active version, a dead letter with negative
//! attempts, and a projection version too large to store are the same typed errors on both.
//!
//! The PostgreSQL half needs `DATABASE_URL` (`bash scripts/test.sh` starts a server); without
//! it, it says it was skipped, and with `CI` set it fails instead.

use std::future::Future;

use cqrs_runtime::StoreError;
use cqrs_runtime::postgres::{PostgresConfig, PostgresStore};
use cqrs_runtime::projection::{Checkpoints, DeadLetters, FollowerId, ProjectionId, Versions};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};

const PROJECTION: ProjectionId = ProjectionId {
    name: "tallies",
    version: 3,
};

/// Runs each corruption through `corrupt` (raw SQL on the target's database), then reads it
/// back through `target`, expecting the typed error.
async fn bad_rows_are_corrupt<T, F, Fut>(target: T, corrupt: F)
where
    T: Checkpoints + DeadLetters + Versions,
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = ()>,
{
    corrupt("checkpoint").await;
    match target.checkpoint(PROJECTION).await {
        Err(StoreError::Corrupt(message)) => {
            assert!(message.contains("tallies"), "names the follower: {message}");
            assert!(
                message.contains("negative"),
                "says what is wrong: {message}"
            );
        }
        other => panic!("a negative checkpoint must be Corrupt, got {other:?}"),
    }

    corrupt("active").await;
    match target.active_version("tallies").await {
        Err(StoreError::Corrupt(message)) => {
            assert!(message.contains("-2"), "names the value: {message}")
        }
        other => panic!("a negative active version must be Corrupt, got {other:?}"),
    }

    corrupt("attempts").await;
    match target.parked(PROJECTION).await {
        Err(StoreError::Corrupt(message)) => {
            assert!(message.contains("attempts"), "names the column: {message}")
        }
        other => panic!("negative attempts must be Corrupt, got {other:?}"),
    }

    let huge = ProjectionId {
        name: "tallies",
        version: u32::MAX,
    };
    match target.checkpoint(FollowerId::Projection(huge)).await {
        Err(StoreError::Config(message)) => {
            assert!(
                message.contains("4294967295"),
                "names the version: {message}"
            )
        }
        other => panic!("a version above i32::MAX must be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn sqlite_target_refuses_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("t.db")))
        .await
        .unwrap();
    let target = store.projection_target();
    let pool = target.pool().clone();
    bad_rows_are_corrupt(target, |what| {
        let pool = pool.clone();
        async move {
            let sql = match what {
                "checkpoint" => "INSERT INTO cqrs_projection_checkpoints VALUES ('tallies', 3, 0, -5, 0)",
                "active" => "INSERT INTO cqrs_projection_versions VALUES ('tallies', -2)",
                _ => "INSERT INTO cqrs_projection_dead_letters VALUES ('tallies', 3, x'00000000000000000000000000000001', 0, 1, 'a', 'a-1', 1, 'Added', 1, '{}', '{}', 0, 'boom', -1, 0)",
            };
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn postgres_target_refuses_bad_rows() {
    let Some(url) = cqrs_tests::database_url("PostgreSQL target tests") else {
        return;
    };
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    let store = PostgresStore::connect(PostgresConfig::new(&url).schema(&schema))
        .await
        .unwrap();
    let target = store.projection_target();
    let pool = target.pool().clone();
    bad_rows_are_corrupt(target, |what| {
        let (pool, schema) = (pool.clone(), schema.clone());
        async move {
            let sql = match what {
                "checkpoint" => format!("INSERT INTO {schema}.cqrs_projection_checkpoints (projection, version, txn, position) VALUES ('tallies', 3, 0, -5)"),
                "active" => format!("INSERT INTO {schema}.cqrs_projection_versions VALUES ('tallies', -2)"),
                _ => format!("INSERT INTO {schema}.cqrs_projection_dead_letters VALUES ('tallies', 3, '00000000-0000-0000-0000-000000000001', 0, 1, 'a', 'a-1', 1, 'Added', 1, '{{}}', '{{}}', now(), 'boom', -1, now())"),
            };
            sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(&pool).await.unwrap();
        }
    })
    .await;
}
