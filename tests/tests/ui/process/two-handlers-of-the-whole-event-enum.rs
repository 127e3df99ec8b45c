use bank::{Account, AccountEvent, Opened};
use cqrs_runtime::process_manager;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Audit {
    pub seen: u32,
}

#[process_manager(aggregates(Account))]
impl Audit {
    #[start]
    fn opened(&mut self, _: &Opened) {}
    fn any(&mut self, _: &AccountEvent) {
        self.seen += 1;
    }
    fn again(&mut self, _: &AccountEvent) {}
}
