//! `#[create]`, `#[upsert]` and unmarked handlers, with the refusals on the aggregate, sync and
//! async, fallible and infallible, with services and with the context.
use cqrs_runtime::{Aggregate, Command, CommandContext, Event, handlers};

#[derive(Debug, Clone, Command)]
pub enum StockCommand {
    Create { sku: String },
    Receive { count: u32 },
    Pick { count: u32 },
    Recount { count: u32 },
}

#[derive(Debug, Clone, Event)]
pub enum StockEvent {
    Created { sku: String },
    Received { count: u32 },
    Picked { count: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum StockError {
    #[error("unknown item")]
    Unknown,
    #[error("item exists")]
    Exists,
    #[error("only {0} left")]
    Short(u32),
}

#[derive(Default)]
pub struct Warehouse;

#[derive(Default, Aggregate)]
#[aggregate(
    command = StockCommand,
    event = StockEvent,
    error = StockError,
    services = Warehouse,
    missing = StockError::Unknown,
    exists = StockError::Exists,
)]
pub struct Stock {
    count: u32,
}

#[handlers]
impl Stock {
    #[create]
    async fn create(&self, cmd: Create) -> Created {
        Created { sku: cmd.sku }
    }

    fn receive(&self, cmd: Receive, _: &Warehouse) -> Option<Received> {
        (cmd.count > 0).then_some(Received { count: cmd.count })
    }

    async fn pick(&self, cmd: Pick) -> Result<Picked, StockError> {
        if cmd.count > self.count {
            return Err(StockError::Short(self.count));
        }
        Ok(Picked { count: cmd.count })
    }

    #[upsert]
    fn recount(&self, cmd: Recount, cx: &CommandContext<Self>) -> Vec<StockEvent> {
        let mut events = Vec::new();
        if !cx.exists() {
            events.push(Created { sku: cx.id().clone() }.into());
        }
        events.push(Received { count: cmd.count }.into());
        events
    }

    fn created(&mut self, _: &Created) {}

    fn received(&mut self, e: &Received) {
        self.count += e.count;
    }

    fn picked(&mut self, e: &Picked) {
        self.count -= e.count;
    }
}
