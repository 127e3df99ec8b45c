use cqrs_runtime::{Aggregate, Event, handlers};

#[derive(Debug, Clone)]
pub enum DoorCommand {
    Open(Open),
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Open {}

#[derive(Debug, Clone, Event)]
pub enum DoorEvent {
    Opened {},
}

#[derive(Default, Aggregate)]
#[aggregate(command = DoorCommand, event = DoorEvent)]
pub struct Door;

#[handlers]
impl Door {
    fn open(&self, _: Open) -> Opened {
        Opened {}
    }

    fn opened(&mut self, _: &Opened) {}
}
