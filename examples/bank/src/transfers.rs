//! Transfers between accounts: a `Transfer` aggregate records the request and its end, and the
//! `Transfers` process manager moves the money: it withdraws from one account, deposits into
//! the other, and completes the transfer; a refused withdrawal refunds it (nothing moved), a
//! refused deposit or a deposit still missing at the deadline puts the money back first.
//!
//! The manager finds a transfer's instance from the account events it caused by their command
//! ids, which carry the instance (`transfers/<transfer id>/...`): no field of the account's
//! events needs to know about transfers.

use std::time::Duration;

use cqrs_runtime::process::{Effects, Refused};
use cqrs_runtime::{Aggregate, Command, Event, StoredEvent, handlers, process_manager};
use serde::{Deserialize, Serialize};

use crate::{Account, Deposit, Deposited, Withdraw, Withdrawn};

/// Transfers are identified by a string such as `"t-1"`.
pub type TransferId = String;

/// What a transfer can be asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Command)]
pub enum TransferCommand {
    /// Move `cents` from one account to another.
    Request {
        /// The account debited.
        from: String,
        /// The account credited.
        to: String,
        /// How much, in cents.
        cents: i64,
    },
    /// The money arrived.
    Complete {},
    /// The transfer failed; any money taken was put back.
    Refund {
        /// Why.
        reason: String,
    },
}

/// What happened to a transfer.
#[derive(Debug, Clone, PartialEq, Event)]
pub enum TransferEvent {
    /// A transfer was asked for.
    Requested {
        /// The account debited.
        from: String,
        /// The account credited.
        to: String,
        /// How much, in cents.
        cents: i64,
    },
    /// The money arrived.
    Completed {},
    /// It failed, and nothing stayed moved.
    Refunded {
        /// Why.
        reason: String,
    },
}

/// Why a transfer refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// `Request` on a transfer that exists.
    #[error("transfer already requested")]
    AlreadyRequested,
    /// Any other command on a transfer never requested.
    #[error("no such transfer")]
    Unknown,
    /// From and to are the same account, or the amount is not positive.
    #[error("a transfer moves a positive amount between two accounts")]
    Invalid,
}

/// A transfer: requested, then completed or refunded.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(
    rename = "transfer",
    id = TransferId,
    command = TransferCommand,
    event = TransferEvent,
    error = TransferError,
    missing = TransferError::Unknown,
    exists = TransferError::AlreadyRequested
)]
pub struct Transfer {
    /// The account debited.
    pub from: String,
    /// The account credited.
    pub to: String,
    /// How much, in cents.
    pub cents: i64,
    /// Completed or refunded.
    pub ended: Option<Ending>,
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ending {
    /// The money arrived.
    Completed,
    /// It failed, and the money (if taken) was put back.
    Refunded(String),
}

#[handlers]
impl Transfer {
    #[create]
    fn request(&self, cmd: Request) -> Result<Requested, TransferError> {
        if cmd.from == cmd.to || cmd.cents <= 0 {
            return Err(TransferError::Invalid);
        }
        Ok(Requested {
            from: cmd.from,
            to: cmd.to,
            cents: cmd.cents,
        })
    }

    /// Ending an ended transfer records nothing: the manager may ask twice.
    fn complete(&self, _: Complete) -> Option<Completed> {
        self.ended.is_none().then_some(Completed {})
    }

    fn refund(&self, cmd: Refund) -> Option<Refunded> {
        self.ended
            .is_none()
            .then_some(Refunded { reason: cmd.reason })
    }

    fn requested(&mut self, event: &Requested) {
        self.from.clone_from(&event.from);
        self.to.clone_from(&event.to);
        self.cents = event.cents;
    }

    fn completed(&mut self, _: &Completed) {
        self.ended = Some(Ending::Completed);
    }

