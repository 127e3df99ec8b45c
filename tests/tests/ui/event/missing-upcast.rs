use cqrs_runtime::Event;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Opened {}
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Closed {}

#[derive(Event)]
pub enum DoorEvent {
    #[event(version = 2)]
    Opened(Opened),
}
