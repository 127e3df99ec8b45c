use cqrs_runtime::Command;

#[derive(Debug, Clone, Command)]
pub enum CardCommand {
    Register(String, u32),
}
