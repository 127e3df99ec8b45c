//! The bank reference domain: decisions with given/when/then, and old stored payloads read back
//! through the upcast chain.

use bank::*;
use cqrs_runtime::{
    AggregateTest, CommandError, DomainEvent, EventStore, InMemoryStore, Metadata, NewEvent,
    Repository, StoreError,
};

fn opened() -> AccountEvent {
    Opened {
        owner: "ada".into(),
        currency: "EUR".into(),
    }
    .into()
}

fn deposited(cents: i64) -> AccountEvent {
    Deposited {
        amount: Money::eur(cents),
    }
    .into()
}

#[test]
fn opening_a_new_account() {
    AggregateTest::<Account>::new()
        .when(Open {
            owner: "ada".into(),
            currency: "EUR".into(),
        })
        .then_expect_events([opened()])
        .then_state(|account| assert_eq!(account.owner, "ada"));
}

#[test]
fn opening_twice_is_rejected() {
    AggregateTest::<Account>::new()
        .given([opened()])
        .when(Open {
            owner: "bob".into(),
            currency: "EUR".into(),
        })
        .then_expect_error(BankError::AlreadyOpen);
}

#[test]
fn deposit_needs_an_open_account() {
    AggregateTest::<Account>::new()
        .when(Deposit { cents: 100 })
        .then_expect_error(BankError::NotOpen);
}

#[test]
fn deposit_and_withdraw_move_the_balance() {
    AggregateTest::<Account>::new()
        .given([opened(), deposited(500)])
        .when(Withdraw { cents: 200 })
        .then_expect_events(Withdrawn { cents: 200 })
        .then_state(|account| assert_eq!(account.balance, 300));
}

#[test]
fn withdrawing_more_than_the_balance_is_insufficient_funds() {
    AggregateTest::<Account>::new()
        .given([opened(), deposited(500)])
        .when(Withdraw { cents: 501 })
        .then_expect_error(BankError::InsufficientFunds {
            balance: 500,
            requested: 501,
        });
}

#[test]
fn the_async_withdraw_handler_uses_injected_services() {
    let services = BankServices {
        withdrawal_limit: 100,
    };
    AggregateTest::<Account>::with_services("acc-1".into(), services)
        .given([opened(), deposited(500)])
        .when(Withdraw { cents: 101 })
        .then_expect_error(BankError::AboveLimit {
            limit: 100,
            requested: 101,
        });
}

#[test]
fn non_positive_amounts_are_rejected() {
    AggregateTest::<Account>::new()
        .given([opened()])
        .when(Deposit { cents: 0 })
        .then_expect_error_matches(|e| matches!(e, BankError::InvalidAmount(0)));
}

#[test]
fn closing_needs_an_empty_account_and_is_idempotent() {
    AggregateTest::<Account>::new()
        .given([opened(), deposited(5)])
        .when(Close {})
        .then_expect_error(BankError::NotEmpty(5));
    AggregateTest::<Account>::new()
        .given([opened()])
        .when(Close {})
        .then_expect_events(Closed {});
    AggregateTest::<Account>::new()
        .given([opened(), Closed {}.into()])
        .when(Close {})
        .then_expect_no_events();
}

#[test]
fn a_closed_account_refuses_deposits() {
    AggregateTest::<Account>::new()
        .given([opened(), Closed {}.into()])
        .when(Deposit { cents: 1 })
        .then_expect_error(BankError::Closed);
}

fn raw(event_type: &'static str, event_version: u32, payload: &str) -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::now_v7(),
        event_type,
        event_version,
        payload: payload.to_owned(),
        metadata: Metadata::default(),
        recorded_at: chrono::Utc::now(),
    }
}

/// Rows as versions 1 and 2 of the code wrote them, read back by today's code.
#[tokio::test]
async fn stored_v1_and_v2_payloads_read_back_as_v3() {
    let store = InMemoryStore::new();
    store
        .append(
            ACCOUNT_TYPE,
            "old-1",
            0,
            &[
                raw("Opened", 1, r#"{"owner":"ada","currency":"EUR"}"#),
                raw("Deposited", 1, r#"{"euros":12}"#),
                raw("Deposited", 2, r#"{"cents":345}"#),
                raw("Deposited", 3, r#"{"amount":{"cents":5,"currency":"EUR"}}"#),
                raw("Withdrawn", 1, r#"{"sum":50}"#),
                raw("Withdrawn", 2, r#"{"cents":100}"#),
            ],
        )
        .await
        .unwrap();
    let repo = Repository::<Account, _>::new(store);
    let account = repo.load(&"old-1".into()).await.unwrap();
    assert_eq!(account.version(), 6);
    assert_eq!(account.state().owner, "ada");
    assert_eq!(account.state().balance, 1200 + 345 + 5 - 50 - 100);
}

#[test]
fn each_stored_version_decodes_to_the_current_type() {
    let v1 = AccountEvent::decode("Deposited", 1, r#"{"euros":2}"#).unwrap();
    let v2 = AccountEvent::decode("Deposited", 2, r#"{"cents":200}"#).unwrap();
    let v3 = AccountEvent::decode(
        "Deposited",
        3,
        r#"{"amount":{"cents":200,"currency":"EUR"}}"#,
    )
    .unwrap();
    assert_eq!(v1, deposited(200));
    assert_eq!(v2, deposited(200));
    assert_eq!(v3, deposited(200));
    let renamed = AccountEvent::decode("Opened", 1, r#"{"owner":"ada","currency":"EUR"}"#).unwrap();
    assert_eq!(renamed, opened());
    assert_eq!(
        renamed.event_type(),
        "AccountOpened",
        "new writes use the new name"
    );
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_naming_the_row() {
    let store = InMemoryStore::new();
    store
        .append(
            ACCOUNT_TYPE,
            "bad-1",
            0,
            &[
                raw("AccountOpened", 1, r#"{"owner":"ada","currency":"EUR"}"#),
                raw("Deposited", 3, r#"{"amount":"lots"}"#),
            ],
        )
        .await
        .unwrap();
    let repo = Repository::<Account, _>::new(store);
    let error = repo.load(&"bad-1".into()).await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, StoreError::Decode { sequence: 2, .. }),
        "{error:?}"
    );
    for part in [
        "bank_account",
        "`bad-1`",
        "sequence 2",
        "`Deposited`",
        "version 3",
    ] {
        assert!(message.contains(part), "`{message}` should name {part}");
    }
}

#[tokio::test]
async fn commands_through_a_repository() {
    let repo = Repository::<Account, _>::new(InMemoryStore::new());
    let id: AccountId = "acc-7".into();
    repo.execute(
        &id,
        Open {
            owner: "ada".into(),
            currency: "EUR".into(),
        },
    )
    .await
    .unwrap();
    repo.execute(&id, Deposit { cents: 1_000 }).await.unwrap();
    let done = repo.execute(&id, Withdraw { cents: 300 }).await.unwrap();
    assert_eq!(done.root.version(), 3);
    assert_eq!(done.events.len(), 1);
    assert_eq!(done.events[0].sequence, 3);
    assert_eq!(done.events[0].event_type, "Withdrawn");
    assert_eq!(done.events[0].event_version, 2);
    let rejected = repo
        .execute(&id, Withdraw { cents: 10_000 })
        .await
        .unwrap_err();
    assert!(matches!(
        rejected,
        CommandError::Rejected(BankError::InsufficientFunds { balance: 700, .. })
    ));
    assert_eq!(repo.load(&id).await.unwrap().state().balance, 700);
}
