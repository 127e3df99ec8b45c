//! `#[process_manager]` run on a store: routing by the command that caused an event (with an
//! instance id that needs escaping in the key), events it did not cause, a deadline without a
//! handler, and deadlines kept through events that do not change them.

use std::time::Duration;

use bank::{Account, Deposit, Deposited, Open, Opened};
use cqrs_runtime::process::{Dispatcher, Effects, ProcessRunner};
use cqrs_runtime::projection::MemoryTarget;
use cqrs_runtime::sqlite::{SqliteConfig, SqliteStore};
use cqrs_runtime::{EventStore, InMemoryStore, Repository, process_manager};
use serde::{Deserialize, Serialize};

/// Pays 10 cents into every new account, then completes once that deposit is recorded.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Bonus {
    owner: String,
    paid: u32,
}

#[process_manager(aggregates(Account), sends(Account))]
impl Bonus {
    #[start]
    fn opened(&mut self, event: &Opened) {
        self.owner = event.owner.clone();
    }

    fn pay(&self, _: &Opened, effects: &mut Effects<Self>) {
        let account = effects.instance().to_owned();
        effects.send(account, Deposit { cents: 10 });
    }

    #[existing(caused)]
    fn paid(&mut self, _: &Deposited) {
        self.paid += 1;
    }

    fn done(&self, _: &Deposited, effects: &mut Effects<Self>) {
        assert_eq!(
            self.paid, 1,
            "only the bonus's own deposit reaches the instance"
        );
        effects.complete();
    }
}

#[tokio::test]
async fn caused_events_find_their_instance_and_others_are_skipped() {
    let store = InMemoryStore::new();
    let accounts = Repository::<Account, _>::new(store.clone());
    let id = "branch/7%".to_owned(); // `/` and `%` are escaped in the command keys.
    let open = Open {
        owner: "Ada".into(),
        currency: "EUR".into(),
    };
    accounts.execute(&id, open).await.unwrap();
    // The customer's own deposit: not caused by the manager, so not routed to the instance.
    accounts.execute(&id, Deposit { cents: 5 }).await.unwrap();
    let dispatcher = Dispatcher::new().route(accounts.clone());
    let mut runner = ProcessRunner::new(
        store.clone(),
        MemoryTarget::new(),
        Bonus::default(),
        dispatcher,
    );
    runner.catch_up().await.unwrap();
    // The bonus's deposit is in the log now; reading it completes the instance.
    runner.catch_up().await.unwrap();
    let account = accounts.load(&id).await.unwrap();
    assert_eq!(account.state().balance, 15);
    assert!(runner.instance(&id).await.unwrap().is_none(), "completed");
    let events = store.read_all(Default::default(), 100).await.unwrap();
    let bonus = events.last().unwrap();
    assert_eq!(
        cqrs_runtime::process::caused_by("bonus", bonus).as_deref(),
        Some(id.as_str())
    );
}

/// Schedules a deadline it has no handler for.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Forgetful;

#[process_manager(aggregates(Account))]
impl Forgetful {
    #[start]
    fn opened(&self, _: &Opened, effects: &mut Effects<Self>) {
        effects.schedule("reminder", Duration::ZERO);
    }
}

#[tokio::test]
async fn a_deadline_without_a_handler_stops_the_runner_with_the_fix() {
    let store = InMemoryStore::new();
    let accounts = Repository::<Account, _>::new(store.clone());
    let open = Open {
        owner: "Ada".into(),
        currency: "EUR".into(),
    };
    accounts.execute(&"acc-1".to_owned(), open).await.unwrap();
    let mut runner = ProcessRunner::new(store, MemoryTarget::new(), Forgetful, Dispatcher::new());
    let error = runner.catch_up().await.unwrap_err().to_string();
    assert!(
        error.contains("process manager `forgetful` has no handler for deadline \"reminder\": add `#[deadline(\"reminder\")]"),
        "{error}"
    );
}

/// Counts an account's deposits and, two seconds after it opened, ends with what it counted.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Tally {
    deposits: u32,
    reminded: bool,
}

#[process_manager(aggregates(Account))]
impl Tally {
    #[start]
    fn opened(&self, _: &Opened, effects: &mut Effects<Self>) {
        effects.schedule("remind", Duration::from_secs(2));
    }

    fn deposited(&mut self, _: &Deposited) {
        self.deposits += 1;
    }

    #[deadline("remind")]
    fn remind(&mut self, effects: &mut Effects<Self>) {
        self.reminded = true;
        effects.complete();
    }
}

/// An event that leaves an instance's deadlines as they were does not rewrite them (the SQL
/// target skips them then): the deadline set before it still fires, from a fresh runner.
#[tokio::test]
async fn deadlines_survive_events_that_do_not_change_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("tally.db")))
        .await
        .unwrap();
    let accounts = Repository::<Account, _>::new(store.clone());
    let id = "acc-1".to_owned();
    let open = Open {
        owner: "Ada".into(),
        currency: "EUR".into(),
    };
    accounts.execute(&id, open).await.unwrap();
    accounts.execute(&id, Deposit { cents: 5 }).await.unwrap();
    let runner = |batch| {
        let target = store.projection_target();
        ProcessRunner::new(store.clone(), target, Tally::default(), Dispatcher::new())
            .batch_size(batch)
            .archive(true)
    };
    // One event per batch: the deposit's commit finds the deadline unchanged.
    let mut first = runner(1);
    first.catch_up().await.unwrap();
    let instance = first.instance(&id).await.unwrap().expect("running");
    assert_eq!(instance.state.deposits, 1);
    assert_eq!(instance.deadlines.len(), 1, "{instance:?}");
    // Once due, a runner that knows nothing but the target fires it.
    let due = *instance.deadlines.values().next().unwrap();
    while chrono::Utc::now() <= due {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut second = runner(100);
    let done = second.catch_up().await.unwrap();
    assert_eq!(done.deadlines, 1);
    let archived = second.archived(&id).await.unwrap();
    assert_eq!(
        archived,
        Some(Tally {
            deposits: 1,
            reminded: true
        })
    );
}
