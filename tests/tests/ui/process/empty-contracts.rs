use bank::{Account, Opened};
use cqrs_runtime::process_manager;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Bonus {
    pub paid: bool,
}

#[process_manager(aggregates(Account), contracts())]
impl Bonus {
    #[start]
    fn opened(&mut self, _: &Opened) {}
}
