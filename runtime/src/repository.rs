//! The repository: loads an aggregate (snapshot + tail), runs a command against it, appends the
//! resulting events with optimistic concurrency, and takes snapshots when they are due.

use std::fmt;
use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use crate::aggregate::{Aggregate, AggregateRoot};
use crate::command::CommandContext;
use crate::error::{CommandError, StoreError};
use crate::event::{DomainEvent, EventEnvelope, Metadata};
use crate::store::{EventStore, NewEvent, PAGE_SIZE, Snapshot};

/// What to do when an append finds that another writer got there first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
}

impl RetryPolicy {
    /// Never retry: a conflict is returned to the caller (the default).
    pub const NONE: RetryPolicy = RetryPolicy { max_attempts: 1 };

    /// Re-load the aggregate and re-run the handler, up to `max_attempts` runs in all.
    ///
    /// Safe because handlers only decide: nothing was written by the attempt that lost.
    pub fn attempts(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
        }
    }

    /// How many runs a command gets at most.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::NONE
    }
}

/// The result of a command that was handled and committed.
pub struct Committed<A: Aggregate> {
    /// The aggregate after the new events.
    pub root: AggregateRoot<A>,
    /// The recorded events, in order; empty if the handler decided on none.
    pub events: Vec<EventEnvelope<A::Event>>,
}

impl<A: Aggregate> fmt::Debug for Committed<A>
where
    A: fmt::Debug,
    A::Event: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Committed")
            .field("root", &self.root)
            .field("events", &self.events)
            .finish()
    }
}

/// Executes commands against aggregates of type `A` kept in store `S`.
///
/// ```
/// # use cqrs_runtime::doc_support::{Counter, CounterCommand};
/// use cqrs_runtime::{InMemoryStore, Repository, RetryPolicy};
///
/// # futures::executor::block_on(async {
/// let repo = Repository::<Counter, _>::new(InMemoryStore::new()).retry(RetryPolicy::attempts(3));
/// let done = repo.execute(&"c-1".to_owned(), CounterCommand::Add(2)).await.unwrap();
/// assert_eq!(done.root.version(), 1);
/// assert_eq!(repo.load(&"c-1".to_owned()).await.unwrap().state().total, 2);
/// # });
/// ```
///
/// Cloning is cheap when the store is (every store of this crate is a handle): clones share the
/// store and the services.
pub struct Repository<A: Aggregate, S> {
    store: S,
    services: Arc<A::Services>,
    retry: RetryPolicy,
}

impl<A: Aggregate, S: Clone> Clone for Repository<A, S> {
    fn clone(&self) -> Self {
        Repository {
            store: self.store.clone(),
            services: Arc::clone(&self.services),
            retry: self.retry,
        }
    }
}

impl<A: Aggregate, S: fmt::Debug> fmt::Debug for Repository<A, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repository")
            .field("aggregate", &A::TYPE)
            .field("store", &self.store)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate, S: EventStore> Repository<A, S>
