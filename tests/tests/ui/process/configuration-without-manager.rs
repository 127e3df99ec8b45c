use bank::{Account, Deposit, Opened};
use cqrs_runtime::process::Effects;
use cqrs_runtime::process_manager;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Bonus {
    pub paid: bool,
}

pub struct Settings {
    pub cents: i64,
}

#[process_manager(aggregates(Account), sends(Account))]
impl Bonus {
    #[start]
    fn opened(&self, _: &Opened, effects: &mut Effects<Self>, settings: &Settings) {
        effects.send("acc-1", Deposit { cents: settings.cents });
    }
}
