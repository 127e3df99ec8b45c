use cqrs_runtime::{Aggregate, Command, handlers};

#[derive(Debug, Clone, Command)]
pub enum DoorCommand {
    Open {},
}

#[derive(Debug, Clone)]
pub enum DoorEvent {
    Opened(Opened),
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Opened {}

#[derive(Default, Aggregate)]
#[aggregate(command = DoorCommand, event = DoorEvent)]
pub struct Door;

#[handlers]
impl Door {
    fn open(&self, _: Open) -> Vec<DoorEvent> {
        vec![DoorEvent::Opened(Opened {})]
    }

    fn opened(&mut self, _: &Opened) {}
}
