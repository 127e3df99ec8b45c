use cqrs_runtime::Event;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Opened {}
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Closed {}

fn upgrade(value: serde_json::Value) -> serde_json::Value {
    value
}

#[derive(Event)]
pub enum DoorEvent {
    #[event(version = 2, upcast(v1(json = upgrade)))]
    Opened(Opened),
}
