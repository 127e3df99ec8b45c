// Batch handlers beside per-event ones: every deposit of a batch at once, every event of a
// batch at once, and the opening one by one.

use bank::{Account, Deposited, Opened};
use cqrs_runtime::{StoredEvent, projection};

#[derive(Debug, Default)]
pub struct Batched {
    pub owners: Vec<String>,
    pub deposits: Vec<usize>,
    pub events: usize,
}

#[projection(aggregates(Account))]
impl Batched {
    fn opened(&mut self, event: &Opened) {
        self.owners.push(event.owner.clone());
    }

    fn deposited(&mut self, events: &[(Deposited, &StoredEvent)]) {
        self.deposits.push(events.len());
    }

    async fn all(&mut self, events: &[StoredEvent]) -> Result<(), std::convert::Infallible> {
        self.events += events.len();
        Ok(())
    }
}
