//! The interbank transfer manager the interbank tests and their child runner share: `east`'s
//! process manager debits a local account and publishes the credit for `west`, and completes
//! the transfer when west's public event of the deposit comes back with the credit's key.

use std::time::Duration;

use bank::public::{AccountPublic, BalanceChanged};
use bank::transfers::{Complete, Completed, Refund, Refunded, Requested, Transfer};
use bank::{Account, AccountCommand, Deposit, Withdraw, Withdrawn};
use cqrs_runtime::bus::kafka::KafkaSource;
use cqrs_runtime::process::{Dispatcher, Effects, ProcessRunner, Refused};
use cqrs_runtime::sqlite::SqliteStore;
use cqrs_runtime::{BoxError, Repository, process_manager};
use serde::{Deserialize, Serialize};

use crate::brokers::Kind;
use crate::bus::{AnyPublisher, AnySource};

/// The process manager of east's interbank transfers: `Transfer` is east's aggregate, its
/// `to` an account of west.
#[derive(Debug, Clone)]
pub struct Interbank {
    /// Where west's commands go.
    pub commands: String,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moving {
    pub from: String,
    pub to: String,
    pub cents: i64,
    pub withdrawn: bool,
}

#[process_manager(
    manager = Interbank,
    aggregates(Transfer, Account),
    contracts(AccountPublic),
    sends(Account, Transfer)
)]
impl Moving {
    #[start]
    fn requested(&mut self, event: &Requested) {
        *self = Moving {
            from: event.from.clone(),
            to: event.to.clone(),
            cents: event.cents,
            withdrawn: false,
        };
    }

    fn debit(&self, _: &Requested, effects: &mut Effects<Self>) {
        effects.send(self.from.clone(), Withdraw { cents: self.cents });
    }

    /// East's own withdrawal.
    #[existing(caused)]
    fn withdrawn(&mut self, _: &Withdrawn) {
        self.withdrawn = true;
    }

    fn credit(
        &self,
        _: &Withdrawn,
        effects: &mut Effects<Self>,
        interbank: &Interbank,
    ) -> Result<(), BoxError> {
        let deposit = AccountCommand::from(Deposit { cents: self.cents });
        effects.publish(&interbank.commands, &self.to, &deposit)?;
        Ok(())
    }

    /// West's deposit, as its public contract tells it, come back over the bus with the key
    /// of the command east published.
    #[existing(caused)]
    fn credited(&mut self, _: &BalanceChanged) {}

    fn complete(&self, _: &BalanceChanged, effects: &mut Effects<Self>) {
        let transfer = effects.instance().to_owned();
        effects.send(transfer, Complete {});
    }

    fn completed(&self, _: &Completed, effects: &mut Effects<Self>) {
        effects.complete();
    }

    fn refunded(&self, _: &Refunded, effects: &mut Effects<Self>) {
        effects.complete();
    }

    #[refused]
    fn refused(&mut self, refused: &Refused, effects: &mut Effects<Self>) {
        if refused.command_name == "Withdraw" {
            let transfer = effects.instance().to_owned();
            let reason = refused.reason.clone();
            effects.send(transfer, Refund { reason });
        }
    }
}

/// East's runner on `store`, following its log and west's events on `events` (consumer group
/// `east-interbank`), publishing credits on `commands`, all through the broker of `kind` at
/// `address`: what the interbank tests run in-process and their child process runs to be
/// killed.
pub async fn east_runner(
    store: SqliteStore,
    kind: Kind,
    address: &str,
    commands: &str,
    events: &str,
) -> ProcessRunner<Interbank, SqliteStore, cqrs_runtime::sqlite::SqliteTarget> {
    let dispatcher = Dispatcher::new()
        .route(Repository::<Account, _>::new(store.clone()))
        .route(Repository::<Transfer, _>::new(store.clone()));
    let manager = Interbank {
        commands: commands.to_owned(),
    };
    let target = store.projection_target();
    let source = match kind {
        // A killed runner never leaves its consumer group: the broker notices it gone after
        // the session timeout, the shortest it allows, and only then gives its successor the
        // partitions.
        Kind::Kafka => {
            let config = crate::bus::consumer_config(address)
                .set("session.timeout.ms", "6000")
                .set("heartbeat.interval.ms", "1000");
            let source = KafkaSource::new(&config, "east-interbank", &[events]).await;
            AnySource::Kafka(source.expect("a Kafka consumer"))
        }
        Kind::Nats => AnySource::connect_to(kind, address, events, "east-interbank").await,
    };
    ProcessRunner::new(store, target, manager, dispatcher)
        .source(source)
        .publisher(AnyPublisher::connect(kind, address).await)
        .poll_interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        // A killed runner's lease expires quickly, so that its successor takes over soon.
        .lease_ttl(Duration::from_millis(500))
        .batch_size(16)
}
