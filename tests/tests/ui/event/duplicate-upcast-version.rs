use cqrs_runtime::Event;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Opened {}
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Closed {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct OpenedV1 {}
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct OpenedV2 {}
impl From<OpenedV1> for OpenedV2 {
    fn from(_: OpenedV1) -> Self {
        OpenedV2 {}
    }
}
impl From<OpenedV2> for Opened {
    fn from(_: OpenedV2) -> Self {
        Opened {}
    }
}

#[derive(Event)]
pub enum DoorEvent {
    #[event(version = 2, upcast(v1 = OpenedV2, v1 = OpenedV1))]
    Opened(Opened),
}
