use bank::{Account, Opened};
use cqrs_runtime::projection;

#[projection(aggregates(Account))]
#[derive(Default)]
pub struct Owners {
    names: Vec<String>,
}

impl Owners {
    fn opened(&mut self, event: &Opened) {
        self.names.push(event.owner.clone());
    }
}

pub fn check() {
    let mut owners = Owners::default();
    let _ = &mut owners;
    let _ = Owners::opened;
}
