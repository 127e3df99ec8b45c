//! The bank domain written by hand against the runtime traits, next to the derived one in
//! `examples/bank`: both run the same script and must record the same events, reach the same
//! states and refuse with the same errors. The payload types, commands and errors are shared;
//! what differs is exactly what the macros generate.

use std::future::Future;

use bank::{
    AccountClosed, AccountOpened, BankError, BankServices, CloseAccount, Deposit, Money,
    MoneyDeposited, MoneyDepositedV1, MoneyDepositedV2, MoneyWithdrawn, OpenAccount, Withdraw,
};
use cqrs_runtime::{
    Aggregate, CommandContext, CommandError, DecodeError, DomainEvent, EventEnvelope, EventStore,
    InMemoryStore, Metadata, NewEvent, Repository, Snapshots,
};

// --- by hand: begin (counted in the closing note)
#[derive(Debug, Clone, PartialEq)]
enum HandEvent {
    Opened(AccountOpened),
    Deposited(MoneyDeposited),
    Withdrawn(MoneyWithdrawn),
    Closed(AccountClosed),
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
                let current = match version {
                    1 => {
                        let v1: MoneyDepositedV1 = serde_json::from_str(payload).map_err(bad)?;
                        bank::deposited_v2_to_v3(MoneyDepositedV2::from(v1))
                    }
                    2 => bank::deposited_v2_to_v3(serde_json::from_str(payload).map_err(bad)?),
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

#[derive(Debug, Clone)]
enum HandCommand {
    Open(OpenAccount),
    Deposit(Deposit),
    Withdraw(Withdraw),
    Close(CloseAccount),
}

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct HandAccount {
    owner: String,
    currency: String,
    balance: i64,
    closed: bool,
}

impl Aggregate for HandAccount {
    const TYPE: &'static str = "bank_account";
    type Id = String;
    type Command = HandCommand;
    type Event = HandEvent;
    type Error = BankError;
    type Services = BankServices;

    fn handle(
        &self,
        command: HandCommand,
        cx: &CommandContext<'_, Self>,
    ) -> impl Future<Output = Result<Vec<HandEvent>, BankError>> + Send {
        let usable = || match (cx.exists(), self.closed) {
            (false, _) => Err(BankError::NotOpen),
            (true, true) => Err(BankError::Closed),
            _ => Ok(()),
        };
        let positive = |cents: i64| {
            if cents > 0 {
                Ok(())
            } else {
                Err(BankError::InvalidAmount(cents))
            }
        };
        let limit = cx.services().withdrawal_limit;
        let decided = (|| match command {
            HandCommand::Open(cmd) if cx.exists() => {
                let _ = cmd;
                Err(BankError::AlreadyOpen)
            }
            HandCommand::Open(cmd) => Ok(vec![HandEvent::Opened(AccountOpened {
                owner: cmd.owner,
                currency: cmd.currency,
            })]),
            HandCommand::Deposit(cmd) => {
                usable()?;
                positive(cmd.cents)?;
                Ok(vec![HandEvent::Deposited(MoneyDeposited {
                    amount: Money {
                        cents: cmd.cents,
                        currency: self.currency.clone(),
                    },
                })])
            }
            HandCommand::Withdraw(cmd) => {
                if self.owner.is_empty() {
                    return Err(BankError::NotOpen);
                }
                if self.closed {
                    return Err(BankError::Closed);
                }
                positive(cmd.cents)?;
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
                Ok(vec![HandEvent::Withdrawn(MoneyWithdrawn {
                    cents: cmd.cents,
                })])
            }
            HandCommand::Close(_) if self.closed => Ok(vec![]),
            HandCommand::Close(_) => {
                usable()?;
                if self.balance != 0 {
                    return Err(BankError::NotEmpty(self.balance));
                }
                Ok(vec![HandEvent::Closed(AccountClosed {})])
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
    let open = OpenAccount {
        owner: "ada".into(),
        currency: "EUR".into(),
    };
    let mut steps = vec![
        (
            M::Deposit(Deposit { cents: 5 }),
            HandCommand::Deposit(Deposit { cents: 5 }),
        ),
        (M::Open(open.clone()), HandCommand::Open(open.clone())),
        (M::Open(open.clone()), HandCommand::Open(open)),
    ];
    for cents in [100, -3, 0, 2_000_000, 250, 40] {
        steps.push((
            M::Deposit(Deposit { cents }),
            HandCommand::Deposit(Deposit { cents }),
        ));
        steps.push((
            M::Withdraw(Withdraw { cents }),
            HandCommand::Withdraw(Withdraw { cents }),
        ));
    }
    for cents in [1, 20_000, 1_500_000] {
        steps.push((
            M::Withdraw(Withdraw { cents }),
            HandCommand::Withdraw(Withdraw { cents }),
        ));
    }
    steps.push((
        M::Close(CloseAccount {}),
        HandCommand::Close(CloseAccount {}),
    ));
    steps.push((
        M::Withdraw(Withdraw { cents: 1 }),
        HandCommand::Withdraw(Withdraw { cents: 1 }),
    ));
    steps.push((
        M::Deposit(Deposit { cents: 1 }),
        HandCommand::Deposit(Deposit { cents: 1 }),
    ));
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
        .map(|(event_type, event_version, payload)| NewEvent {
            event_id: uuid::Uuid::now_v7(),
            event_type,
            event_version: *event_version,
            payload: (*payload).to_owned(),
            metadata: Metadata::default(),
            recorded_at: chrono::Utc::now(),
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
