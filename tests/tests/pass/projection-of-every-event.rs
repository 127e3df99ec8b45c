//! A projection with a handler of every event (the envelope only), one of a whole event enum,
//! and one per payload type, writing through a connection.
use cqrs_runtime::{Aggregate, Command, Event, StoredEvent, handlers, projection};

#[derive(Debug, Clone, Command)]
pub enum LampCommand {
    Switch { on: bool },
}

#[derive(Debug, Clone, Event)]
pub enum LampEvent {
    Switched { on: bool },
}

#[derive(Default, Aggregate)]
#[aggregate(command = LampCommand, event = LampEvent)]
pub struct Lamp;

#[handlers]
impl Lamp {
    fn switch(&self, cmd: Switch) -> Switched {
        Switched { on: cmd.on }
    }

    fn switched(&mut self, _: &Switched) {}
}

#[derive(Debug, Clone, Default)]
pub struct Audit {
    pub changes: u64,
}

#[projection(aggregates(Lamp))]
impl Audit {
    async fn every(&mut self, _: &StoredEvent, log: &mut Vec<String>) -> Result<(), std::io::Error> {
        log.push(String::new());
        Ok(())
    }

    fn lamp(&mut self, _: &LampEvent) {
        self.changes += 1;
    }

    fn switched(&mut self, e: &Switched, envelope: &StoredEvent, log: &mut Vec<String>) {
        log.push(format!("{} {}", envelope.aggregate_id, e.on));
    }
}
