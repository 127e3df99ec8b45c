//! A process manager with every kind of handler, routed every way, following the events of
//! another service too (`contracts(...)`) and publishing a command for it.

use std::time::Duration;

use bank::public::{AccountPublic, BalanceChanged, Closed};
use bank::transfers::{Complete, Refund, Requested, Transfer};
use bank::{Account, AccountCommand, Deposit, Deposited, Opened, Withdraw, Withdrawn};
use cqrs_runtime::process::{Effects, Refused};
use cqrs_runtime::{StoredEvent, process_manager};
use serde::{Deserialize, Serialize};

pub struct Settings {
    pub timeout: Duration,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Flow {
    pub owner: String,
    pub steps: u32,
}

#[process_manager(
    manager = Settings,
    name = "flow",
    aggregates(Account, Transfer),
    contracts(AccountPublic),
    sends(Account, Transfer)
)]
impl Flow {
    #[start(field = owner)]
    fn opened(&mut self, event: &Opened) {
        self.owner = event.owner.clone();
    }

    fn open(&self, _: &Opened, envelope: &StoredEvent, effects: &mut Effects<Self>, settings: &Settings) {
        effects.send(envelope.aggregate_id.clone(), Deposit { cents: 1 });
        effects.schedule("late", settings.timeout);
    }

    #[start]
    fn requested(&mut self, _: &Requested) -> Result<(), std::io::Error> {
        self.steps += 1;
        Ok(())
    }

    #[existing(caused)]
    fn deposited(&mut self, _: &Deposited, _: &StoredEvent) {
        self.steps += 1;
    }

    fn withdrawn(&self, _: &Withdrawn, effects: &mut Effects<Self>) {
        effects.send("t-1".to_owned(), Complete {});
        effects.send("acc-1", Withdraw { cents: 1 });
    }

    /// Another service's account, through its public contract.
    #[existing(caused)]
    fn changed(&mut self, event: &BalanceChanged) {
        self.steps += event.cents.unsigned_abs() as u32;
    }

    fn publish(&self, _: &BalanceChanged, effects: &mut Effects<Self>) -> Result<(), serde_json::Error> {
        effects.publish("other-bank-commands", "acc-9", &AccountCommand::from(Deposit { cents: 1 }))
    }

    #[start]
    fn closed(&mut self, _: &Closed, envelope: &StoredEvent) {
        self.owner = envelope.aggregate_id.clone();
    }

    #[deadline("late")]
    fn late(&self, effects: &mut Effects<Self>, settings: &Settings) {
        let reason = format!("late after {:?}", settings.timeout);
        effects.send("t-1".to_owned(), Refund { reason });
        effects.complete();
    }

    #[refused]
    fn refused(&mut self, refused: &Refused) {
        self.owner = refused.reason.clone();
    }
}
