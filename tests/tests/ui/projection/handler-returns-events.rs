//! A projection method that returns an event, as a command handler would.

use bank::{Account, Opened};
use cqrs_runtime::projection;

#[derive(Default)]
pub struct Owners;

#[projection(aggregates(Account))]
impl Owners {
    fn opened(&mut self, event: &Opened) -> Opened {
        event.clone()
    }
}
