//! The receiving side of commands sent between services: a [`CommandHandler`] runs each
//! command message on this service's aggregate, once per idempotency key.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;

use super::{Message, MessageHandler};
use crate::contract::aggregate::Aggregate;
use crate::contract::error::{BoxError, CommandError};
use crate::contract::event::Metadata;
use crate::contract::store::EventStore;
use crate::repository::Repository;

/// Runs the commands other services publish for aggregate `A` (a process manager's
/// [`Effects::publish`](crate::process::Effects::publish), or any [`Message::command`]) through
/// a [`Repository`], fed by a [`Subscriber`](super::Subscriber).
///
/// Each message's payload is decoded as `A::Command` (its JSON, as `serde` writes the enum) and
/// run on the aggregate named by the message's key. The command's idempotency key comes from
/// the message ([`Metadata::command_id`]; the message id when it has none), so a command
/// delivered twice, or published again by a sender that crashed, runs once: the repository
/// answers a key it recorded with the first outcome.
///
/// A command the aggregate refuses is acknowledged, logged and counted
/// ([`CommandStats::refused`]), not retried: it would be refused again. The sender learns of it
/// by what does *not* happen (its process manager's deadline). A payload that does not decode,
/// or a store failure, is an error: the subscriber retries it, then dead-letters it.
///
/// ```
/// use cqrs_runtime::bus::memory::MemoryBroker;
/// use cqrs_runtime::bus::{CommandHandler, Message, Subscriber};
/// use cqrs_runtime::doc_support::{Counter, CounterCommand};
/// use cqrs_runtime::projection::MemoryTarget;
/// use cqrs_runtime::{InMemoryStore, Metadata, Repository};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let broker = MemoryBroker::new();
/// let counters = Repository::<Counter, _>::new(InMemoryStore::new());
/// let handler = CommandHandler::new(counters.clone());
/// let stats = handler.stats();
/// let source = broker.subscribe("counters", &["counter-commands"]);
/// let mut subscriber = Subscriber::new("counter-commands", source, MemoryTarget::new(), handler);
///
/// // The same command, published twice (a sender that crashed before it knew it was sent).
/// let payload = serde_json::to_string(&CounterCommand::Add(5)).unwrap();
/// let metadata = Metadata::default().command_id("mirror/c-1/0c8e/0");
/// let command = Message::command("counter-commands", "c-1", "Add", payload, chrono::Utc::now(), metadata);
/// broker.push(command.clone());
/// broker.push(command);
///
/// subscriber.process_next(2).await.unwrap();
/// assert_eq!(counters.load(&"c-1".to_owned()).await.unwrap().state().total, 5);
/// assert_eq!(stats.executed(), 1);
/// # });
/// ```
#[derive(Debug)]
pub struct CommandHandler<A: Aggregate, S> {
    repository: Repository<A, S>,
    stats: CommandStats,
}

/// What a [`CommandHandler`] did, shared with whoever asked for it
/// ([`CommandHandler::stats`]) while the handler runs in a subscriber.
#[derive(Debug, Clone, Default)]
pub struct CommandStats(Arc<[AtomicU64; 3]>);

impl CommandStats {
    /// Commands that ran and recorded their events.
    pub fn executed(&self) -> u64 {
        self.0[0].load(Ordering::Relaxed)
    }

    /// Commands whose idempotency key had run before: answered without running.
    pub fn duplicates(&self) -> u64 {
        self.0[1].load(Ordering::Relaxed)
    }

    /// Commands the aggregate refused.
    pub fn refused(&self) -> u64 {
        self.0[2].load(Ordering::Relaxed)
    }

    fn count(&self, which: usize) {
        self.0[which].fetch_add(1, Ordering::Relaxed);
    }
}

impl<A: Aggregate, S> CommandHandler<A, S> {
    /// A handler running commands through `repository`.
    pub fn new(repository: Repository<A, S>) -> Self {
        CommandHandler {
            repository,
            stats: CommandStats::default(),
        }
    }

    /// Its counts, which keep counting after the handler moved into a subscriber.
    pub fn stats(&self) -> CommandStats {
        self.stats.clone()
    }
}

impl<C, A, S> MessageHandler<C> for CommandHandler<A, S>
where
    C: Send,
    A: Aggregate,
    A::Command: DeserializeOwned + Clone + Sync,
    S: EventStore,
{
    async fn handle(&mut self, message: &Message, _: &mut C) -> Result<(), BoxError> {
        let command: A::Command = serde_json::from_str(&message.payload).map_err(|e| {
            format!(
                "the payload of `{}` on `{}` is not a command of `{}`: {e}",
                message.event_type,
                message.topic,
                A::TYPE
            )
        })?;
        let id: A::Id = message.key.parse().map_err(|_| {
            format!(
                "`{}` (the key of `{}` on `{}`) is not an id of `{}`",
                message.key,
                message.event_type,
                message.topic,
                A::TYPE
            )
        })?;
        let key = match &message.metadata.command_id {
            Some(key) => key.clone(),
            None => message.event_id.to_string(),
        };
        let metadata = Metadata {
            correlation_id: message.metadata.correlation_id,
            causation_id: Some(message.event_id),
            command_id: Some(key),
            extra: message.metadata.extra.clone(),
        };
        match self.repository.execute_with(&id, command, metadata).await {
            Ok(committed) if committed.duplicate => self.stats.count(1),
            Ok(_) => self.stats.count(0),
            Err(CommandError::Rejected(refusal)) => {
                tracing::warn!(
                    aggregate = A::TYPE,
                    id = %message.key,
                    command = %message.event_type,
                    %refusal,
                    "a command from the bus was refused"
                );
                self.stats.count(2);
            }
            Err(error) => return Err(error.into()),
        }
        Ok(())
    }
}
