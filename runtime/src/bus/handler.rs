//! What a [`Subscriber`](super::Subscriber) hands messages to: a [`MessageHandler`], or a
//! `#[projection]` through [`ProjectionHandler`]; and the [`DeadLetter`] of a message given up
//! on.

use std::future::Future;

use super::Message;
use crate::contract::error::BoxError;
use crate::projection::ProjectionHandlers;

/// What a [`Subscriber`](super::Subscriber) feeds messages to: a read model update, or a command to run.
///
/// `C` is the target's connection: the open transaction that also records the message as
/// processed, so writes through it take effect exactly once. Effects outside it (a command on
/// another store, a call to a service) take effect at least once; make them idempotent with
/// [`Message::event_id`], e.g. as the causation id of the events a command records.
///
/// ```
/// use cqrs_runtime::bus::{Message, MessageHandler};
/// use cqrs_runtime::BoxError;
///
/// struct Deposits(Vec<u64>);
///
/// #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
/// struct Deposited { amount: u64 }
///
/// #[derive(cqrs_runtime::Event)]
/// enum Public {
///     Deposited(Deposited),
/// }
///
/// impl MessageHandler<()> for Deposits {
///     async fn handle(&mut self, message: &Message, _: &mut ()) -> Result<(), BoxError> {
///         match message.decode::<Public>()? {
///             Public::Deposited(d) => self.0.push(d.amount),
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait MessageHandler<C>: Send + 'static {
    /// Applies one message. An error rolls the transaction back; the message is tried again
    /// as the subscriber's [`PoisonPolicy`](crate::projection::PoisonPolicy) says, then
    /// dead-lettered (or stops the subscriber).
    fn handle<'a>(
        &'a mut self,
        message: &'a Message,
        conn: &'a mut C,
    ) -> impl Future<Output = Result<(), BoxError>> + Send + 'a;
}

/// Runs a projection (written with `#[projection]` for the producer's domain events) on
/// messages: each message is handed to it as the stored event it was published from.
/// Messages of aggregate types the projection does not follow are skipped.
#[derive(Debug, Clone, Default)]
pub struct ProjectionHandler<P>(pub P);

impl<C: Send, P: ProjectionHandlers<C>> MessageHandler<C> for ProjectionHandler<P> {
    async fn handle(&mut self, message: &Message, conn: &mut C) -> Result<(), BoxError> {
        if !P::AGGREGATES.contains(&message.aggregate_type.as_str()) {
            return Ok(());
        }
        self.0.handle(&message.to_stored(), conn).await
    }
}

/// A message given up on, as sent to the dead-letter topic or subject.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The consumer that gave up.
    pub consumer: String,
    /// The last error, as displayed.
    pub error: String,
    /// How many times the handler ran (0: the message was malformed).
    pub attempts: u32,
}