where
    A::Services: Default,
{
    /// A repository over `store`, with default services and no retry.
    pub fn new(store: S) -> Self {
        Repository::with_services(store, A::Services::default())
    }
}

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// A repository whose handlers receive `services`.
    pub fn with_services(store: S, services: A::Services) -> Self {
        Repository {
            store,
            services: Arc::new(services),
            retry: RetryPolicy::NONE,
        }
    }

    /// Sets the retry policy for version conflicts.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The services handed to handlers.
    pub fn services(&self) -> &A::Services {
        &self.services
    }

    /// Loads an aggregate: its newest usable snapshot, then every later event.
    ///
    /// An aggregate with no events loads as version 0 ([`AggregateRoot::exists`] is false).
    pub async fn load(&self, id: &A::Id) -> Result<AggregateRoot<A>, StoreError> {
        let id_str = id.to_string();
        let mut root = AggregateRoot::new(id.clone());
        self.restore_snapshot(&id_str, &mut root).await?;
        if let Some(root) = self.replay(&id_str, root).await? {
            return Ok(root);
        }
        tracing::warn!(
            aggregate_type = A::TYPE,
            aggregate_id = %id_str,
            "ignoring a snapshot whose version is not in the stream; replaying the stream"
        );
        let fresh = AggregateRoot::new(id.clone());
        self.replay(&id_str, fresh).await?.ok_or_else(|| {
            StoreError::Corrupt(format!("{} `{id_str}`: replay without a snapshot", A::TYPE))
        })
    }

    /// Applies every event after the root's version. A root restored from a snapshot at version
    /// V reads from V - 1, one event early: event V must be there, or the snapshot is ahead of
    /// its stream and `None` is returned.
    async fn replay(
        &self,
        id_str: &str,
        mut root: AggregateRoot<A>,
    ) -> Result<Option<AggregateRoot<A>>, StoreError> {
        let mut check_snapshot = root.snapshot_version > 0;
        loop {
            let after = root.version - u64::from(check_snapshot);
            let page = self
                .store
                .read_stream(A::TYPE, id_str, after, PAGE_SIZE)
                .await?;
            let full = page.len() == PAGE_SIZE;
            let mut page = page.into_iter();
            if check_snapshot {
                check_snapshot = false;
                if page.next().map(|e| e.sequence) != Some(root.version) {
                    return Ok(None);
                }
            }
            for stored in page {
                if stored.sequence != root.version + 1 {
                    return Err(StoreError::Corrupt(format!(
                        "{} `{id_str}`: expected sequence {} after {}, found {}",
                        A::TYPE,
                        root.version + 1,
                        root.version,
                        stored.sequence
                    )));
                }
                root.apply(&stored.decode::<A::Event>()?);
            }
            if !full {
                return Ok(Some(root));
            }
        }
    }

    async fn restore_snapshot(
        &self,
        id_str: &str,
        root: &mut AggregateRoot<A>,
    ) -> Result<(), StoreError> {
        let Some(codec) = A::snapshots() else {
            return Ok(());
        };
        let Some(snapshot) = self.store.load_snapshot(A::TYPE, id_str).await? else {
            return Ok(());
        };
        if snapshot.fingerprint != codec.fingerprint {
            tracing::warn!(
                aggregate_type = A::TYPE,
                aggregate_id = id_str,
                stored = format_args!("{:016x}", snapshot.fingerprint),
                current = format_args!("{:016x}", codec.fingerprint),
                "ignoring a snapshot written for another shape of the state; replaying the stream"
            );
            return Ok(());
        }
        match codec.decode(&snapshot.state) {
            Ok(state) => {
                root.state = state;
                root.version = snapshot.version;
                root.snapshot_version = snapshot.version;
            }
            Err(error) => tracing::warn!(
                aggregate_type = A::TYPE,
                aggregate_id = id_str,
                %error,
                "ignoring a snapshot that does not decode; replaying the stream"
            ),
        }
        Ok(())
    }

    /// Runs a command and commits its events, with empty metadata.
    pub async fn execute(
        &self,
        id: &A::Id,
        command: impl Into<A::Command>,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A::Command: Clone,
    {
        self.execute_with(id, command, Metadata::default()).await
    }

    /// Runs a command and commits its events, each recorded with `metadata`.
    ///
    /// On a version conflict the command is re-run on the reloaded aggregate as the
    /// [`RetryPolicy`] allows; the last conflict is returned when attempts run out.
    pub async fn execute_with(
        &self,
        id: &A::Id,
        command: impl Into<A::Command>,
        metadata: Metadata,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A::Command: Clone,
    {
        let command = command.into();
        // Every run but the last gets a clone; the last one takes the command itself.
        for attempt in 1..self.retry.max_attempts {
            let root = self.load(id).await?;
            match self
                .decide_and_commit(root, command.clone(), &metadata)
                .await
            {
                Err(CommandError::Conflict(conflict)) => {
                    tracing::debug!(%conflict, attempt, "retrying a command after a conflict");
                }
                outcome => return outcome,
            }
        }
        let root = self.load(id).await?;
        self.decide_and_commit(root, command, &metadata).await
    }

    /// Runs a command on an already loaded aggregate and commits its events.
    ///
    /// Fails with a conflict if the stream moved on since `root` was loaded; no retry.
    pub async fn decide_and_commit(
        &self,
        mut root: AggregateRoot<A>,
        command: A::Command,
        metadata: &Metadata,
    ) -> Result<Committed<A>, CommandError<A::Error>> {
        let cx = CommandContext::new(&root.id, root.version, &*self.services, metadata);
        let events = root
            .state
            .handle(command, &cx)
            .await
            .map_err(CommandError::Rejected)?;
        if events.is_empty() {
            return Ok(Committed {
                root,
                events: Vec::new(),
            });
        }
        let id_str = root.id.to_string();
        let recorded_at = Utc::now();
        let new_events = events
            .iter()
            .map(|event| {
                let payload = event.encode().map_err(|source| StoreError::Encode {
                    aggregate_type: A::TYPE.to_owned(),
                    aggregate_id: id_str.clone(),
                    event_type: event.event_type().to_owned(),
                    source,
                })?;
                Ok(NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: event.event_type(),
                    event_version: event.event_version(),
                    payload,
                    metadata: metadata.clone(),
                    recorded_at,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let positions = self
            .store
            .append(A::TYPE, &id_str, root.version, &new_events)
            .await?;
        let first = root.version + 1;
        let envelopes: Vec<_> = events
            .into_iter()
            .zip(new_events)
            .zip(positions)
            .enumerate()
            .map(|(i, ((event, new), position))| EventEnvelope {
                aggregate_type: A::TYPE.to_owned(),
                aggregate_id: id_str.clone(),
                sequence: first + i as u64,
                position,
                event_id: new.event_id,
                event_type: new.event_type.to_owned(),
                event_version: new.event_version,
                recorded_at,
                metadata: new.metadata,
                event,
            })
            .collect();
        for envelope in &envelopes {
            root.apply(envelope);
        }
        self.snapshot_if_due(&id_str, &mut root).await;
        Ok(Committed {
            root,
            events: envelopes,
        })
    }

    /// Snapshots are a cache: failing to write one is logged, never returned to the caller
    /// whose events are already committed.
    async fn snapshot_if_due(&self, id_str: &str, root: &mut AggregateRoot<A>) {
        let Some(codec) = A::snapshots() else {
            return;
        };
        if root.version - root.snapshot_version < codec.every {
            return;
        }
        let state = match codec.encode(&root.state) {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(aggregate_type = A::TYPE, aggregate_id = id_str, %error, "cannot encode a snapshot");
                return;
            }
        };
        let snapshot = Snapshot {
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: id_str.to_owned(),
            version: root.version,
            fingerprint: codec.fingerprint,
            state,
        };
        match self.store.save_snapshot(&snapshot).await {
            Ok(()) => root.snapshot_version = root.version,
            Err(error) => {
                tracing::warn!(aggregate_type = A::TYPE, aggregate_id = id_str, %error, "cannot store a snapshot")
            }
        }
    }
}
