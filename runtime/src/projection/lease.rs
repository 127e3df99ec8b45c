//! Holding a target's lease across batches: taken once, renewed when a third of its time to
//! live has passed, given up on release.

use std::time::{Duration, Instant};

use uuid::Uuid;

use super::target::{FollowerId, Leases};
use crate::contract::error::StoreError;

#[derive(Debug)]
pub(crate) struct LeaseKeeper<L> {
    pub(crate) owner: Uuid,
    pub(crate) ttl: Duration,
    held: Option<(L, Instant)>,
}

impl<L> LeaseKeeper<L> {
    /// A keeper for a new owner, with leases of 30 s.
    pub(crate) fn new() -> Self {
        LeaseKeeper {
            owner: Uuid::now_v7(),
            ttl: Duration::from_secs(30),
            held: None,
        }
    }

    /// Takes or renews the lease of `id`; `false` if another owner holds it.
    pub(crate) async fn hold<T>(&mut self, target: &T, id: FollowerId) -> Result<bool, StoreError>
    where
        T: Leases<Lease = L>,
    {
        if let Some((lease, renewed)) = &mut self.held {
            if renewed.elapsed() < self.ttl / 3 {
                return Ok(true);
            }
            if target.renew(lease).await? {
                *renewed = Instant::now();
                return Ok(true);
            }
            self.held = None;
            return Ok(false);
        }
        Ok(match target.acquire(id, self.owner, self.ttl).await? {
            Some(lease) => {
                tracing::info!(%id, owner = %self.owner, "holding the lease");
                self.held = Some((lease, Instant::now()));
                true
            }
            None => false,
        })
    }

    /// Forgets a lease another owner took over.
    pub(crate) fn lost(&mut self) {
        self.held = None;
    }

    /// Gives the lease up, if held, so that a standby takes over at once.
    pub(crate) async fn release<T>(&mut self, target: &T)
    where
        T: Leases<Lease = L>,
    {
        if let Some((lease, _)) = self.held.take() {
            target.release(lease).await;
        }
    }
}