    fn refunded(&mut self, event: &Refunded) {
        self.ended = Some(Ending::Refunded(event.reason.clone()));
    }
}

/// The process manager that carries transfers out, and its configuration: a deposit missing
/// after `timeout` is given up, the money goes back and the transfer is refunded.
#[derive(Debug, Clone, Copy)]
pub struct Transfers {
    /// How long the credit may take.
    pub timeout: Duration,
}

impl Default for Transfers {
    fn default() -> Self {
        Transfers {
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// Where a transfer stands: the state of one instance of [`Transfers`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferState {
    /// The account debited.
    pub from: String,
    /// The account credited.
    pub to: String,
    /// How much, in cents.
    pub cents: i64,
    /// The step reached.
    pub step: Step,
}

/// The steps of a transfer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// Asked for; the withdrawal is sent.
    #[default]
    Requested,
    /// The money left `from`; the deposit is sent.
    Withdrawn,
    /// The money arrived; the transfer is being completed.
    Deposited,
    /// The money is going back to `from`, for this reason.
    Returning(String),
    /// The transfer is being refunded, for this reason.
    Refunding(String),
}

// An account event finds its transfer through the command that recorded it (`caused`): its
// idempotency key names the instance, so no field of the account's events needs to know about
// transfers. Account events no transfer caused are ignored.
#[process_manager(
    manager = Transfers,
    aggregates(Transfer, Account),
    sends(Account, Transfer)
)]
impl TransferState {
    #[start]
    fn requested(&mut self, event: &Requested) {
        *self = TransferState {
            from: event.from.clone(),
            to: event.to.clone(),
            cents: event.cents,
            step: Step::Requested,
        };
    }

    fn withdraw(&self, _: &Requested, effects: &mut Effects<Self>, transfers: &Transfers) {
        effects.send(self.from.clone(), Withdraw { cents: self.cents });
        effects.schedule("credit", transfers.timeout);
    }

    #[existing(caused)]
    fn withdrawn(&mut self, _: &Withdrawn) {
        if self.step == Step::Requested {
            self.step = Step::Withdrawn;
        }
    }

    fn deposit(&self, _: &Withdrawn, effects: &mut Effects<Self>) {
        if self.step == Step::Withdrawn {
            effects.send(self.to.clone(), Deposit { cents: self.cents });
        }
    }

    /// A deposit into `to` is the credit; into `from`, the money given back.
    #[existing(caused)]
    fn deposited(&mut self, _: &Deposited, envelope: &StoredEvent) {
        self.step = match std::mem::take(&mut self.step) {
            _ if envelope.aggregate_id == self.to => Step::Deposited,
            Step::Returning(reason) => Step::Refunding(reason),
            _ => Step::Refunding("the money was returned".to_owned()),
        };
    }

    fn end(&self, _: &Deposited, effects: &mut Effects<Self>) {
        let transfer = effects.instance().to_owned();
        match &self.step {
            Step::Deposited => {
                effects.cancel("credit");
                effects.send(transfer, Complete {});
            }
            Step::Refunding(reason) => {
                let reason = reason.clone();
                effects.send(transfer, Refund { reason });
            }
            _ => {}
        }
    }

    fn completed(&self, _: &Completed, effects: &mut Effects<Self>) {
        effects.complete();
    }

    fn refunded(&self, _: &Refunded, effects: &mut Effects<Self>) {
        effects.complete();
    }

    #[deadline("credit")]
    fn credit_missing(&mut self, effects: &mut Effects<Self>, transfers: &Transfers) {
        if self.step == Step::Withdrawn {
            let reason = format!("the credit did not happen within {:?}", transfers.timeout);
            self.give_back(reason, effects);
        }
    }

    #[refused]
    fn refused(&mut self, refused: &Refused, effects: &mut Effects<Self>) {
        match refused.command_name {
            // Nothing moved: refund at once.
            "Withdraw" => {
                let reason = format!("{} refused the debit: {}", self.from, refused.reason);
                self.step = Step::Refunding(reason.clone());
                effects.cancel("credit");
                let transfer = effects.instance().to_owned();
                effects.send(transfer, Refund { reason });
            }
            "Deposit" if refused.aggregate_id == self.to => {
                let reason = format!("{} refused the credit: {}", self.to, refused.reason);
                self.give_back(reason, effects);
            }
            _ => {}
        }
    }
}

