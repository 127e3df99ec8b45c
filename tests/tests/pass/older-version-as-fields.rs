//! An evolved event whose older versions are field lists, upcast by a closure and by a named
//! function, next to a hand-written version struct.
use cqrs_runtime::Event;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct PaidV2 {
    pub cents: i64,
    pub currency: String,
}

fn v1_to_v2(v1: PaidV1) -> PaidV2 {
    PaidV2 {
        cents: v1.euros * 100,
        currency: "EUR".into(),
    }
}

#[derive(Debug, Clone, Event)]
pub enum OrderEvent {
    #[event(version = 3, upcast(
        v1 { euros: i64 } => v1_to_v2,
        v2 = PaidV2 => |v2| Paid { cents: v2.cents, currency: v2.currency, via: None },
    ))]
    Paid {
        cents: i64,
        currency: String,
        via: Option<String>,
    },
    #[event(version = 2, upcast(v1 { id: u32 }))]
    Shipped { id: String },
}

impl From<ShippedV1> for Shipped {
    fn from(v1: ShippedV1) -> Self {
        Shipped { id: v1.id.to_string() }
    }
}
