//! The reference domain: a bank account, written with the cargo-cqrs macros.
//!
//! It shows every feature a real domain meets:
//! - commands and events declared once, as enum variants with named fields;
//! - commands routed to sync and async handlers, one of them using injected services;
//! - existence declared once: `open` is `#[create]`, every other command is refused with
//!   `BankError::NotOpen` on an account never opened;
//! - an event renamed after data was stored (`AccountOpened`, once stored as `Opened`);
//! - an event that evolved v1 -> v2 -> v3 (`Deposited`), its older shapes given as field lists
//!   with closure hops, and one that evolved through a raw JSON upcaster (`Withdrawn`);
//! - snapshots every 50 events.

mod projections;
pub mod public;
pub mod transfers;

pub use projections::{AccountSummaries, AccountSummary, DailyTotal, DailyTotals};

use cqrs_runtime::{Aggregate, Command, Event, EventEnvelope, handlers};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Accounts are identified by a string such as `"acc-1"`.
pub type AccountId = String;

/// An amount of money in cents of a currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Money {
    /// Cents; never negative in events.
    pub cents: i64,
    /// ISO 4217 code, e.g. `"EUR"`.
    pub currency: String,
}

impl Money {
    /// An amount in euro cents.
    pub fn eur(cents: i64) -> Self {
        Money {
            cents,
            currency: "EUR".to_owned(),
        }
    }
}

// --- domain: begin (counted by `tests/tests/lines.rs`, against `tests/tests/bank_by_hand.rs`)
// ---------------------------------------------------------------------------------- commands

/// Everything an account can be asked. Each variant's fields become a struct of the same name
/// (`Open`, `Deposit`, ...), the type its handler takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Command)]
pub enum AccountCommand {
    /// Open a new account.
    Open {
        /// Who owns it.
        owner: String,
        /// The account's currency.
        currency: String,
    },
    /// Put money in.
    Deposit {
        /// In cents of the account's currency.
        cents: i64,
    },
    /// Take money out.
    Withdraw {
        /// In cents of the account's currency.
        cents: i64,
    },
    /// Close the account; it must be empty.
    Close {},
}

// ------------------------------------------------------------------------------------ events

/// Everything that can happen to an account. Each variant's fields become a struct of the same
/// name (`Opened`, `Deposited`, ...), the type its applier and projections take.
#[derive(Debug, Clone, PartialEq, Event)]
pub enum AccountEvent {
    /// An account was opened. Stored as `AccountOpened`; code before 0.2 stored it as `Opened`.
    #[event(rename = "AccountOpened", alias = "Opened")]
    Opened {
        /// Who owns it.
        owner: String,
        /// Its currency.
        currency: String,
    },
    /// Money came in. Version 3: the amount carries its currency; version 1 counted whole
    /// euros, version 2 euro cents.
    #[event(version = 3, upcast(
        v1 { euros: i64 } => |v1| DepositedV2 { cents: v1.euros * 100 },
        v2 { cents: i64 } => |v2| Deposited { amount: Money::eur(v2.cents) },
    ))]
    Deposited {
        /// How much.
        amount: Money,
    },
    /// Money went out. Version 2; version 1 called the field `sum`, renamed on the raw JSON.
    #[event(version = 2, upcast(v1(json = withdrawn_v1_to_v2)))]
    Withdrawn {
        /// In cents of the account's currency.
        cents: i64,
    },
    /// The account was closed.
    Closed {},
}

// --- domain: end

/// The v1 -> v2 hop of `Withdrawn`, on the raw JSON: the field `sum` became `cents`.
pub fn withdrawn_v1_to_v2(
    mut json: serde_json::Value,
) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
    let object = json
        .as_object_mut()
        .ok_or("Withdrawn v1 is not a JSON object")?;
    let sum = object
        .remove("sum")
        .ok_or("Withdrawn v1 has no `sum` field")?;
    object.insert("cents".to_owned(), sum);
    Ok(json)
}

// ------------------------------------------------------------------------------------ errors

