use cqrs_runtime::Event;

#[derive(Debug, Clone, Event)]
pub enum CardEvent<T> {
    Registered { name: String },
    Tagged(T),
}
