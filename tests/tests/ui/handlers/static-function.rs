use cqrs_runtime::{Aggregate, Command, Event, handlers};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Opened {}
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Closed {}
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Open {}
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Close {}

#[derive(Debug, Clone, Event)]
pub enum DoorEvent {
    Opened(Opened),
    Closed(Closed),
}

#[derive(Debug, Clone, Command)]
pub enum DoorCommand {
    Open(Open),
    Close(Close),
}

#[derive(Debug, thiserror::Error)]
#[error("the door is stuck")]
pub struct Stuck;

#[derive(Default, Aggregate)]
#[aggregate(event = DoorEvent, command = DoorCommand, error = Stuck)]
pub struct Door {
    open: bool,
}

#[handlers]
impl Door {
    fn open(&self, _: Open) -> Result<Opened, Stuck> {
        Ok(Opened {})
    }
    fn helper() -> u32 {
        1
    }
}

#[handlers]
impl Door {
    fn opened(&mut self, _: &Opened) {}
    fn closed(&mut self, _: &Closed) {}
    fn close(&self, _: Close) -> Result<Closed, Stuck> {
        Ok(Closed {})
    }
}
