use bank::public::BalanceChanged;
use bank::{Account, Opened};
use cqrs_runtime::process_manager;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Bonus {
    pub paid: bool,
}

/// Not an event enum: a struct of another service's contract, written by hand.
pub struct Payments;

#[process_manager(aggregates(Account), contracts(Payments))]
impl Bonus {
    #[start]
    fn opened(&mut self, _: &Opened) {}

    fn changed(&mut self, _: &BalanceChanged) {}
}
