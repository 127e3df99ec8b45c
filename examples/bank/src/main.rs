//! The README demo: the bank domain on an SQLite file.
//!
//! `bank [FILE]` (default `bank-demo.db` in the current directory) runs a few commands, prints
//! the recorded events and the state, writes rows the way release 1 of the bank code stored
//! them and reads them back through the upcast chain. Run it twice: the second run reloads the
//! accounts from the file instead of creating them. Then it brings the two read models up to
//! date (account summaries in memory, daily totals in SQLite tables beside the events, whose
//! checkpoint makes the second run apply only what is new) and follows the log live for one
//! more command.
//!
//! Last, it carries out three transfers through the `Transfers` process manager: one that
//! completes, one whose debit is refused, and one whose credit is refused (the money goes
//! back), then prints each ending and the balances.
//!
//! `bank rebuild [FILE]` rebuilds the daily totals from the whole log, with a progress bar.
//!
//! `bank publish nats|kafka [FILE]` publishes the bank's public events to a broker through the
//! transactional outbox and consumes them in a second service (see `bus_demo.rs`).

mod bus_demo;

use std::time::Duration;

use bank::transfers::{Ending, Transfer, TransferCommand, Transfers};
use bank::{
    ACCOUNT_TYPE, Account, AccountCommand, AccountEvent, AccountSummaries, Close, DailyTotals,
    Deposit, Open, Withdraw,
};
use cqrs_runtime::process::{Dispatcher, ProcessManager, ProcessRunner};
use cqrs_runtime::projection::{Checkpoints, MemoryTarget};
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_runtime::{
    AggregateRoot, CommandError, EventStore, EventStoreExt, NewEvent, Projection, Projector,
    Repository,
};
use futures::TryStreamExt;
use serde_json::json;

type Error = Box<dyn std::error::Error>;

/// Runs the demo; an error that stops it is printed in its Display form, on one line.
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match demo().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn demo() -> Result<(), Error> {
    let mut args = std::env::args().skip(1).peekable();
    let rebuilding = args.next_if(|a| a == "rebuild").is_some();
    let publishing = match args.next_if(|a| a == "publish") {
        Some(_) => Some(args.next().ok_or("usage: bank publish nats|kafka [FILE]")?),
        None => None,
    };
    let path = args.next().unwrap_or_else(|| "bank-demo.db".to_owned());
    let store = SqliteStore::open(SqliteConfig::new(&path)).await?;
    if rebuilding {
        return rebuild(&store).await;
    }
    if let Some(broker) = publishing {
        println!("event store: {path} (SQLite)");
        return bus_demo::run(store, &broker).await;
    }
    let repo = Repository::<Account, _>::new(store.clone());
    println!("event store: {path} (SQLite)\n");

    let id = "acc-ada".to_owned();
    let before = repo.load(&id).await?;
    if before.exists() {
        println!("== {id} reloaded from disk at version {}", before.version());
        show(&before);
    } else {
        println!("== {id} is new: opening it");
        let open = Open {
            owner: "Ada".into(),
            currency: "EUR".into(),
        };
        run(&repo, &id, open.into()).await?;
    }
    for command in [
        Deposit { cents: 10_000 }.into(),
        Withdraw { cents: 2_500 }.into(),
        Withdraw { cents: 1_000_000 }.into(),
        Close {}.into(),
    ] {
        run(&repo, &id, command).await?;
    }
    show(&repo.load(&id).await?);

    legacy_rows(&store, &repo).await?;
    read_models(&store, &repo).await?;
    transfers(&store, &repo).await
}

