use cqrs_runtime::Command;

/// An item of the same name as a variant with named fields.
pub fn register() {}
pub struct Register;

#[derive(Debug, Clone, Command)]
pub enum CardCommand {
    Register { name: String },
}
