// A generic aggregate whose type parameter has no bounds: it is an aggregate for each type
// argument that meets what one needs (`Send + Sync + Default + 'static` here). (Line comments:
// `ui/aggregate/generic-used-with-an-unsuitable-type.rs` includes this file.)

use cqrs_runtime::{Aggregate, Command, Event, handlers};

#[derive(Debug, Clone, PartialEq, Event)]
pub enum DoorEvent {
    Opened { by: String },
    Closed,
}

#[derive(Debug, Clone, Command)]
pub enum DoorCommand {
    Open { by: String },
    Close,
}

#[derive(Debug, thiserror::Error)]
pub enum DoorError {
    #[error("the door is already open")]
    AlreadyOpen,
}

#[derive(Debug, Default, Aggregate)]
#[aggregate(command = DoorCommand, event = DoorEvent, error = DoorError)]
pub struct Door<T> {
    pub open: bool,
    pub label: T,
}

#[handlers]
impl<T> Door<T> {
    fn open(&self, command: Open) -> Result<Opened, DoorError> {
        if self.open {
            return Err(DoorError::AlreadyOpen);
        }
        Ok(Opened { by: command.by })
    }

    fn close(&self, _: Close) -> Closed {
        Closed
    }

    fn opened(&mut self, _: &Opened) {
        self.open = true;
    }

    fn closed(&mut self, _: &Closed) {
        self.open = false;
    }
}

fn is_an_aggregate<A: cqrs_runtime::Aggregate>() {}

pub fn labelled_doors() {
    is_an_aggregate::<Door<String>>();
}