impl TransferState {
    /// Puts the money back into `from`; its deposit then refunds the transfer.
    fn give_back(&mut self, reason: String, effects: &mut Effects<Self>) {
        self.step = Step::Returning(reason);
        effects.cancel("credit");
        effects.send(self.from.clone(), Deposit { cents: self.cents });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Money;
    use cqrs_runtime::ProcessTest;

    fn transfer() -> TransferEvent {
        TransferEvent::Requested {
            from: "a".into(),
            to: "b".into(),
            cents: 500,
        }
    }

    #[test]
    fn a_transfer_withdraws_deposits_and_completes() {
        ProcessTest::new(Transfers::default())
            .when::<Transfer>("t-1", transfer())
            .then_expect_commands::<Account>([("a", Withdraw { cents: 500 })])
            .then_expect_deadline("t-1", "credit", Duration::from_secs(1800))
            .when_applied::<Account>("a", Withdrawn { cents: 500 })
            .then_expect_commands::<Account>([("b", Deposit { cents: 500 })])
            .when_applied::<Account>(
                "b",
                Deposited {
                    amount: Money::eur(500),
                },
            )
            .then_expect_commands::<Transfer>([("t-1", Complete {})])
            .then_expect_no_deadline("t-1", "credit")
            .when::<Transfer>("t-1", TransferEvent::Completed {})
            .then_completed("t-1");
    }

    #[test]
    fn a_refused_debit_refunds_at_once() {
        ProcessTest::new(Transfers::default())
            .when::<Transfer>("t-1", transfer())
            .when_refused::<Account>("a", "insufficient funds")
            .then_expect_commands::<Transfer>([(
                "t-1",
                Refund {
                    reason: "a refused the debit: insufficient funds".into(),
                },
            )])
            .then_expect_no_deadline("t-1", "credit");
    }

    #[test]
    fn a_refused_credit_gives_the_money_back_then_refunds() {
        ProcessTest::new(Transfers::default())
            .when::<Transfer>("t-1", transfer())
            .when_applied::<Account>("a", Withdrawn { cents: 500 })
            .when_refused::<Account>("b", "account closed")
            .then_expect_commands::<Account>([("a", Deposit { cents: 500 })])
            .when_applied::<Account>(
                "a",
                Deposited {
                    amount: Money::eur(500),
                },
            )
            .then_expect_commands::<Transfer>([(
                "t-1",
                Refund {
                    reason: "b refused the credit: account closed".into(),
                },
            )]);
    }

    #[test]
    fn a_missing_credit_is_given_back_at_the_deadline() {
        ProcessTest::new(Transfers {
            timeout: Duration::from_secs(60),
        })
        .when::<Transfer>("t-1", transfer())
        .when_applied::<Account>("a", Withdrawn { cents: 500 })
        .advance(Duration::from_secs(59))
        .then_expect_no_commands()
        .advance(Duration::from_secs(2))
        .then_expect_commands::<Account>([("a", Deposit { cents: 500 })])
        .when_applied::<Account>(
            "a",
            Deposited {
                amount: Money::eur(500),
            },
        )
        .then_expect_commands::<Transfer>([(
            "t-1",
            Refund {
                reason: "the credit did not happen within 60s".into(),
            },
        )]);
    }

    #[test]
    fn events_it_did_not_cause_are_ignored() {
        ProcessTest::new(Transfers::default())
            .when::<Transfer>("t-1", transfer())
            .when::<Account>("a", Withdrawn { cents: 500 })
            .then_expect_no_commands()
            .then_state("t-1", |s| assert_eq!(s.step, Step::Requested));
    }
}
