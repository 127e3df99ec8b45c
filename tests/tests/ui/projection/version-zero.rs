//! `version = 0`: projection versions start at 1.

use bank::{Account, Opened};
use cqrs_runtime::projection;

#[derive(Default)]
pub struct Owners;

#[projection(aggregates(Account), version = 0)]
impl Owners {
    fn opened(&mut self, _event: &Opened) {}
}
