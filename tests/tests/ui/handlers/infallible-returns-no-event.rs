use cqrs_runtime::{Aggregate, Command, Event, handlers};

#[derive(Debug, Clone, PartialEq, Command)]
pub enum CardCommand {
    Register { name: String },
    Borrow { book: String },
}

#[derive(Debug, Clone, PartialEq, Event)]
pub enum CardEvent {
    Registered { name: String },
    Borrowed { book: String },
}

#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("no such card")]
    NotRegistered,
    #[error("already registered")]
    AlreadyRegistered,
}

#[derive(Default, Aggregate)]
#[aggregate(command = CardCommand, event = CardEvent, error = CardError, missing = CardError::NotRegistered, exists = CardError::AlreadyRegistered)]
pub struct Card {
    loans: u32,
}

#[handlers]
impl Card {
    #[create]
    fn register(&self, cmd: Register) -> Registered {
        Registered { name: cmd.name }
    }

    fn borrow(&self, cmd: Borrow) -> String {
        cmd.book
    }

    fn registered(&mut self, _: &Registered) {}

    fn borrowed(&mut self, _: &Borrowed) {
        self.loans += 1;
    }
}
