use bank::transfers::Transfer;
use bank::{Account, Opened};
use cqrs_runtime::process::Effects;
use cqrs_runtime::process_manager;
use serde::{Deserialize, Serialize};

/// Not a command of any aggregate.
#[derive(Debug)]
pub struct Gift {
    pub cents: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Bonus;

#[process_manager(aggregates(Account), sends(Account, Transfer))]
impl Bonus {
    #[start]
    fn opened(&self, _: &Opened, effects: &mut Effects<Self>) {
        effects.send("acc-1", Gift { cents: 10 });
    }
}
