//! Commands and events declared once as named-field and unit variants, mixed with a newtype
//! variant; no serde or schemars import is needed for the generated structs.
use cqrs_runtime::{Aggregate, Command, Event, handlers};

pub mod money {
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
    pub struct Money(pub i64);
}

#[derive(Debug, Clone, PartialEq, Command)]
pub enum TillCommand {
    Open,
    Take { amount: money::Money },
    Count(Count),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Count {}

#[derive(Debug, Clone, PartialEq, Event)]
pub enum TillEvent {
    Opened,
    Taken {
        /// How much.
        amount: self::money::Money,
    },
}

#[derive(Default, Aggregate)]
#[aggregate(command = TillCommand, event = TillEvent)]
pub struct Till {
    total: i64,
}

#[handlers]
impl Till {
    fn open(&self, _: Open) -> Opened {
        // A unit variant's struct is a value, as a unit struct would be.
        Opened
    }

    fn take(&self, cmd: Take) -> Taken {
        Taken { amount: cmd.amount }
    }

    fn count(&self, _: Count) -> () {}

    fn opened(&mut self, _: &Opened) {}

    fn taken(&mut self, e: &Taken) {
        self.total += e.amount.0;
    }
}

pub fn conversions() {
    let _ = TillEvent::from(Opened {});
    let _ = TillEvent::from(Opened);
    let _ = TillCommand::from(Open);
}
