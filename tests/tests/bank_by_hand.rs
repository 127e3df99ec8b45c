//! The bank domain written by hand against the runtime traits, next to the derived one in
//! `examples/bank`: both run the same script and must record the same events, reach the same
//! states and refuse with the same errors. Only `Money`, the errors, the services and the raw
//! JSON upcaster are shared; the commands, events, their payload structs and the aggregate
//! are written here as a user without the macros would write them. `tests/tests/lines.rs`
//! counts both.

use std::future::Future;

use bank::{BankError, BankServices, Money};
use cqrs_runtime::{
    Aggregate, CommandContext, CommandError, DecodeError, DomainEvent, EventEnvelope, EventStore,
    InMemoryStore, NewEvent, Repository, Snapshots,
};
use serde::{Deserialize, Serialize};

// --- by hand: begin (counted by `tests/tests/lines.rs`)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Open {
    owner: String,
    currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Deposit {
    cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Withdraw {
    cents: i64,
}

#[derive(Debug, Clone)]
enum HandCommand {
    Open(Open),
    Deposit(Deposit),
    Withdraw(Withdraw),
    Close,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Opened {
    owner: String,
    currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Deposited {
    amount: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DepositedV1 {
    euros: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DepositedV2 {
    cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Withdrawn {
    cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Closed {}

#[derive(Debug, Clone, PartialEq)]
enum HandEvent {
    Opened(Opened),
    Deposited(Deposited),
    Withdrawn(Withdrawn),
    Closed(Closed),
}

impl DomainEvent for HandEvent {
    const EVENT_TYPES: &'static [&'static str] =
        &["AccountOpened", "Deposited", "Withdrawn", "Closed"];

    fn event_type(&self) -> &'static str {
        match self {
            HandEvent::Opened(_) => "AccountOpened",
            HandEvent::Deposited(_) => "Deposited",
            HandEvent::Withdrawn(_) => "Withdrawn",
            HandEvent::Closed(_) => "Closed",
        }
    }

    fn event_version(&self) -> u32 {
        match self {
            HandEvent::Deposited(_) => 3,
            HandEvent::Withdrawn(_) => 2,
            _ => 1,
        }
    }

    fn encode(&self) -> Result<String, serde_json::Error> {
        match self {
            HandEvent::Opened(e) => serde_json::to_string(e),
            HandEvent::Deposited(e) => serde_json::to_string(e),
            HandEvent::Withdrawn(e) => serde_json::to_string(e),
            HandEvent::Closed(e) => serde_json::to_string(e),
        }
    }

    fn decode(event_type: &str, version: u32, payload: &str) -> Result<Self, DecodeError> {
        let bad = |e| DecodeError::payload(event_type, version, e);
        match event_type {
            "AccountOpened" | "Opened" => {
                DecodeError::check_version(event_type, version, 1)?;
                serde_json::from_str(payload)
                    .map(HandEvent::Opened)
                    .map_err(bad)
            }
            "Deposited" => {
                DecodeError::check_version(event_type, version, 3)?;
                let v2 = |v2: DepositedV2| Deposited {
                    amount: Money::eur(v2.cents),
                };
                let current = match version {
                    1 => {
                        let v1: DepositedV1 = serde_json::from_str(payload).map_err(bad)?;
                        v2(DepositedV2 {
                            cents: v1.euros * 100,
                        })
                    }
                    2 => v2(serde_json::from_str(payload).map_err(bad)?),
                    _ => serde_json::from_str(payload).map_err(bad)?,
                };
                Ok(HandEvent::Deposited(current))
            }
            "Withdrawn" => {
                DecodeError::check_version(event_type, version, 2)?;
                let current = if version == 1 {
                    let json = serde_json::from_str(payload).map_err(bad)?;
                    let json = bank::withdrawn_v1_to_v2(json)
                        .map_err(|e| DecodeError::upcast(event_type, 1, e))?;
                    serde_json::from_value(json)
                        .map_err(|e| DecodeError::payload(event_type, 2, e))?
                } else {
                    serde_json::from_str(payload).map_err(bad)?
                };
                Ok(HandEvent::Withdrawn(current))
            }
            "Closed" => {
                DecodeError::check_version(event_type, version, 1)?;
                serde_json::from_str(payload)
                    .map(HandEvent::Closed)
                    .map_err(bad)
            }
            other => Err(DecodeError::unknown_type(other, Self::EVENT_TYPES)),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct HandAccount {
    owner: String,
    currency: String,
    balance: i64,
    closed: bool,
}

impl HandAccount {
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

impl Aggregate for HandAccount {
    const TYPE: &'static str = "bank_account";
    type Id = String;
    type Command = HandCommand;
    type Event = HandEvent;
    type Error = BankError;
    type Services = BankServices;

    fn initial() -> Self {
        Self::default()
    }

    fn handle(
        &self,
        command: HandCommand,
        cx: &CommandContext<'_, Self>,
    ) -> impl Future<Output = Result<Vec<HandEvent>, BankError>> + Send {
        let limit = cx.services().withdrawal_limit;
        let decided = (|| match command {
            HandCommand::Open(_) if cx.exists() => Err(BankError::AlreadyOpen),
            HandCommand::Open(cmd) => Ok(vec![HandEvent::Opened(Opened {
                owner: cmd.owner,
                currency: cmd.currency,
            })]),
            _ if !cx.exists() => Err(BankError::NotOpen),
            HandCommand::Deposit(cmd) => {
                self.check_usable(cmd.cents)?;
                Ok(vec![HandEvent::Deposited(Deposited {
                    amount: Money {
                        cents: cmd.cents,
                        currency: self.currency.clone(),
                    },
                })])
            }
            HandCommand::Withdraw(cmd) => {
                self.check_usable(cmd.cents)?;
                if cmd.cents > limit {
                    return Err(BankError::AboveLimit {
                        limit,
                        requested: cmd.cents,
                    });
                }
                if cmd.cents > self.balance {
                    return Err(BankError::InsufficientFunds {
                        balance: self.balance,
                        requested: cmd.cents,
                    });
                }
                Ok(vec![HandEvent::Withdrawn(Withdrawn { cents: cmd.cents })])
            }
            HandCommand::Close if self.closed => Ok(vec![]),
            HandCommand::Close => {
                if self.balance != 0 {
                    return Err(BankError::NotEmpty(self.balance));
                }
                Ok(vec![HandEvent::Closed(Closed {})])
            }
        })();
        std::future::ready(decided)
    }

    fn apply(&mut self, envelope: &EventEnvelope<HandEvent>) {
        match &envelope.event {
            HandEvent::Opened(e) => {
                self.owner.clone_from(&e.owner);
                self.currency.clone_from(&e.currency);
            }
            HandEvent::Deposited(e) => self.balance += e.amount.cents,
            HandEvent::Withdrawn(e) => self.balance -= e.cents,
            HandEvent::Closed(_) => self.closed = true,
        }
    }

    fn snapshots() -> Option<Snapshots<Self>> {
        Some(Snapshots::json(50, 0x6261_6e6b))
    }
}
// --- by hand: end

/// One step of the script, as both versions' commands.
fn script() -> Vec<(bank::AccountCommand, HandCommand)> {
    use bank::AccountCommand as M;
    let open = || {
        (
            M::Open {
                owner: "ada".into(),
                currency: "EUR".into(),
            },
            HandCommand::Open(Open {
                owner: "ada".into(),
                currency: "EUR".into(),
            }),
        )
    };
    let deposit = |cents| {
        (
            M::Deposit { cents },
            HandCommand::Deposit(Deposit { cents }),
        )
    };
    let withdraw = |cents| {
        (
            M::Withdraw { cents },
            HandCommand::Withdraw(Withdraw { cents }),
        )
    };
    let mut steps = vec![deposit(5), open(), open()];
    for cents in [100, -3, 0, 2_000_000, 250, 40] {
        steps.push(deposit(cents));
        steps.push(withdraw(cents));
    }
    for cents in [1, 20_000, 1_500_000] {
        steps.push(withdraw(cents));
    }
    steps.push((M::Close {}, HandCommand::Close));
    steps.push(withdraw(1));
    steps.push(deposit(1));
    steps
}

/// What a step did, in a form both versions share: the stored rows, or the error's text.
fn observed<E: DomainEvent, Err: std::fmt::Display>(
    result: Result<Vec<EventEnvelope<E>>, CommandError<Err>>,
) -> Result<Vec<(String, u32, u64, String)>, String> {
    result
        .map(|events| {
            events
                .iter()
                .map(|e| {
                    (
                        e.event_type.clone(),
                        e.event_version,
                        e.sequence,
                        e.event.encode().unwrap(),
                    )
                })
                .collect()
        })
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn derived_and_hand_written_domains_behave_identically() {
    let derived = Repository::<bank::Account, _>::new(InMemoryStore::new());
    let by_hand = Repository::<HandAccount, _>::new(InMemoryStore::new());
    let id = "acc-1".to_owned();
    let mut rejected = 0;
    for (step, (macro_cmd, hand_cmd)) in script().into_iter().enumerate() {
        let a = observed(derived.execute(&id, macro_cmd).await.map(|c| c.events));
        let b = observed(by_hand.execute(&id, hand_cmd).await.map(|c| c.events));
        assert_eq!(a, b, "step {step}: the two versions disagree");
        rejected += usize::from(a.is_err());
        let (sa, sb) = (
            derived.load(&id).await.unwrap(),
            by_hand.load(&id).await.unwrap(),
        );
        let (sa, sb) = (sa.state(), sb.state());
        assert_eq!(
            (&sa.owner, &sa.currency, sa.balance, sa.closed),
            (&sb.owner, &sb.currency, sb.balance, sb.closed),
            "step {step}: states differ"
        );
    }
    assert!(
        rejected >= 8,
        "the script exercises the errors ({rejected} rejected)"
    );
}

#[tokio::test]
async fn both_read_the_same_old_rows_the_same_way() {
    let rows = [
        ("Opened", 1, r#"{"owner":"ada","currency":"EUR"}"#),
        ("Deposited", 1, r#"{"euros":12}"#),
        ("Deposited", 2, r#"{"cents":345}"#),
        ("Withdrawn", 1, r#"{"sum":50}"#),
        ("Withdrawn", 2, r#"{"cents":100}"#),
    ];
    let store = InMemoryStore::new();
    let new_events: Vec<NewEvent> = rows
        .iter()
        .map(|(event_type, event_version, payload)| {
            NewEvent::raw(event_type, *event_version, payload.parse().unwrap())
        })
        .collect();
    store
        .append("bank_account", "old", 0, &new_events)
        .await
        .unwrap();
    let derived = Repository::<bank::Account, _>::new(store.clone())
        .load(&"old".into())
        .await
        .unwrap();
    let by_hand = Repository::<HandAccount, _>::new(store)
        .load(&"old".into())
        .await
        .unwrap();
    assert_eq!(derived.state().balance, 1200 + 345 - 50 - 100);
    assert_eq!(derived.state().balance, by_hand.state().balance);
    assert_eq!(derived.version(), by_hand.version());
}
