//! `#[aggregate(...)]` on a variant of an aggregate enum: nothing would read it.

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
pub enum Door {
    #[default]
    Shut,
    #[aggregate(name = "ajar")]
    Ajar,
}

#[handlers]
impl Door {
    fn open(&self, command: Open) -> Result<Opened, DoorError> {
        if matches!(self, Door::Ajar) {
            return Err(DoorError::AlreadyOpen);
        }
        Ok(Opened { by: command.by })
    }

    fn close(&self, _: Close) -> Closed {
        Closed
    }

    fn opened(&mut self, _: &Opened) {
        *self = Door::Ajar;
    }

    fn closed(&mut self, _: &Closed) {
        *self = Door::Shut;
    }
}
