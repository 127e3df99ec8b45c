use cqrs_runtime::handlers;

#[handlers]
#[derive(Default)]
pub struct Door {
    open: bool,
}

impl Door {
    pub fn is_open(&self) -> bool {
        self.open
    }
}

pub fn check() {
    assert!(!Door::default().is_open());
}
