//! Where followers of the log keep their state: the target contract, split by concern so that
//! each follower asks only for what it uses.
//!
//! - [`Checkpoints`]: transactions, and a checkpoint per follower moved by compare-and-set in
//!   the transaction that applied the events (every follower).
//! - [`Leases`]: being the one active follower of a name (every follower that runs live).
//! - [`DeadLetters`] and [`Versions`]: parked events and side-by-side versions (projections).
//! - [`Inbox`]: the event ids a bus consumer processed (subscribers).
//!
//! [`ProjectionTarget`] is all of them, the bound a projection runner needs; every target of
//! the runtime implements it.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ProjectionId;
use crate::contract::error::StoreError;
use crate::contract::event::{LogPosition, StoredEvent};

/// Who follows the log: what a checkpoint and a lease are kept under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FollowerId {
    /// A projection, by name and version.
    Projection(ProjectionId),
    /// An outbox relay, by name.
    Relay(&'static str),
    /// A process manager, by name.
    Process(&'static str),
}

impl FollowerId {
    /// The version a relay's rows are stored under: relays have no versions, and this is the
    /// key their checkpoints have always been stored under, so upgrading keeps them.
    const RELAY_VERSION: u32 = 1;

    /// The version a process manager's rows are stored under: 0, which no projection has
    /// (their versions start at 1), so a process manager and a projection may share a name.
    const PROCESS_VERSION: u32 = 0;

    /// The `(name, version)` its rows are stored under. A relay shares the key space of
    /// projections: do not give a relay the name of a projection.
    pub fn key(self) -> (&'static str, u32) {
        match self {
            FollowerId::Projection(id) => (id.name, id.version),
            FollowerId::Relay(name) => (name, Self::RELAY_VERSION),
            FollowerId::Process(name) => (name, Self::PROCESS_VERSION),
        }
    }
}

impl From<ProjectionId> for FollowerId {
    fn from(id: ProjectionId) -> Self {
        FollowerId::Projection(id)
    }
}

impl fmt::Display for FollowerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FollowerId::Projection(id) => write!(f, "projection `{id}`"),
            FollowerId::Relay(name) => write!(f, "outbox relay `{name}`"),
            FollowerId::Process(name) => write!(f, "process manager `{name}`"),
        }
    }
}

/// A checkpoint move, committed with the transaction that applied the events up to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    /// Whose checkpoint.
    pub follower: FollowerId,
    /// Where the follower read it (`None`: there was none). The commit fails if it moved.
    pub from: Option<LogPosition>,
    /// The position of the last event the transaction covers.
    pub to: LogPosition,
}

/// An event parked in a projection's dead-letter table.
#[derive(Debug, Clone, PartialEq)]
pub struct ParkedEvent {
    /// The event as stored.
    pub event: StoredEvent,
    /// The last error, as displayed.
    pub error: String,
    /// How many times the handler ran and failed.
    pub attempts: u32,
    /// When it was parked.
    pub parked_at: DateTime<Utc>,
}

/// Why a commit did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The checkpoint moved since it was read: another follower applied these events.
    #[error("the checkpoint of {0} moved: another runner is applying its events")]
    Moved(FollowerId),
    /// The database failed; nothing was committed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Transactions and checkpoints: what every follower of the log needs.
