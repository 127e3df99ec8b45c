//! The child process of the projection crash test: runs the ledger projection into its store's
//! database, a few events per transaction, until killed.
//!
//! - `projection_runner sqlite <file> <owner uuid>`
//! - `projection_runner postgres <url> <schema> <owner uuid>`

use std::time::Duration;

use cqrs_runtime::Projector;
use cqrs_runtime::postgres::{PostgresConfig, PostgresStore};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_tests::{PgLedger, SqliteLedger};
use uuid::Uuid;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let forever = std::future::pending::<()>();
    match &args[1..] {
        [kind, path, owner] if kind == "sqlite" => {
            let store = SqliteStore::open(SqliteConfig::new(path))
                .await
                .expect("open the store");
            let target = store.projection_target();
            let mut runner = Projector::new(store, target, SqliteLedger::default())
                .batch_size(5)
                .owner(owner.parse::<Uuid>().expect("an owner uuid"))
                .poll_interval(Duration::from_millis(20));
            runner.run(forever).await.expect("run the ledger");
        }
        [kind, url, schema, owner] if kind == "postgres" => {
            let config = PostgresConfig::new(url).schema(schema);
            let store = PostgresStore::connect(config).await.expect("connect");
            let target = store.projection_target();
            let mut runner = Projector::new(store, target, PgLedger::new(schema))
                .batch_size(5)
                .owner(owner.parse::<Uuid>().expect("an owner uuid"))
                .poll_interval(Duration::from_millis(20));
            runner.run(forever).await.expect("run the ledger");
        }
        _ => {
            eprintln!(
                "usage: projection_runner sqlite <file> <owner> | postgres <url> <schema> <owner>"
            );
            std::process::exit(2);
        }
    }
}
