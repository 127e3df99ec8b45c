//! The bank's public contract: the integration events other services receive through the
//! bus, a separate versioned type, so that the domain events (`AccountEvent`) can change
//! without breaking consumers. The relay maps each domain event to one of these
//! ([`to_public`]); consumers decode them with `Message::decode::<AccountPublic>()`.

use cqrs_runtime::Event;

use crate::AccountEvent;

/// The topic the public events go to.
pub const TOPIC: &str = "bank-accounts";

/// What other services learn about accounts. Each variant's fields become a struct of the
/// same name (`Opened`, `BalanceChanged`, `Closed`).
#[derive(Debug, Clone, PartialEq, Eq, Event)]
#[event(derive(PartialEq, Eq))]
pub enum AccountPublic {
    /// An account was opened.
    #[event(rename = "bank.AccountOpened")]
    Opened {
        /// ISO 4217 code.
        currency: String,
    },
    /// The balance changed.
    #[event(rename = "bank.BalanceChanged")]
    BalanceChanged {
        /// Cents in the account's currency; negative: money out.
        cents: i64,
    },
    /// The account was closed.
    #[event(rename = "bank.AccountClosed")]
    Closed {},
}

/// The public event of a domain event. The owner's name stays private.
pub fn to_public(event: &AccountEvent) -> Option<AccountPublic> {
    Some(match event {
        AccountEvent::Opened { currency, .. } => AccountPublic::Opened {
            currency: currency.clone(),
        },
        AccountEvent::Deposited { amount } => AccountPublic::BalanceChanged {
            cents: amount.cents,
        },
        AccountEvent::Withdrawn { cents } => AccountPublic::BalanceChanged { cents: -cents },
        AccountEvent::Closed {} => AccountPublic::Closed {},
    })
}
