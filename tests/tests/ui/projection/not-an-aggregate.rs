use bank::Opened;
use cqrs_runtime::projection;

#[derive(Default)]
pub struct Owners;

#[projection(aggregates(String))]
impl Owners {
    fn opened(&mut self, _event: &Opened) {}
}
