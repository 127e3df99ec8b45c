use bank::{Account, Opened};
use cqrs_runtime::projection;

#[derive(Default)]
pub struct Owners;

#[projection(aggregate(Account))]
impl Owners {
    fn opened(&mut self, _event: &Opened) {}
}
