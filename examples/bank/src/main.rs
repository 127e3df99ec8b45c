//! The README demo: the bank domain on an SQLite file.
//!
//! `bank [FILE]` (default `bank-demo.db` in the current directory) runs a few commands, prints
//! the recorded events and the state, writes rows the way release 1 of the bank code stored
//! them and reads them back through the upcast chain. Run it twice: the second run reloads the
//! accounts from the file instead of creating them.

use bank::{
    ACCOUNT_TYPE, Account, AccountCommand, AccountEvent, CloseAccount, Deposit, OpenAccount,
    Withdraw,
};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_runtime::{
    AggregateRoot, CommandError, EventStore, EventStoreExt, Metadata, NewEvent, Repository,
};
use futures::TryStreamExt;

type Error = Box<dyn std::error::Error>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bank-demo.db".to_owned());
    let store = SqliteStore::open(SqliteConfig::new(&path)).await?;
    let repo = Repository::<Account, _>::new(store.clone());
    println!("event store: {path} (SQLite)\n");

    let id = "acc-ada".to_owned();
    let before = repo.load(&id).await?;
    if before.exists() {
        println!("== {id} reloaded from disk at version {}", before.version());
        show(&before);
    } else {
        println!("== {id} is new: opening it");
        let open = OpenAccount {
            owner: "Ada".into(),
            currency: "EUR".into(),
        };
        run(&repo, &id, open.into()).await?;
    }
    for command in [
        Deposit { cents: 10_000 }.into(),
        Withdraw { cents: 2_500 }.into(),
        Withdraw { cents: 1_000_000 }.into(),
        CloseAccount {}.into(),
    ] {
        run(&repo, &id, command).await?;
    }
    show(&repo.load(&id).await?);

    legacy_rows(&store, &repo).await
}

/// Runs one command and prints what it recorded, or why it was refused.
async fn run(
    repo: &Repository<Account, SqliteStore>,
    id: &String,
    command: AccountCommand,
) -> Result<(), Error> {
    println!("> {command:?}");
    match repo.execute(id, command).await {
        Ok(done) => {
            for e in &done.events {
                println!(
                    "  recorded #{} {} v{}: {:?}",
                    e.sequence, e.event_type, e.event_version, e.event
                );
            }
            Ok(())
        }
        Err(CommandError::Rejected(why)) => {
            println!("  refused: {why}");
            Ok(())
        }
        Err(other) => Err(other.into()),
    }
}

fn show(account: &AggregateRoot<Account>) {
    let state = account.state();
    println!(
        "  state at version {}: owner {}, balance {}.{:02} {}, closed: {}\n",
        account.version(),
        state.owner,
        state.balance / 100,
        state.balance % 100,
        state.currency,
        state.closed
    );
}

/// Rows as release 1 of the bank code stored them, read back by today's code.
async fn legacy_rows(
    store: &SqliteStore,
    repo: &Repository<Account, SqliteStore>,
) -> Result<(), Error> {
    let id = "acc-grace";
    if !repo.load(&id.to_owned()).await?.exists() {
        let row = |event_type, event_version, payload: &str| NewEvent {
            event_id: uuid::Uuid::now_v7(),
            event_type,
            event_version,
            payload: payload.to_owned(),
            metadata: Metadata::default(),
            recorded_at: chrono::Utc::now(),
        };
        let old = [
            row("Opened", 1, r#"{"owner":"Grace","currency":"EUR"}"#),
            row("Deposited", 1, r#"{"euros":42}"#),
            row("Withdrawn", 1, r#"{"sum":250}"#),
        ];
        store.append(ACCOUNT_TYPE, id, 0, &old).await?;
        println!("== {id}: wrote 3 rows the way release 1 of the bank code stored them");
    } else {
        println!("== {id}: rows from release 1 are already on disk");
    }
    let mut rows = store.stream_events(ACCOUNT_TYPE, id, 0);
    while let Some(stored) = rows.try_next().await? {
        let raw = format!(
            "{} v{} {}",
            stored.event_type, stored.event_version, stored.event
        );
        let event: AccountEvent = stored.decode::<AccountEvent>()?.event;
        println!("  stored as {raw:<45} read as {event:?}");
    }
    show(&repo.load(&id.to_owned()).await?);
    Ok(())
}
