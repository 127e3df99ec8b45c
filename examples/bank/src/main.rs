//! The README demo: runs the bank domain, prints events and state.

use bank::{Account, CloseAccount, Deposit, OpenAccount, Withdraw};
use cqrs_runtime::{CommandError, InMemoryStore, Repository};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let repo = Repository::<Account, _>::new(InMemoryStore::new());
    let id = "acc-1".to_owned();
    let open = OpenAccount {
        owner: "Ada".into(),
        currency: "EUR".into(),
    };
    for command in [
        bank::AccountCommand::from(open),
        Deposit { cents: 10_000 }.into(),
        Withdraw { cents: 2_500 }.into(),
        Withdraw { cents: 50_000 }.into(),
        CloseAccount {}.into(),
    ] {
        println!("> {command:?}");
        match repo.execute(&id, command).await {
            Ok(done) => {
                for e in &done.events {
                    println!(
                        "  #{} {} v{}: {:?}",
                        e.sequence, e.event_type, e.event_version, e.event
                    );
                }
            }
            Err(CommandError::Rejected(why)) => println!("  rejected: {why}"),
            Err(other) => return Err(other.into()),
        }
    }
    let account = repo.load(&id).await?;
    println!(
        "state at version {}: {:?}",
        account.version(),
        account.state()
    );
    Ok(())
}
