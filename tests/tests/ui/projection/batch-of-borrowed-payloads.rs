use bank::{Account, Deposited};
use cqrs_runtime::{StoredEvent, projection};

#[derive(Default)]
pub struct Deposits;

#[projection(aggregates(Account))]
impl Deposits {
    fn deposited(&mut self, _events: &[(&Deposited, &StoredEvent)]) {}
}
