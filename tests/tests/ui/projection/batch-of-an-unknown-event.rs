use bank::{Account, Deposited};
use cqrs_runtime::{StoredEvent, projection};

/// Not an event of any aggregate.
#[derive(serde::Deserialize)]
pub struct Renamed {
    pub name: String,
}

#[derive(Default)]
pub struct Names;

#[projection(aggregates(Account))]
impl Names {
    fn deposited(&mut self, _events: &[(Deposited, &StoredEvent)]) {}
    fn renamed(&mut self, _events: &[(Renamed, &StoredEvent)]) {}
}
