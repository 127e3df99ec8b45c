//! One handler of the whole command enum, as in cqrs-es, instead of one per command.

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
    fn handle(&self, command: DoorCommand) -> Result<Vec<DoorEvent>, DoorError> {
        match command {
            DoorCommand::Open { by } => Ok(vec![Opened { by }.into()]),
            DoorCommand::Close => Ok(vec![Closed.into()]),
        }
    }

    fn opened(&mut self, _: &Opened) {
        self.open = true;
    }

    fn closed(&mut self, _: &Closed) {
        self.open = false;
    }
}
