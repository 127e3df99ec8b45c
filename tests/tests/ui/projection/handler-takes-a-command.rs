//! A projection method that takes a command payload: projections follow events.

use bank::{Account, Open, Opened};
use cqrs_runtime::projection;

#[derive(Default)]
pub struct Owners;

#[projection(aggregates(Account))]
impl Owners {
    fn opened(&mut self, _event: &Opened) {}
    fn open(&mut self, _command: &Open) {}
}
