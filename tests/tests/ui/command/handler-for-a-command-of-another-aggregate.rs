//! A handler of a command from another aggregate's enum.

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
pub struct Door {
    pub open: bool,
}

#[handlers]
impl Door {
    fn open(&self, command: Open) -> Result<Opened, DoorError> {
        if self.open {
            return Err(DoorError::AlreadyOpen);
        }
        Ok(Opened { by: command.by })
    }

    fn deposit(&self, _: bank::Deposit) -> Closed {
        Closed
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
