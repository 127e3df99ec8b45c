use bank::{Account, Deposited, Opened};
use cqrs_runtime::process_manager;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Bonus {
    pub paid: bool,
}

#[process_manager(aggregates(Account), sends(Account))]
impl Bonus {
    #[start]
    fn opened(&mut self, _: &Opened) {}
    fn deposited(&mut self, _: &Deposited) {
        self.paid = true;
    }
    fn also_deposited(&mut self, _: &Deposited) {}
}
