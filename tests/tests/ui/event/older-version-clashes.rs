use cqrs_runtime::Event;
use serde::{Deserialize, Serialize};

/// The hand-written shape of version 1, from before the field list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BorrowedV1 {
    pub book_id: String,
}

#[derive(Debug, Clone, Event)]
pub enum CardEvent {
    #[event(version = 2, upcast(v1 { book_id: String } => |v1| Borrowed { book: v1.book_id }))]
    Borrowed { book: String },
}
