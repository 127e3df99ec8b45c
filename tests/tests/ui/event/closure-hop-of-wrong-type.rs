use cqrs_runtime::Event;

#[derive(Debug, Clone, Event)]
pub enum CardEvent {
    #[event(version = 2, upcast(v1 { book_id: u64 } => |v1| Borrowed { book: v1.book_id }))]
    Borrowed { book: String },
}
