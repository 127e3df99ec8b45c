use cqrs_runtime::Command;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Open {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Shut {}

#[derive(Command)]
pub enum DoorCommand {
    Open(Open),
    #[command(rename = "Open")]
    Shut(Shut),
}
