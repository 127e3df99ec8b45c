use bank::{Account, Opened};
use cqrs_runtime::projection;

#[derive(Default)]
pub struct Owners;

#[projection(aggregates(Account))]
impl Owners {
    fn opened(&mut self, _event: &Opened) -> bool {
        true
    }
}