/// Why an account refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    /// `Open` on an account that exists.
    #[error("account already open")]
    AlreadyOpen,
    /// Any command but `Open` on an account that was never opened.
    #[error("account not open")]
    NotOpen,
    /// Any command on a closed account.
    #[error("account closed")]
    Closed,
    /// An amount of zero or less.
    #[error("amount must be positive, got {0} cents")]
    InvalidAmount(i64),
    /// A withdrawal larger than the balance.
    #[error("insufficient funds: balance {balance} cents, requested {requested} cents")]
    InsufficientFunds {
        /// The balance now.
        balance: i64,
        /// The amount asked for.
        requested: i64,
    },
    /// A withdrawal above the per-withdrawal limit of the bank's services.
    #[error("withdrawal of {requested} cents is above the limit of {limit} cents")]
    AboveLimit {
        /// The limit.
        limit: i64,
        /// The amount asked for.
        requested: i64,
    },
    /// Closing an account with money left.
    #[error("cannot close an account holding {0} cents")]
    NotEmpty(i64),
}

// ------------------------------------------------------------------------------ the aggregate

/// What the bank's handlers may consult.
#[derive(Debug, Clone)]
pub struct BankServices {
    /// The largest single withdrawal, in cents.
    pub withdrawal_limit: i64,
}

impl Default for BankServices {
    fn default() -> Self {
        BankServices {
            withdrawal_limit: 1_000_000,
        }
    }
}

// --- domain: begin
/// The state of an account, rebuilt from its events.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(
    rename = "bank_account",
    id = AccountId,
    command = AccountCommand,
    event = AccountEvent,
    error = BankError,
    services = BankServices,
    missing = BankError::NotOpen,
    exists = BankError::AlreadyOpen,
    snapshot_every = 50
)]
pub struct Account {
    /// Who owns it; empty until opened.
    pub owner: String,
    /// The account's currency.
    pub currency: String,
    /// The balance in cents.
    pub balance: i64,
    /// Whether it was closed.
    pub closed: bool,
}

#[handlers]
impl Account {
    #[create]
    fn open(&self, cmd: Open) -> Opened {
        Opened {
            owner: cmd.owner,
            currency: cmd.currency,
        }
    }

    fn deposit(&self, cmd: Deposit) -> Result<Deposited, BankError> {
        self.check_usable(cmd.cents)?;
        let currency = self.currency.clone();
        Ok(Deposited {
            amount: Money {
                cents: cmd.cents,
                currency,
            },
        })
    }

    async fn withdraw(
        &self,
        cmd: Withdraw,
        services: &BankServices,
    ) -> Result<Withdrawn, BankError> {
        self.check_usable(cmd.cents)?;
        if cmd.cents > services.withdrawal_limit {
            return Err(BankError::AboveLimit {
                limit: services.withdrawal_limit,
                requested: cmd.cents,
            });
        }
        if cmd.cents > self.balance {
            return Err(BankError::InsufficientFunds {
                balance: self.balance,
                requested: cmd.cents,
            });
        }
        Ok(Withdrawn { cents: cmd.cents })
    }

    fn close(&self, _: Close) -> Result<Option<Closed>, BankError> {
        if self.closed {
            // Closing twice is allowed and records nothing.
            return Ok(None);
        }
        if self.balance != 0 {
            return Err(BankError::NotEmpty(self.balance));
        }
        Ok(Some(Closed {}))
    }

    fn opened(&mut self, event: &Opened) {
        self.owner.clone_from(&event.owner);
        self.currency.clone_from(&event.currency);
    }

    fn deposited(&mut self, event: &Deposited) {
        self.balance += event.amount.cents;
    }

    fn withdrawn(&mut self, event: &Withdrawn, _envelope: &EventEnvelope<AccountEvent>) {
        self.balance -= event.cents;
    }

    fn closed(&mut self, _: &Closed) {
        self.closed = true;
    }
}

impl Account {
    /// An open account and a positive amount.
    fn check_usable(&self, cents: i64) -> Result<(), BankError> {
        if self.closed {
            Err(BankError::Closed)
        } else if cents <= 0 {
            Err(BankError::InvalidAmount(cents))
        } else {
            Ok(())
        }
    }
}

// --- domain: end

/// The aggregate type name the bank stores accounts under.
pub const ACCOUNT_TYPE: &str = <Account as Aggregate>::TYPE;
