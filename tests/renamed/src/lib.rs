//! A domain that reaches the runtime as `my_cqrs`: no `cqrs_runtime` is in scope, so every
//! generated path must honour `crate = "my_cqrs"`.

use my_cqrs::{Aggregate, Command, Event, handlers};
use serde::{Deserialize, Serialize};

/// Ring the bell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Command)]
#[command(crate = "my_cqrs")]
pub struct Ring {
    /// How many times.
    pub times: u32,
}

/// The bell rang.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Event)]
#[event(crate = "my_cqrs", version = 2, upcast(v1 = RangV1))]
pub struct Rang {
    /// How many times.
    pub times: u32,
}

/// Version 1 always rang once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RangV1 {}

impl From<RangV1> for Rang {
    fn from(_: RangV1) -> Self {
        Rang { times: 1 }
    }
}

/// A bell that counts its rings.
#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(crate = "my_cqrs", command = Ring, event = Rang, snapshot_every = 10)]
pub struct Bell {
    /// Rings so far.
    pub rings: u32,
}

#[handlers(crate = "my_cqrs")]
impl Bell {
    fn ring(&self, command: Ring) -> Result<Rang, std::convert::Infallible> {
        Ok(Rang {
            times: command.times,
        })
    }

    fn rang(&mut self, event: &Rang) {
        self.rings += event.times;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use my_cqrs::{AggregateTest, DomainEvent};

    #[test]
    fn derives_work_through_a_renamed_dependency() {
        assert_eq!(<Bell as my_cqrs::Aggregate>::TYPE, "bell");
        AggregateTest::<Bell>::new()
            .given([Rang::decode("Rang", 1, "{}").unwrap()])
            .when(Ring { times: 2 })
            .then_expect_events([Rang { times: 2 }])
            .then_state(|bell| assert_eq!(bell.rings, 3));
    }
}
