//! The README tour's domain, so that the README's later blocks (each a doctest of its own) can
//! use it with one hidden `use` line. `tests/tests/lines.rs` checks that the README's domain
//! block is this file's code, line for line. Not part of the API.
#![allow(missing_docs)]

// --- tour: begin
use cqrs_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Command)]
pub enum AccountCommand {
    Open { owner: String },
    Deposit { cents: i64 },
    Withdraw { cents: i64 },
}

#[derive(Debug, Clone, PartialEq, Event)]
pub enum AccountEvent {
    /// Stored as `AccountOpened`; older code stored it as `Opened`.
    #[event(rename = "AccountOpened", alias = "Opened")]
    Opened {
        owner: String,
    },
    /// Version 1 counted whole euros.
    #[event(version = 2, upcast(v1 { euros: i64 } => |v1| Deposited { cents: v1.euros * 100 }))]
    Deposited {
        cents: i64,
    },
    Withdrawn {
        cents: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    #[error("account already open")]
    AlreadyOpen,
    #[error("account not open")]
    NotOpen,
    #[error("amount must be positive")]
    NotPositive,
    #[error("balance {balance} is below {requested}")]
    InsufficientFunds { balance: i64, requested: i64 },
    #[error("above the limit of {0}")]
    AboveLimit(i64),
}

/// What handlers may consult, injected into the repository.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_withdrawal: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_withdrawal: 100_000,
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, Aggregate)]
#[aggregate(
    rename = "bank_account",
    command = AccountCommand,
    event = AccountEvent,
    error = BankError,
    services = Limits,
    missing = BankError::NotOpen,
    exists = BankError::AlreadyOpen,
    snapshot_every = 50
)]
pub struct Account {
    pub owner: String,
    pub balance: i64,
}

#[handlers]
impl Account {
    // `&self` methods handle commands: sync or async, infallible or returning a `Result`.
    #[create]
    fn open(&self, cmd: Open) -> Opened {
        Opened { owner: cmd.owner }
    }

    fn deposit(&self, cmd: Deposit) -> Result<Deposited, BankError> {
        if cmd.cents <= 0 {
            return Err(BankError::NotPositive);
        }
        Ok(Deposited { cents: cmd.cents })
    }

    async fn withdraw(&self, cmd: Withdraw, limits: &Limits) -> Result<Withdrawn, BankError> {
        if cmd.cents > limits.max_withdrawal {
            return Err(BankError::AboveLimit(limits.max_withdrawal));
        }
        if cmd.cents > self.balance {
            let (balance, requested) = (self.balance, cmd.cents);
            return Err(BankError::InsufficientFunds { balance, requested });
        }
        Ok(Withdrawn { cents: cmd.cents })
    }

    // `&mut self` methods apply events; they cannot fail.
    fn opened(&mut self, event: &Opened) {
        self.owner.clone_from(&event.owner);
    }

    fn deposited(&mut self, event: &Deposited) {
        self.balance += event.cents;
    }

    fn withdrawn(&mut self, event: &Withdrawn) {
        self.balance -= event.cents;
    }
}
// --- tour: end
