use bank::{Account, Deposit, Opened};
use cqrs_runtime::process::Effects;
use cqrs_runtime::process_manager;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Bonus {
    pub paid: bool,
}

#[process_manager(aggregates(Account), sends(Account))]
impl Bonus {
    #[start]
    fn opened(&self, _: &Opened, effects: &mut Effects<Self>) {
        effects.send("acc-1", Deposit { cents: 10 });
    }
    fn give(&self, _: &Opened, effects: &mut Effects<Self>) {
        effects.complete();
    }
}
