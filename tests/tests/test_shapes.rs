//! The domain shapes of Macros v2, end to end: named-field command and event variants (mixed
//! with newtype ones), an older version declared as a field list with a closure hop, existence
//! declared once (`#[create]`, `#[upsert]`, `missing`/`exists`), infallible handlers, a
//! projection handler for every event, payloads in given/when/then, and raw rows for fixtures.

use std::sync::{Arc, Mutex};

use cqrs_runtime::NewEvent;
use cqrs_runtime::prelude::*;
use cqrs_runtime::projection::MemoryTarget;
use cqrs_runtime::schema::{DescribeEvents, Upcast};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Command)]
pub enum CardCommand {
    /// Register a library card.
    Register {
        name: String,
        max_loans: u32,
    },
    Borrow {
        book: String,
    },
    Return(ReturnBook),
    Rename {
        name: String,
    },
    Touch,
}

/// A newtype variant's own struct, beside generated ones.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ReturnBook {
    pub book: String,
}

#[derive(Debug, Clone, PartialEq, Event)]
#[event(derive(PartialEq, Eq), attr(serde(deny_unknown_fields)))]
pub enum CardEvent {
    /// A card was registered.
    Registered {
        name: String,
        /// Defaults to 3 for rows written before the field existed.
        #[serde(default = "three")]
        max_loans: u32,
    },
    #[event(version = 2, upcast(v1 { book_id: String } => |v1| Borrowed { book: v1.book_id, days: 14 }))]
    Borrowed {
        book: String,
        days: u32,
    },
    Returned(BookReturned),
    Renamed {
        name: String,
    },
    Touched,
}

fn three() -> u32 {
    3
}

#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct BookReturned {
    pub book: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("no such card")]
    NotRegistered,
    #[error("card already registered")]
    AlreadyRegistered,
    #[error("{0} is not on loan")]
    NotOnLoan(String),
}

#[derive(Debug, Default, Clone, Aggregate)]
#[aggregate(
    command = CardCommand,
    event = CardEvent,
    error = CardError,
    missing = CardError::NotRegistered,
    exists = CardError::AlreadyRegistered
)]
pub struct Card {
    name: String,
    loans: Vec<String>,
    touched: u32,
}

#[handlers]
impl Card {
    #[create]
    fn register(&self, cmd: Register) -> Registered {
        Registered {
            name: cmd.name,
            max_loans: cmd.max_loans,
        }
    }

    fn borrow(&self, cmd: Borrow) -> Borrowed {
        Borrowed {
            book: cmd.book,
            days: 21,
        }
    }

    fn return_book(&self, cmd: ReturnBook) -> Result<BookReturned, CardError> {
        if !self.loans.contains(&cmd.book) {
            return Err(CardError::NotOnLoan(cmd.book));
        }
        Ok(BookReturned { book: cmd.book })
    }

    #[upsert]
    fn rename(&self, cmd: Rename, cx: &CommandContext<Self>) -> Vec<CardEvent> {
        if cx.exists() {
            vec![Renamed { name: cmd.name }.into()]
        } else {
            vec![
                Registered {
                    name: cmd.name,
                    max_loans: 3,
                }
                .into(),
            ]
        }
    }

    fn touch(&self, _: Touch) -> (Touched, Touched) {
        (Touched {}, Touched {})
    }

    fn registered(&mut self, e: &Registered) {
        self.name.clone_from(&e.name);
    }

    fn borrowed(&mut self, e: &Borrowed) {
        self.loans.push(e.book.clone());
    }

    fn returned(&mut self, e: &BookReturned) {
        self.loans.retain(|b| *b != e.book);
    }

    fn renamed(&mut self, e: &Renamed) {
        self.name.clone_from(&e.name);
    }

    fn touched(&mut self, _: &Touched) {
        self.touched += 1;
    }
}

fn register() -> Register {
    Register {
        name: "Ada".into(),
        max_loans: 5,
    }
}