/// Three transfers through the `Transfers` process manager, run until each ended.
async fn transfers(
    store: &SqliteStore,
    accounts: &Repository<Account, SqliteStore>,
) -> Result<(), Error> {
    println!(
        "\n== transfers, carried out by the process manager `{}`",
        Transfers::NAME
    );
    for (id, owner, cents) in [
        ("acc-ben", "Ben", 10_000),
        ("acc-cy", "Cy", 0),
        ("acc-dora", "Dora", 0),
    ] {
        let id = id.to_owned();
        if !accounts.load(&id).await?.exists() {
            let open = Open {
                owner: owner.into(),
                currency: "EUR".into(),
            };
            accounts.execute(&id, AccountCommand::from(open)).await?;
            if cents > 0 {
                accounts.execute(&id, Deposit { cents }).await?;
            }
        }
    }
    accounts.execute(&"acc-dora".to_owned(), Close {}).await?;
    let transfers = Repository::<Transfer, _>::new(store.clone());
    let run = uuid::Uuid::now_v7().simple().to_string();
    let mut requested = Vec::new();
    // acc-dora is closed: its credit is refused and the money goes back.
    for (n, (from, to, cents)) in [
        ("acc-ben", "acc-cy", 2_500),
        ("acc-cy", "acc-ben", 1_000_000),
        ("acc-ben", "acc-dora", 1_000),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("t-{}-{n}", &run[run.len() - 6..]);
        let (from, to) = (from.to_owned(), to.to_owned());
        transfers
            .execute(&id, TransferCommand::Request { from, to, cents })
            .await?;
        requested.push(id);
    }
    let dispatcher = Dispatcher::new()
        .route(accounts.clone())
        .route(transfers.clone());
    let mut runner = ProcessRunner::new(
        store.clone(),
        store.projection_target(),
        Transfers::default(),
        dispatcher,
    );
    // A pass reads the events its own commands record as it goes; the last one finds none.
    while runner.catch_up().await?.read > 0 {}
    for id in &requested {
        let transfer = transfers.load(id).await?;
        let t = transfer.state();
        let ending = match &t.ended {
            Some(Ending::Completed) => "completed".to_owned(),
            Some(Ending::Refunded(why)) => format!("refunded: {why}"),
            None => "still running".to_owned(),
        };
        println!(
            "  {id}: {}.{:02} from {} to {}: {ending}",
            t.cents / 100,
            t.cents % 100,
            t.from,
            t.to
        );
    }
    for id in ["acc-ben", "acc-cy"] {
        let balance = accounts.load(&id.to_owned()).await?.state().balance;
        println!("  {id}: balance {}.{:02}", balance / 100, balance % 100);
    }
    Ok(())
}

/// Empties the daily totals and replays the whole log into them, with a progress bar.
async fn rebuild(store: &SqliteStore) -> Result<(), Error> {
    let bar = indicatif::ProgressBar::new(0).with_style(indicatif::ProgressStyle::with_template(
        "rebuilding {msg} [{bar:40}] {pos}/{len} events ({per_sec}, {eta} left)",
    )?);
    bar.set_message(DailyTotals::NAME);
    let target = store.projection_target();
    let mut runner = Projector::new(store.clone(), target.clone(), DailyTotals).batch_size(1000);
    let done = runner
        .rebuild(|p| {
            bar.set_length(p.total.max(p.read));
            bar.set_position(p.read);
        })
        .await?;
    bar.finish();
    println!("rebuilt `{}` from {} events", DailyTotals::NAME, done.read);
    for day in DailyTotals::query(target.pool()).await? {
        println!(
            "  {} {}: in {}, out {}",
            day.day, day.currency, day.deposited, day.withdrawn
        );
    }
    Ok(())
}

/// Brings both read models up to date, then follows the log live while one more command runs.
async fn read_models(
    store: &SqliteStore,
    repo: &Repository<Account, SqliteStore>,
) -> Result<(), Error> {
    let target = store.projection_target();
    let mut totals = Projector::new(store.clone(), target.clone(), DailyTotals);
    let before = target.checkpoint(DailyTotals::id()).await?;
    let caught_up = totals.catch_up().await?;
    println!(
        "== read model `{}`: read {} new event(s) from position {} to {}",
        DailyTotals::NAME,
        caught_up.read,
        before.map_or(0, |p| p.event),
        caught_up.checkpoint.event
    );
    for day in DailyTotals::query(target.pool()).await? {
        println!(
            "  {} {}: in {}.{:02}, out {}.{:02}",
            day.day,
            day.currency,
            day.deposited / 100,
            day.deposited % 100,
            day.withdrawn / 100,
            day.withdrawn % 100
        );
    }

    let summaries = AccountSummaries::default();
    let mut runner = Projector::new(store.clone(), MemoryTarget::new(), summaries.clone())
        .poll_interval(Duration::from_millis(200));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let live = tokio::spawn(async move {
        runner
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    let id = "acc-live".to_owned();
    let sequence = if repo.load(&id).await?.exists() {
        repo.execute(&id, AccountCommand::from(Deposit { cents: 100 }))
            .await?
    } else {
        let open = Open {
            owner: "Linus".into(),
            currency: "USD".into(),
        };
        repo.execute(&id, AccountCommand::from(open)).await?
    }
    .root
    .version();
    // The runner is woken by the commit; wait until its summary shows the event.
    while summaries.get(&id).is_none_or(|s| s.version < sequence) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop.send(());
    live.await??;
    println!(
        "\n== read model `{}` (in memory, live):",
        AccountSummaries::NAME
    );
    for (id, s) in summaries.all() {
        println!(
            "  {id}: {} {} {}.{:02}, {} transaction(s){}",
            s.owner,
            s.currency,
            s.balance / 100,
            s.balance % 100,
            s.transactions,
            if s.closed { ", closed" } else { "" }
        );
    }
    Ok(())
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
        let old = [
            NewEvent::raw("Opened", 1, json!({ "owner": "Grace", "currency": "EUR" })),
            NewEvent::raw("Deposited", 1, json!({ "euros": 42 })),
            NewEvent::raw("Withdrawn", 1, json!({ "sum": 250 })),
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
