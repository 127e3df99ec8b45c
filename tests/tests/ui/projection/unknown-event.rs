use bank::{Account, Opened};
use cqrs_runtime::projection;

/// Not an event of any aggregate.
pub struct Renamed {
    pub name: String,
}

#[derive(Default)]
pub struct Names;

#[projection(aggregates(Account))]
impl Names {
    fn opened(&mut self, _event: &Opened) {}
    fn renamed(&mut self, _event: &Renamed) {}
}
