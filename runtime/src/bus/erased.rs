//! A [`Source`] and a [`Publisher`] behind `dyn`: what a process runner keeps, so that its
//! type does not grow a parameter per broker.

use std::any::Any;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{BusError, DeadLetter, Delivery, Message, Publisher, Source};

/// The receipt of an [`ErasedSource`]: the source's own, boxed.
pub(crate) type ErasedReceipt = Box<dyn Any + Send>;

/// [`Source`] with boxed futures and receipts.
pub(crate) trait ErasedSource: Send {
    fn next(&mut self) -> BoxFuture<'_, Result<Delivery<ErasedReceipt>, BusError>>;
    fn try_next(&mut self) -> BoxFuture<'_, Result<Option<Delivery<ErasedReceipt>>, BusError>>;
    fn ack(&mut self, receipt: ErasedReceipt) -> BoxFuture<'_, Result<(), BusError>>;
    fn dead_letter<'a>(
        &'a mut self,
        receipt: &'a ErasedReceipt,
        letter: &'a DeadLetter,
    ) -> BoxFuture<'a, Result<(), BusError>>;
}

fn erase<R: Send + 'static>((message, receipt): Delivery<R>) -> Delivery<ErasedReceipt> {
    (message, Box::new(receipt))
}

fn foreign() -> BusError {
    BusError::Config("a receipt of another source".to_owned())
}

impl<S: Source> ErasedSource for S
where
    S::Receipt: 'static,
{
    fn next(&mut self) -> BoxFuture<'_, Result<Delivery<ErasedReceipt>, BusError>> {
        Source::next(self).map(|d| d.map(erase)).boxed()
    }

    fn try_next(&mut self) -> BoxFuture<'_, Result<Option<Delivery<ErasedReceipt>>, BusError>> {
        Source::try_next(self)
            .map(|d| d.map(|d| d.map(erase)))
            .boxed()
    }

    fn ack(&mut self, receipt: ErasedReceipt) -> BoxFuture<'_, Result<(), BusError>> {
        async move {
            let receipt = receipt.downcast::<S::Receipt>().map_err(|_| foreign())?;
            Source::ack(self, *receipt).await
        }
        .boxed()
    }

    fn dead_letter<'a>(
        &'a mut self,
        receipt: &'a ErasedReceipt,
        letter: &'a DeadLetter,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        match receipt.downcast_ref::<S::Receipt>() {
            Some(receipt) => Source::dead_letter(self, receipt, letter).boxed(),
            None => futures::future::ready(Err(foreign())).boxed(),
        }
    }
}

/// [`Publisher`] with a boxed future.
pub(crate) trait ErasedPublisher: Send {
    fn publish<'a>(&'a mut self, messages: &'a [Message]) -> BoxFuture<'a, Result<(), BusError>>;
}

impl<P: Publisher> ErasedPublisher for P {
    fn publish<'a>(&'a mut self, messages: &'a [Message]) -> BoxFuture<'a, Result<(), BusError>> {
        Publisher::publish(self, messages).boxed()
    }
}
