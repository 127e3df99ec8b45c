use bank::{Account, Opened};
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
    fn opened(&self, _: &Opened, effects: &mut Effects) {
        effects.complete();
    }
}
