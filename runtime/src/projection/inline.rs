//! Inline projections: applied inside the append's own transaction, so that a command's events
//! and their read model commit together (read-your-writes). A failing inline handler fails the
//! append, and nothing of it is written.
//!
//! They see the events appended while they are registered; build one over the existing history
//! with a [`Projector`](super::Projector) (its `rebuild`) before registering it, while nothing
//! appends. Keep their read model in the database: what a handler changes in memory cannot be
//! rolled back with the transaction.

use std::fmt;

use futures::future::BoxFuture;

use super::{EventRef, ProjectionHandlers, ProjectionId};
use crate::contract::error::{BoxError, StoreError};
use crate::contract::event::StoredEvent;

/// The inline projections of a store, applied in the order they were added. `C` is the
/// connection handlers write with: `sqlx::SqliteConnection`, `sqlx::PgConnection`, or `()`
/// for the in-memory store.
///
/// ```
/// use cqrs_runtime::projection::InlineProjections;
/// use cqrs_runtime::doc_support::Counted;
/// use cqrs_runtime::{InMemoryStore, Repository};
/// use cqrs_runtime::doc_support::{Counter, CounterCommand};
///
/// # futures::executor::block_on(async {
/// let counted = Counted::default();
/// let store = InMemoryStore::with_inline(InlineProjections::new().with(counted.clone()));
/// Repository::<Counter, _>::new(store).execute(&"c-1".to_owned(), CounterCommand::Add(3)).await.unwrap();
/// // Up to date as soon as the command returned.
/// assert_eq!(counted.total(), 3);
/// # });
/// ```
pub struct InlineProjections<C> {
    projections: Vec<Box<dyn InlineProjection<C>>>,
}

impl<C> fmt::Debug for InlineProjections<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.projections.iter().map(|p| p.id()))
            .finish()
    }
}

impl<C: Send + 'static> Default for InlineProjections<C> {
    fn default() -> Self {
        InlineProjections {
            projections: Vec::new(),
        }
    }
}

impl<C: Send + 'static> InlineProjections<C> {
    /// None yet.
    pub fn new() -> Self {
        InlineProjections::default()
    }

    /// Adds a projection.
    pub fn with<P: ProjectionHandlers<C>>(mut self, projection: P) -> Self {
        self.projections.push(Box::new(projection));
        self
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.projections.is_empty()
    }

    /// Applies one append's events to every projection, through `conn`. The first failure is
    /// returned as [`StoreError::Inline`], naming the projection and the event; the caller
    /// rolls the append back. (The SQL stores call it in their transaction; the in-memory
    /// store runs its projections under its own lock.)
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) async fn apply(
        &mut self,
        events: &[StoredEvent],
        conn: &mut C,
    ) -> Result<(), StoreError> {
        self.run(events, conn, false).await
    }

    /// [`apply`](Self::apply) for handlers that never wait (the in-memory store applies them
    /// under its lock): a handler that would wait fails the append.
    pub(crate) fn apply_now(
        &mut self,
        events: &[StoredEvent],
        conn: &mut C,
    ) -> Result<(), StoreError> {
        use futures::FutureExt;
        // With `now`, no handler is awaited: the whole run completes on its first poll.
        self.run(events, conn, true)
            .now_or_never()
            .unwrap_or_else(|| Err(StoreError::Backend(WAITED.into())))
    }

    async fn run(
        &mut self,
        events: &[StoredEvent],
        conn: &mut C,
        now: bool,
    ) -> Result<(), StoreError> {
        use futures::FutureExt;
        for projection in &mut self.projections {
            let id = projection.id();
            for event in events {
                if !projection.follows(&event.aggregate_type) {
                    continue;
                }
                let handled = projection.handle(event, conn);
                let handled = if now {
                    handled.now_or_never().unwrap_or_else(|| Err(WAITED.into()))
                } else {
                    handled.await
                };
                if let Err(source) = handled {
                    return Err(inline_error(id, event, source));
                }
            }
        }
        Ok(())
    }
}

const WAITED: &str = "the handler waited; inline projections of the in-memory store must not wait (use a Projector for handlers that do I/O)";

fn inline_error(projection: ProjectionId, event: &StoredEvent, source: BoxError) -> StoreError {
    StoreError::Inline {
        projection: projection.to_string(),
        event: EventRef::of(event).to_string(),
        source,
    }
}

/// A projection as an inline list holds it: the object-safe face of [`ProjectionHandlers`].
pub trait InlineProjection<C>: Send {
    /// Its name and version.
    fn id(&self) -> ProjectionId;
    /// Whether it reads events of this aggregate type.
    fn follows(&self, aggregate_type: &str) -> bool;
    /// Runs its handler for `event`.
    fn handle<'a>(
        &'a mut self,
        event: &'a StoredEvent,
        conn: &'a mut C,
    ) -> BoxFuture<'a, Result<(), BoxError>>;
}

impl<C: Send, P: ProjectionHandlers<C>> InlineProjection<C> for P {
    fn id(&self) -> ProjectionId {
        P::id()
    }

    fn follows(&self, aggregate_type: &str) -> bool {
        P::AGGREGATES.contains(&aggregate_type)
    }

    fn handle<'a>(
        &'a mut self,
        event: &'a StoredEvent,
        conn: &'a mut C,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(ProjectionHandlers::handle(self, event, conn))
    }
}
