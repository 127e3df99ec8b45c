use bank::Opened;
use cqrs_runtime::process_manager;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Bonus {
    pub paid: bool,
}

/// Not an aggregate.
pub struct Ledger;

#[process_manager(aggregates(Ledger))]
impl Bonus {
    #[start]
    fn opened(&mut self, _: &Opened) {}
}
