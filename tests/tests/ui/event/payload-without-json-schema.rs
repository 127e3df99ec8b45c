use cqrs_runtime::Event;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Opened {}

#[derive(Event)]
pub enum DoorEvent {
    Opened(Opened),
}
