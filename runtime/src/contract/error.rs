//! The runtime's errors. Each names what went wrong and where (aggregate type, id, sequence,
//! event type), so a log line is enough to find the bad row or the racing writer.

use std::error::Error as StdError;

use crate::contract::event::DecodeError;

/// A boxed error from a store backend or a user function.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// An append found the stream at another version than the command was decided on.
///
/// Another writer appended first. Re-load and re-run the command (the repository does this by
/// itself with a [`RetryPolicy`](crate::RetryPolicy)), or report the conflict to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "version conflict on {aggregate_type} `{aggregate_id}`: expected version {expected}, found {actual}"
)]
pub struct Conflict {
    /// The aggregate type name.
    pub aggregate_type: String,
    /// The aggregate id.
    pub aggregate_id: String,
    /// The version the command was decided on.
    pub expected: u64,
    /// The version the stream had when the append was attempted.
    pub actual: u64,
}

/// An error from an event store, or from turning its rows into values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A stored event could not be decoded.
    #[error(
        "cannot decode event at {aggregate_type} `{aggregate_id}` sequence {sequence}: {source}"
    )]
    Decode {
        /// The aggregate type name.
        aggregate_type: String,
        /// The aggregate id.
        aggregate_id: String,
        /// The event's sequence in its stream.
        sequence: u64,
        /// What went wrong, naming the event type and version.
        #[source]
        source: DecodeError,
    },
    /// An event could not be serialized before it was stored.
    #[error("cannot encode event `{event_type}` of {aggregate_type} `{aggregate_id}`: {source}")]
    Encode {
        /// The aggregate type name.
        aggregate_type: String,
        /// The aggregate id.
        aggregate_id: String,
        /// The event's type name.
        event_type: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// A row read from the store breaks an invariant (a gap in a stream, a bad column).
    #[error("corrupt data in the event store: {0}")]
    Corrupt(String),
    /// The database's schema was migrated by a newer release: this code does not know its
    /// tables, so it touches nothing.
    #[error(
        "{what} is at version {found}, newer than this code knows ({known}); run a newer release of the service"
    )]
    SchemaTooNew {
        /// Which schema: "the database schema", "the database schema `bank`".
        what: String,
        /// The version the database is at.
        found: i64,
        /// The newest version this code knows.
        known: i64,
    },
    /// The store's configuration (a table name, a path, a URL) is invalid.
    #[error("invalid event store configuration: {0}")]
    Config(String),
    /// The backend failed: I/O, the database, the network.
    #[error("event store backend failed: {0}")]
    Backend(#[source] BoxError),
    /// An append carried a command id ([`Metadata::command_id`](crate::Metadata::command_id))
    /// that the stream has recorded already: nothing was written. The repository answers this
    /// with the first run's events.
    #[error(
        "command `{}` was already applied to {} `{}` (its events are {} to {}); nothing was written",
        .0.command_id, .0.aggregate_type, .0.aggregate_id, .0.first_sequence, .0.last_sequence
    )]
    DuplicateCommand(Box<crate::contract::store::CommandRecord>),
    /// An inline projection failed on an appended event, so the append was rolled back.
    #[error(
        "inline projection `{projection}` failed on {event}, so the append was rolled back: {source}"
    )]
    Inline {
        /// The projection's name and version.
        projection: String,
        /// The event it failed on.
        event: String,
        /// The handler's error.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(error: impl Into<BoxError>) -> Self {
        StoreError::Backend(error.into())
    }
}

/// Why an append did not happen. Nothing was written in either case.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The stream was not at the expected version.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a command did not produce committed events.
///
/// `E` is the aggregate's own error type: [`CommandError::Rejected`] carries it unchanged, so a
/// caller can `match` on domain errors (map them to HTTP 4xx) and treat the rest as 409 or 5xx.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E> {
    /// The aggregate refused the command.
    #[error(transparent)]
    Rejected(E),
    /// Another writer appended first, and retries (if any) ran out.
    #[error(transparent)]
    Conflict(Conflict),
    /// The store failed, or stored data could not be read.
    #[error(transparent)]
    Store(StoreError),
}

impl<E> From<AppendError> for CommandError<E> {
    fn from(error: AppendError) -> Self {
        match error {
            AppendError::Conflict(c) => CommandError::Conflict(c),
            AppendError::Store(s) => CommandError::Store(s),
        }
    }
}

impl<E> From<StoreError> for CommandError<E> {
    fn from(error: StoreError) -> Self {
        CommandError::Store(error)
    }
}

impl<E> CommandError<E> {
    /// The domain error, if the aggregate rejected the command.
    pub fn rejected(&self) -> Option<&E> {
        match self {
            CommandError::Rejected(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is a version conflict.
    pub fn is_conflict(&self) -> bool {
        matches!(self, CommandError::Conflict(_))
    }
}
