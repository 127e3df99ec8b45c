use bank::Opened;
use cqrs_runtime::projection;

#[derive(Default)]
pub struct Owners;

#[projection]
impl Owners {
    fn opened(&mut self, _event: &Opened) {}
}
