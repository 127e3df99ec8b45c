use bank::{Account, AccountOpened};
use cqrs_runtime::projection;

#[derive(Default)]
pub struct Owners;

#[projection(aggregates(Account))]
impl Owners {
    fn opened(&mut self, _event: &AccountOpened) {}

    fn count() -> usize {
        0
    }
}

fn main() {}
