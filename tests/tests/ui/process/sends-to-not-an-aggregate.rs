use bank::{Account, Deposit, Opened};
use cqrs_runtime::process::Effects;
use cqrs_runtime::process_manager;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Bonus {
    pub paid: bool,
}

/// Not an aggregate.
pub struct Ledger;

#[process_manager(aggregates(Account), sends(Ledger))]
impl Bonus {
    #[start]
    fn opened(&self, _: &Opened, effects: &mut Effects<Self>) {
        effects.send("acc-1", Deposit { cents: 1 });
    }
}
