use cqrs_runtime::Command;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Open {}

#[derive(Command)]
pub enum DoorCommand {
    Open(Open),
    OpenWide(Open),
}
