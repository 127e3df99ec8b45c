use bank::{Account, Opened};
use cqrs_runtime::process_manager;

/// Not `Serialize`, `Deserialize` or `Default`.
pub struct Bonus {
    pub paid: bool,
}

#[process_manager(aggregates(Account))]
impl Bonus {
    #[start]
    fn opened(&mut self, _: &Opened) {
        self.paid = true;
    }
}
