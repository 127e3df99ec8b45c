//! The reference domain: a bank account, written with the cargo-cqrs macros.
//!
//! It shows every feature a real domain meets:
//! - commands routed to sync and async handlers, one of them using injected services and one
//!   the command context (to tell "never opened" from "opened");
//! - an event renamed after data was stored (`AccountOpened`, once stored as `Opened`);
//! - an event that evolved v1 -> v2 -> v3 (`MoneyDeposited`), with a `From` hop and a named
//!   function hop, and one that evolved through a raw JSON upcaster (`MoneyWithdrawn`);
//! - snapshots every 50 events.

mod projections;
pub mod public;

pub use projections::{AccountSummaries, AccountSummary, DailyTotal, DailyTotals};

use cqrs_runtime::{Aggregate, Command, CommandContext, Event, EventEnvelope, handlers};
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

// ---------------------------------------------------------------------------------- commands

/// Open a new account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OpenAccount {
    /// Who owns it.
    pub owner: String,
    /// The account's currency.
    pub currency: String,
}

/// Put money in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Deposit {
    /// In cents of the account's currency.
    pub cents: i64,
}

/// Take money out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Withdraw {
    /// In cents of the account's currency.
    pub cents: i64,
}

/// Close the account; it must be empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CloseAccount {}

/// Everything an account can be asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Command)]
pub enum AccountCommand {
    /// See [`OpenAccount`].
    Open(OpenAccount),
    /// See [`Deposit`].
    Deposit(Deposit),
    /// See [`Withdraw`].
    Withdraw(Withdraw),
    /// See [`CloseAccount`].
    Close(CloseAccount),
}

// ------------------------------------------------------------------------------------ events

/// An account was opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AccountOpened {
    /// Who owns it.
    pub owner: String,
    /// Its currency.
    pub currency: String,
}

/// Money came in (version 3: the amount carries its currency).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MoneyDeposited {
    /// How much.
    pub amount: Money,
}

/// Version 1 of `MoneyDeposited`: whole euros.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MoneyDepositedV1 {
    /// Whole euros.
    pub euros: i64,
}

/// Version 2 of `MoneyDeposited`: cents, still implicitly euros.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MoneyDepositedV2 {
    /// Euro cents.
    pub cents: i64,
}

impl From<MoneyDepositedV1> for MoneyDepositedV2 {
    fn from(v1: MoneyDepositedV1) -> Self {
        MoneyDepositedV2 {
            cents: v1.euros * 100,
        }
    }
}

/// The v2 -> v3 hop: amounts before v3 were all in euros.
pub fn deposited_v2_to_v3(v2: MoneyDepositedV2) -> MoneyDeposited {
    MoneyDeposited {
        amount: Money::eur(v2.cents),
    }
}

/// Money went out (version 2: `cents`; version 1 called the field `sum`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MoneyWithdrawn {
    /// In cents of the account's currency.
    pub cents: i64,
}

/// The v1 -> v2 hop of `MoneyWithdrawn`, on the raw JSON: the field `sum` became `cents`.
pub fn withdrawn_v1_to_v2(
    mut json: serde_json::Value,
) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
    let object = json
        .as_object_mut()
        .ok_or("MoneyWithdrawn v1 is not a JSON object")?;
    let sum = object
        .remove("sum")
        .ok_or("MoneyWithdrawn v1 has no `sum` field")?;
    object.insert("cents".to_owned(), sum);
    Ok(json)
}

/// The account was closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AccountClosed {}

/// Everything that can happen to an account.
#[derive(Debug, Clone, PartialEq, Event)]
pub enum AccountEvent {
    /// Stored as `AccountOpened`; code before 0.2 stored it as `Opened`.
    #[event(rename = "AccountOpened", alias = "Opened")]
    Opened(AccountOpened),
    /// At version 3; versions 1 and 2 are read through the upcast chain.
    #[event(version = 3, upcast(
        v1 = MoneyDepositedV1,
        v2(ty = MoneyDepositedV2, with = deposited_v2_to_v3),
    ))]
    Deposited(MoneyDeposited),
    /// At version 2; version 1 is upgraded on the raw JSON.
    #[event(version = 2, upcast(v1(json = withdrawn_v1_to_v2)))]
    Withdrawn(MoneyWithdrawn),
    /// The account was closed.
    Closed(AccountClosed),
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

/// The state of an account, rebuilt from its events.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(
    rename = "bank_account",
    id = AccountId,
    command = AccountCommand,
    event = AccountEvent,
    error = BankError,
    services = BankServices,
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
    fn open(
        &self,
        cmd: OpenAccount,
        cx: &CommandContext<Self>,
    ) -> Result<AccountOpened, BankError> {
        if cx.exists() {
            return Err(BankError::AlreadyOpen);
        }
        Ok(AccountOpened {
            owner: cmd.owner,
            currency: cmd.currency,
        })
    }

    fn deposit(
        &self,
        cmd: Deposit,
        cx: &CommandContext<Self>,
    ) -> Result<MoneyDeposited, BankError> {
        self.check_usable(cx)?;
        positive(cmd.cents)?;
        Ok(MoneyDeposited {
            amount: Money {
                cents: cmd.cents,
                currency: self.currency.clone(),
            },
        })
    }

    async fn withdraw(
        &self,
        cmd: Withdraw,
        services: &BankServices,
    ) -> Result<MoneyWithdrawn, BankError> {
        if self.owner.is_empty() {
            return Err(BankError::NotOpen);
        }
        if self.closed {
            return Err(BankError::Closed);
        }
        positive(cmd.cents)?;
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
        Ok(MoneyWithdrawn { cents: cmd.cents })
    }

    fn close(
        &self,
        _cmd: CloseAccount,
        cx: &CommandContext<Self>,
    ) -> Result<Option<AccountEvent>, BankError> {
        if self.closed {
            // Closing twice is allowed and records nothing.
            return Ok(None);
        }
        self.check_usable(cx)?;
        if self.balance != 0 {
            return Err(BankError::NotEmpty(self.balance));
        }
        Ok(Some(AccountClosed {}.into()))
    }

    fn opened(&mut self, event: &AccountOpened) {
        self.owner.clone_from(&event.owner);
        self.currency.clone_from(&event.currency);
    }

    fn deposited(&mut self, event: &MoneyDeposited) {
        self.balance += event.amount.cents;
    }

    fn withdrawn(&mut self, event: &MoneyWithdrawn, _envelope: &EventEnvelope<AccountEvent>) {
        self.balance -= event.cents;
    }

    fn closed(&mut self, _event: &AccountClosed) {
        self.closed = true;
    }
}

impl Account {
    fn check_usable(&self, cx: &CommandContext<Self>) -> Result<(), BankError> {
        if !cx.exists() {
            Err(BankError::NotOpen)
        } else if self.closed {
            Err(BankError::Closed)
        } else {
            Ok(())
        }
    }
}

fn positive(cents: i64) -> Result<(), BankError> {
    if cents > 0 {
        Ok(())
    } else {
        Err(BankError::InvalidAmount(cents))
    }
}

/// The aggregate type name the bank stores accounts under.
pub const ACCOUNT_TYPE: &str = <Account as Aggregate>::TYPE;
