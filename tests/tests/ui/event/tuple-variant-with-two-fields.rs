//! A variant with two unnamed fields.

use cqrs_runtime::{Aggregate, Command, Event, handlers};

#[derive(Debug, Clone, PartialEq, Event)]
pub enum DoorEvent {
    Opened(String, u32),
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
pub struct Door {
    pub open: bool,
}

#[handlers]
impl Door {
    fn open(&self, command: Open) -> Result<DoorEvent, DoorError> {
        if self.open {
            return Err(DoorError::AlreadyOpen);
        }
        let _ = command;
        Ok(DoorEvent::Opened(String::new(), 0))
    }

    fn close(&self, _: Close) -> Closed {
        Closed
    }


    fn closed(&mut self, _: &Closed) {
        self.open = false;
    }
}