#[test]
fn a_generated_payload_is_stored_as_the_same_struct_written_by_hand() {
    #[derive(serde::Serialize)]
    struct ByHand {
        name: String,
        max_loans: u32,
    }
    let generated = CardEvent::from(Registered {
        name: "Ada".into(),
        max_loans: 5,
    });
    let by_hand = ByHand {
        name: "Ada".into(),
        max_loans: 5,
    };
    assert_eq!(
        generated.encode().unwrap(),
        serde_json::to_string(&by_hand).unwrap()
    );
    assert_eq!(generated.event_type(), "Registered");
    assert_eq!(CardEvent::from(Touched {}).encode().unwrap(), "{}");
    // A unit variant's struct is also a value, the same one.
    assert_eq!(CardEvent::from(Touched).encode().unwrap(), "{}");
    assert_eq!(
        CardEvent::decode("Touched", 1, "{}").unwrap(),
        CardEvent::Touched
    );
}

#[test]
fn field_attributes_and_enum_level_attributes_reach_the_payload() {
    // `#[serde(default)]` on the variant's field.
    let decoded = CardEvent::decode("Registered", 1, r#"{"name":"Ada"}"#).unwrap();
    assert_eq!(
        decoded,
        CardEvent::Registered {
            name: "Ada".into(),
            max_loans: 3
        }
    );
    // `attr(serde(deny_unknown_fields))` on the enum.
    let error = CardEvent::decode("Renamed", 1, r#"{"name":"B","extra":1}"#).unwrap_err();
    assert!(
        error.to_string().contains("unknown field `extra`"),
        "{error}"
    );
    // `derive(PartialEq, Eq)` on the enum.
    assert_eq!(Renamed { name: "B".into() }, Renamed { name: "B".into() });
}

#[test]
fn an_older_version_given_as_fields_is_upcast_by_its_closure() {
    let event = CardEvent::decode("Borrowed", 1, r#"{"book_id":"dune"}"#).unwrap();
    assert_eq!(
        event,
        CardEvent::Borrowed {
            book: "dune".into(),
            days: 14
        }
    );
    // The generated struct of version 1 is a type of its own, with a schema.
    let _: BorrowedV1 = BorrowedV1 {
        book_id: "x".into(),
    };
    let borrowed = CardEvent::describe_events()
        .into_iter()
        .find(|e| e.event_type == "Borrowed")
        .unwrap();
    let v1 = &borrowed.versions[0];
    assert_eq!(v1.rust_type.as_deref(), Some("BorrowedV1"));
    assert_eq!(v1.upcast, Upcast::Function);
    assert!(v1.schema.as_ref().unwrap().to_string().contains("book_id"));
}

#[test]
fn create_runs_only_on_a_new_aggregate_and_the_others_only_on_an_existing_one() {
    AggregateTest::<Card>::new()
        .when(register())
        .then_expect_events(Registered {
            name: "Ada".into(),
            max_loans: 5,
        });
    AggregateTest::<Card>::new()
        .given(Registered {
            name: "Ada".into(),
            max_loans: 5,
        })
        .when(register())
        .then_expect_error(CardError::AlreadyRegistered);
    AggregateTest::<Card>::new()
        .when(Borrow {
            book: "dune".into(),
        })
        .then_expect_error(CardError::NotRegistered);
    // A fallible handler is refused before it runs, too.
    AggregateTest::<Card>::new()
        .when(ReturnBook {
            book: "dune".into(),
        })
        .then_expect_error(CardError::NotRegistered);
}

#[test]
fn upsert_runs_on_both() {
    AggregateTest::<Card>::new()
        .when(Rename { name: "B".into() })
        .then_expect_events(Registered {
            name: "B".into(),
            max_loans: 3,
        });
    AggregateTest::<Card>::new()
        .given(Registered {
            name: "Ada".into(),
            max_loans: 5,
        })
        .when(Rename { name: "B".into() })
        .then_expect_events(Renamed { name: "B".into() });
}

#[test]
fn given_and_then_take_payloads_enums_and_tuples() {
    let outcome = AggregateTest::<Card>::new()
        .given((
            Registered {
                name: "Ada".into(),
                max_loans: 5,
            },
            CardEvent::Borrowed {
                book: "dune".into(),
                days: 21,
            },
        ))
        .when(CardCommand::Return(ReturnBook {
            book: "dune".into(),
        }));
    outcome.then_expect_events([BookReturned {
        book: "dune".into(),
    }]);
    assert!(outcome.root().state().loans.is_empty());
    AggregateTest::<Card>::new()
        .given(vec![CardEvent::Registered {
            name: "Ada".into(),
            max_loans: 5,
        }])
        .when(Touch {})
        .then_expect_events((Touched {}, CardEvent::Touched));
    AggregateTest::<Card>::new()
        .given([Registered {
            name: "Ada".into(),
            max_loans: 5,
        }])
        .when(ReturnBook {
            book: "dune".into(),
        })
        .then_expect_error(CardError::NotOnLoan("dune".into()));
}

/// Counts every event of every followed aggregate, and keeps the decoded events of `Card`.
#[derive(Debug, Clone, Default)]
struct Audit {
    seen: Arc<Mutex<Vec<String>>>,
    decoded: Arc<Mutex<Vec<CardEvent>>>,
    borrowed: Arc<Mutex<u32>>,
}

#[projection(aggregates(Card))]
impl Audit {
    fn every(&mut self, envelope: &StoredEvent) {
        let line = format!("{}#{}", envelope.event_type, envelope.sequence);
        self.seen.lock().unwrap().push(line);
    }

    fn card(&mut self, event: &CardEvent) {
        self.decoded.lock().unwrap().push(event.clone());
    }

    fn borrowed(&mut self, _: &Borrowed) {
        *self.borrowed.lock().unwrap() += 1;
    }
}

#[tokio::test]
async fn a_projection_handler_of_every_event_runs_beside_the_typed_ones() {
    let store = InMemoryStore::new();
    // A version-1 row, written raw as an old release stored it.
    let old = NewEvent::raw("Borrowed", 1, json!({ "book_id": "dune" }));
    let repo = Repository::<Card, _>::new(store.clone());
    repo.execute(&"c".to_owned(), register()).await.unwrap();
    store.append("card", "c", 1, &[old]).await.unwrap();
    repo.execute(
        &"c".to_owned(),
        Borrow {
            book: "emma".into(),
        },
    )
    .await
    .unwrap();
    let card = repo.load(&"c".to_owned()).await.unwrap();
    assert_eq!(card.state().loans, ["dune", "emma"]);

    let audit = Audit::default();
    let mut runner = Projector::new(store, MemoryTarget::new(), audit.clone());
    runner.catch_up().await.unwrap();
    assert_eq!(
        *audit.seen.lock().unwrap(),
        ["Registered#1", "Borrowed#2", "Borrowed#3"]
    );
    assert_eq!(
        audit.decoded.lock().unwrap()[1],
        CardEvent::Borrowed {
            book: "dune".into(),
            days: 14
        }
    );
    assert_eq!(*audit.borrowed.lock().unwrap(), 2);
}

#[tokio::test]
async fn the_repository_refuses_by_the_declared_errors() {
    let repo = Repository::<Card, _>::new(InMemoryStore::new());
    let id = "c".to_owned();
    let error = repo
        .execute(&id, Borrow { book: "x".into() })
        .await
        .unwrap_err();
    assert!(
        matches!(error, CommandError::Rejected(CardError::NotRegistered)),
        "{error:?}"
    );
    repo.execute(&id, register()).await.unwrap();
    let error = repo.execute(&id, register()).await.unwrap_err();
    assert!(
        matches!(error, CommandError::Rejected(CardError::AlreadyRegistered)),
        "{error:?}"
    );
}
