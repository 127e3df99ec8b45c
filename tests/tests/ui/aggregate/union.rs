use cqrs_runtime::{Aggregate, Command, Event};
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

#[derive(Aggregate)]
#[aggregate(event = DoorEvent, command = DoorCommand, error = Stuck)]
pub union Door {
    open: u8,
}
