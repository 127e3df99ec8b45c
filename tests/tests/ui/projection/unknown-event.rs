use bank::{Account, AccountOpened};
use cqrs_runtime::projection;

/// Not an event of any aggregate.
pub struct Renamed {
    pub name: String,
}

#[derive(Default)]
pub struct Names;

#[projection(aggregates(Account))]
impl Names {
    fn opened(&mut self, _event: &AccountOpened) {}
    fn renamed(&mut self, _event: &Renamed) {}
}

fn main() {}
