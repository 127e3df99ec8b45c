//! The bank's public contract: the integration events other services receive through the
//! bus, a separate versioned type, so that the domain events (`AccountEvent`) can change
//! without breaking consumers. The relay maps each domain event to one of these
//! ([`to_public`]); consumers decode them with `Message::decode::<AccountPublic>()`.

use cqrs_runtime::Event;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::AccountEvent;

/// The topic the public events go to.
pub const TOPIC: &str = "bank-accounts";

/// An account was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Opened {
    /// ISO 4217 code.
    pub currency: String,
}

/// The balance changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BalanceChanged {
    /// Cents in the account's currency; negative: money out.
    pub cents: i64,
}

/// The account was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Closed {}

/// What other services learn about accounts.
#[derive(Debug, Clone, PartialEq, Eq, Event)]
pub enum AccountPublic {
    /// See [`Opened`].
    #[event(rename = "bank.AccountOpened")]
    Opened(Opened),
    /// See [`BalanceChanged`].
    #[event(rename = "bank.BalanceChanged")]
    BalanceChanged(BalanceChanged),
    /// See [`Closed`].
    #[event(rename = "bank.AccountClosed")]
    Closed(Closed),
}

/// The public event of a domain event. The owner's name stays private.
pub fn to_public(event: &AccountEvent) -> Option<AccountPublic> {
    Some(match event {
        AccountEvent::Opened(opened) => AccountPublic::Opened(Opened {
            currency: opened.currency.clone(),
        }),
        AccountEvent::Deposited(deposited) => AccountPublic::BalanceChanged(BalanceChanged {
            cents: deposited.amount.cents,
        }),
        AccountEvent::Withdrawn(withdrawn) => AccountPublic::BalanceChanged(BalanceChanged {
            cents: -withdrawn.cents,
        }),
        AccountEvent::Closed(_) => AccountPublic::Closed(Closed {}),
    })
}
