use bank::{Account, Opened, Withdrawn};
use cqrs_runtime::process_manager;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Bonus {
    pub paid: bool,
}

#[process_manager(aggregates(Account), sends(Account))]
impl Bonus {
    fn opened(&mut self, _: &Opened) {}
    #[existing]
    fn withdrawn(&mut self, _: &Withdrawn) {}
}
