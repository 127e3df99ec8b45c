//! Applying a batch: one target transaction per batch, the prefix before a failing event
//! committed, then the poison policy for the event itself (retry, park, or stop).

use super::Core;
use crate::contract::error::BoxError;
use crate::contract::event::{LogPosition, StoredEvent};
use crate::observe::metrics;
use crate::projection::target::{Advance, ParkedEvent, ProjectionTarget};
use crate::projection::{EventRef, ProjectionError, ProjectionHandlers};

/// How a run of a slice of a batch ended.
pub(super) enum Slice {
    Done,
    /// The event at this index failed; everything before it is committed.
    FailedAt(usize, BoxError),
}

impl<P> Core<P> {
    /// Runs the `#[reset]` handler (if any) in `tx` and commits the checkpoint at the start,
    /// where there is none (or it was cleared in `tx`).
    pub(super) async fn reset_to_start<T>(
        &mut self,
        target: &T,
        mut tx: T::Transaction,
    ) -> Result<(), ProjectionError>
    where
        T: ProjectionTarget,
        P: ProjectionHandlers<T::Connection>,
    {
        let id = P::id();
        if P::CAN_RESET
            && let Err(source) = self.projection.reset(T::connection(&mut tx)).await
        {
            target.rollback(tx).await;
            return Err(ProjectionError::Reset {
                projection: id,
                source,
            });
        }
        let advance = Advance {
            follower: id.into(),
            from: None,
            to: LogPosition::START,
        };
        target.commit(tx, Some(advance)).await?;
        Ok(())
    }

    /// Applies `events` in one transaction and commits the checkpoint after the last one. If
    /// one fails, commits everything before it (re-running that prefix in a new transaction
    /// where the target rolled the first one back) and says which.
    pub(super) async fn apply<T>(
        &mut self,
        target: &T,
        events: &[StoredEvent],
        from: LogPosition,
    ) -> Result<Slice, ProjectionError>
    where
        T: ProjectionTarget,
        P: ProjectionHandlers<T::Connection>,
    {
        let id = P::id();
        // A projection with batch handlers applies the slice at once; if that fails, the
        // transaction is rolled back and the slice applied event by event below, which finds
        // the failing event. (A target that cannot roll back never takes this path.)
        if P::BATCHED
            && T::ATOMIC
            && let Some(last) = events.last()
        {
            let mut tx = target.begin().await?;
            match self
                .projection
                .handle_batch(events, T::connection(&mut tx))
                .await
            {
                Ok(()) => {
                    let advance = Advance {
                        follower: id.into(),
                        from: Some(from),
                        to: last.position,
                    };
                    target.commit(tx, Some(advance)).await?;
                    return Ok(Slice::Done);
                }
                Err(error) => {
                    target.rollback(tx).await;
                    tracing::debug!(projection = %id, %error, "a batch failed; applying it event by event");
                }
            }
        }
        let mut end = events.len();
        let mut failure: Option<(usize, BoxError)> = None;
        loop {
            let mut tx = target.begin().await?;
            let mut failed = None;
            for (i, event) in events[..end].iter().enumerate() {
                if !P::AGGREGATES.contains(&event.aggregate_type.as_str()) {
                    continue;
                }
                if let Err(error) = self.projection.handle(event, T::connection(&mut tx)).await {
                    failed = Some((i, error));
                    break;
                }
            }
            let commit_to = match failed {
                Some((k, error)) if T::ATOMIC => {
                    // Nothing of this transaction may stay: run the events before `k` again.
                    target.rollback(tx).await;
                    end = k;
                    failure = Some((k, error));
                    continue;
                }
                Some((k, error)) => {
                    failure = Some((k, error));
                    k
                }
                None => end,
            };
            if commit_to == 0 {
                target.rollback(tx).await;
            } else {
                let advance = Advance {
                    follower: id.into(),
                    from: Some(from),
                    to: events[commit_to - 1].position,
                };
                target.commit(tx, Some(advance)).await?;
            }
            return Ok(match failure {
                Some((k, error)) => Slice::FailedAt(k, error),
                None => Slice::Done,
            });
        }
    }

    /// An event whose handler failed: retry, park or stop, as the policy says. On `Ok` the
    /// event is applied or parked and the checkpoint is at it.
    pub(super) async fn poison<T>(
        &mut self,
        target: &T,
        event: &StoredEvent,
        error: BoxError,
        from: LogPosition,
    ) -> Result<(), ProjectionError>
    where
        T: ProjectionTarget,
        P: ProjectionHandlers<T::Connection>,
    {
        let id = P::id();
        let advance = Advance {
            follower: id.into(),
            from: Some(from),
            to: event.position,
        };
        let mut attempts = 1;
        let mut last = error;
        tracing::warn!(projection = %id, event = %EventRef::of(event), error = %last, "a projection handler failed");
        for retry in 1..=self.policy.retries() {
            tokio::time::sleep(self.policy.delay(retry)).await;
            let mut tx = target.begin().await?;
            attempts += 1;
            match self.projection.handle(event, T::connection(&mut tx)).await {
                Ok(()) => {
                    target.commit(tx, Some(advance)).await?;
                    tracing::info!(projection = %id, event = %EventRef::of(event), attempts, "a retried event applied");
                    return Ok(());
                }
                Err(error) => {
                    target.rollback(tx).await;
                    tracing::warn!(projection = %id, event = %EventRef::of(event), attempts, %error, "a retried event failed again");
                    last = error;
                }
            }
        }
        if !self.policy.parks() {
            // A run logs the error at once, with the event; a catch-up returns it.
            return Err(ProjectionError::Handler {
                projection: id,
                event: EventRef::of(event),
                attempts,
                source: last,
            });
        }
        let parked = ParkedEvent {
            event: event.clone(),
            error: last.to_string(),
            attempts,
            parked_at: chrono::Utc::now(),
        };
        let mut tx = target.begin().await?;
        target.park(&mut tx, id, &parked).await?;
        target.commit(tx, Some(advance)).await?;
        ::metrics::counter!(metrics::DEAD_LETTERS, "follower" => id.name).increment(1);
        tracing::warn!(projection = %id, event = %EventRef::of(event), attempts, error = %parked.error, "parked an event in the dead-letter table");
        Ok(())
    }
}
