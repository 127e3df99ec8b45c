use bank::{Account, Opened};
use cqrs_runtime::process_manager;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Bonus {
    pub paid: bool,
}

/// Not an event of any aggregate.
pub struct Renamed {
    pub name: String,
}

#[process_manager(aggregates(Account), sends(Account))]
impl Bonus {
    #[start]
    fn opened(&mut self, _: &Opened) {}
    fn renamed(&mut self, _: &Renamed) {}
}
