use bank::public::AccountPublic;
use bank::transfers::Requested;
use bank::{Account, Opened};
use cqrs_runtime::process_manager;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Bonus {
    pub paid: bool,
}

// `Requested` is an event of `Transfer`, which is neither followed nor a contract.
#[process_manager(aggregates(Account), contracts(AccountPublic))]
impl Bonus {
    #[start]
    fn opened(&mut self, _: &Opened) {}

    fn requested(&mut self, _: &Requested) {}
}
