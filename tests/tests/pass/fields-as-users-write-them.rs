// Named-field variants with the fields users write: raw identifiers, nested generics, paths
// into other modules (`super::`, `crate::`), serde attributes, docs, and an enum in a private
// submodule re-exported by the crate.
use cqrs_runtime::DomainEvent;

pub mod money {
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
    pub struct Money {
        pub cents: i64,
    }
}

mod ledger {
    use std::collections::BTreeMap;

    #[derive(Debug, Clone, PartialEq, cqrs_runtime::Event)]
    #[event(derive(PartialEq), attr(serde(rename_all = "camelCase")))]
    pub(crate) enum LedgerEvent {
        /// An entry was booked.
        Booked {
            r#type: String,
            amount: super::money::Money,
            total: crate::money::Money,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            memo_lines: Option<Vec<String>>,
            tags: BTreeMap<String, Vec<u8>>,
        },
        #[event(version = 2, upcast(v1 { r#type: String } => |v1| Voided { r#type: v1.r#type, reason: None }))]
        Voided {
            r#type: String,
            reason: Option<Box<String>>,
        },
    }
}

use ledger::{Booked, LedgerEvent, Voided};

/// What the shape stores, run by `tests/pass_shapes.rs` (a pass case is only compiled).
pub fn round_trip() {
    let booked = Booked {
        r#type: "fee".into(),
        amount: money::Money { cents: 5 },
        total: money::Money { cents: 5 },
        memo_lines: None,
        tags: Default::default(),
    };
    let event = LedgerEvent::from(booked.clone());
    let json = event.encode().unwrap();
    assert!(json.contains(r#""type":"fee""#) && !json.contains("memo"), "{json}");
    let back = LedgerEvent::decode("Booked", 1, &json).unwrap();
    assert_eq!(back, event);
    let old = LedgerEvent::decode("Voided", 1, r#"{"type":"fee"}"#).unwrap();
    assert_eq!(old, LedgerEvent::from(Voided { r#type: "fee".into(), reason: None }));
}
