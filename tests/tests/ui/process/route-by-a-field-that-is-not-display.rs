use bank::{Account, Deposited};
use cqrs_runtime::process_manager;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Payments {
    pub count: u32,
}

#[process_manager(aggregates(Account))]
impl Payments {
    #[start(field = amount)]
    fn deposited(&mut self, _: &Deposited) {
        self.count += 1;
    }
}