///
/// The SQL targets ([`sqlite::SqliteTarget`](crate::sqlite::SqliteTarget),
/// [`postgres::PostgresTarget`](crate::postgres::PostgresTarget)) open a database transaction
/// and hand its connection to the handlers; [`MemoryTarget`](super::MemoryTarget) keeps
/// checkpoints in the process, for read models in memory.
pub trait Checkpoints: Send + Sync + 'static {
    /// What handlers get to write with (`()` for a memory target).
    type Connection: Send;
    /// An open transaction.
    type Transaction: Send;
    /// Whether rolling back a transaction also undoes what handlers wrote through it. True
    /// for databases; a memory target cannot undo a handler's changes, so the runner never
    /// re-applies an event to it.
    const ATOMIC: bool;

    /// The connection of an open transaction.
    fn connection(tx: &mut Self::Transaction) -> &mut Self::Connection;

    /// Opens a transaction.
    fn begin(&self) -> impl Future<Output = Result<Self::Transaction, StoreError>> + Send;

    /// Commits, moving a checkpoint in the same transaction if asked. Fails with
    /// [`CommitError::Moved`] (committing nothing) if the checkpoint is no longer at
    /// `advance.from`.
    fn commit(
        &self,
        tx: Self::Transaction,
        advance: Option<Advance>,
    ) -> impl Future<Output = Result<(), CommitError>> + Send;

    /// Abandons a transaction.
    fn rollback(&self, tx: Self::Transaction) -> impl Future<Output = ()> + Send;

    /// Where a follower's checkpoint is (`None`: it never ran, or was reset). Takes a
    /// [`FollowerId`] or a projection's [`ProjectionId`].
    fn checkpoint(
        &self,
        follower: impl Into<FollowerId> + Send,
    ) -> impl Future<Output = Result<Option<LogPosition>, StoreError>> + Send;

    /// Removes the checkpoint, in `tx` (the start of a rebuild). Parked events stay.
    fn clear_checkpoint(
        &self,
        tx: &mut Self::Transaction,
        follower: impl Into<FollowerId> + Send,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Leases: one active follower per name, the others stand by.
pub trait Leases: Send + Sync + 'static {
    /// Proof of being the one active follower.
    type Lease: Send;

    /// Tries to become the one active `follower`; `None` if another one holds it. A lease
    /// lasts until dropped, or (where the target needs one) until `ttl` passes without a
    /// [`renew`](Self::renew).
    fn acquire(
        &self,
        follower: FollowerId,
        owner: Uuid,
        ttl: Duration,
    ) -> impl Future<Output = Result<Option<Self::Lease>, StoreError>> + Send;

    /// Keeps a lease; `false` if it was lost (expired and taken by another follower).
    fn renew(
        &self,
        lease: &mut Self::Lease,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives a lease up now, so that a standby takes over without waiting.
    fn release(&self, lease: Self::Lease) -> impl Future<Output = ()> + Send;
}

/// A projection's dead-letter table: events its handlers could not apply.
pub trait DeadLetters: Checkpoints {
    /// Parks an event in the dead-letter table, in `tx`.
    fn park(
        &self,
        tx: &mut Self::Transaction,
        projection: ProjectionId,
        parked: &ParkedEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The parked events of a projection, in log order.
    fn parked(
        &self,
        projection: ProjectionId,
    ) -> impl Future<Output = Result<Vec<ParkedEvent>, StoreError>> + Send;

    /// Removes a parked event, in `tx`; `false` if it was not parked.
    fn unpark(
        &self,
        tx: &mut Self::Transaction,
        projection: ProjectionId,
        event_id: Uuid,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Which version of a projection is active: versions build side by side, and the newest that
/// caught up is the one queries read.
pub trait Versions: Checkpoints {
    /// Makes `projection`'s version the active one of its name, in `tx`, unless a newer
    /// version already is.
    fn activate(
        &self,
        tx: &mut Self::Transaction,
        projection: ProjectionId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The active version of a projection name: the one queries should read. `None` until a
    /// version has caught up once.
    fn active_version(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<u32>, StoreError>> + Send;
}

/// A target that can record which messages a bus consumer processed, in the transaction that
/// applies them: what makes a [`Subscriber`](crate::bus::Subscriber) idempotent.
pub trait Inbox: Checkpoints {
    /// Records, in `tx`, that `consumer` processed `event_id`; `false` if it already had
    /// (the message is a duplicate, and `tx` must not apply it again).
    fn record(
        &self,
        tx: &mut Self::Transaction,
        consumer: &str,
        event_id: Uuid,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Forgets the event ids `consumer` processed before `before`, and says how many. A message
    /// delivered again after its id is forgotten is applied again, so keep the ids longer than
    /// the broker may redeliver: a Kafka topic's retention, a JetStream stream's maximum age,
    /// or as far back as a consumer group may ever be reset.
    fn prune(
        &self,
        consumer: &str,
        before: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// A process manager's instance as a target keeps it: its state as JSON, and its deadlines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredInstance {
    /// The state, as the manager's state type serialized it.
    pub state: String,
    /// Its deadlines: name and due time.
    pub deadlines: Vec<(String, DateTime<Utc>)>,
}

/// A deadline that came due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDeadline {
    /// The instance it belongs to.
    pub instance: String,
    /// Its name.
    pub name: String,
    /// When it was due.
    pub due: DateTime<Utc>,
}

/// What becomes of an instance in a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceChange<'a> {
    /// It runs on with this state and these deadlines.
    Running {
        /// Its state and deadlines.
        instance: &'a StoredInstance,
        /// Whether its deadlines differ from those last committed (always, for a new
        /// instance): a target may leave them as they are when not.
        deadlines_changed: bool,
    },
    /// It completed: its state, deadlines and refused commands are removed, the state kept
    /// in the archive when given.
    Completed {
        /// The final state, to archive.
        archive: Option<&'a str>,
    },
}

/// Where process managers keep their instances and deadlines, written in the transaction that
/// moves their checkpoint.
pub trait Instances: Checkpoints {
    /// An instance of `manager`, as last committed.
    fn instance(
        &self,
        manager: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<StoredInstance>, StoreError>> + Send;

    /// Writes what became of instance `id` of `manager`, in `tx`.
    fn save_instance(
        &self,
        tx: &mut Self::Transaction,
        manager: &str,
        id: &str,
        change: InstanceChange<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The deadlines of `manager` due by `now`, earliest first, at most `limit`.
    fn due_deadlines(
        &self,
        manager: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DueDeadline>, StoreError>> + Send;

    /// The refusal of a command `manager` sent with key `command_id`, if recorded.
    fn refusal(
        &self,
        manager: &str,
        command_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Records, at once, that the command instance `instance` of `manager` sent with key
    /// `command_id` was refused; the first record stands. The instance's records go when it
    /// completes.
    fn record_refusal(
        &self,
        manager: &str,
        instance: &str,
        command_id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// When the earliest deadline of `manager` is due, if it has any.
    fn next_deadline(
        &self,
        manager: &str,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send;

    /// A completed instance's archived state, if it was archived.
    fn archived(
        &self,
        manager: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

/// Everything a projection runner needs of where its read model lives: transactions and
/// checkpoints, leases, dead letters and versions. Implemented for every target that has
/// them all.
pub trait ProjectionTarget: Checkpoints + Leases + DeadLetters + Versions {}

impl<T: Checkpoints + Leases + DeadLetters + Versions> ProjectionTarget for T {}

/// Everything a process runner needs of where its instances live: transactions and
/// checkpoints, leases, dead letters, instances with their deadlines, and the inbox of the
/// messages it took from the bus. Implemented for every target that has them all (the
/// memory, SQLite and PostgreSQL targets do).
pub trait ProcessTarget: Checkpoints + Leases + Instances + DeadLetters + Inbox {}

impl<T: Checkpoints + Leases + Instances + DeadLetters + Inbox> ProcessTarget for T {}
