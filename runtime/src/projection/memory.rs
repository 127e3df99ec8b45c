//! The memory target: checkpoints, dead letters, active versions and leases kept in the
//! process, for read models kept in memory (which are rebuilt from position 0 when the
//! process starts).

use std::collections::HashMap;
use std::future::{Future, ready};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ProjectionId;
use super::target::{
    Advance, Checkpoints, CommitError, DeadLetters, DueDeadline, FollowerId, Inbox, InstanceChange,
    Instances, Leases, ParkedEvent, StoredInstance, Versions,
};
use crate::contract::error::StoreError;
use crate::contract::event::LogPosition;

/// A [`ProjectionTarget`](super::ProjectionTarget) in memory. Cloning shares it; handlers get `()` as their connection.
///
/// Its transactions are atomic for the target's own data (checkpoint, dead letters, active
/// version), but cannot undo what a handler changed in memory, so the runner never applies an
/// event to a memory read model twice.
#[derive(Debug, Clone, Default)]
pub struct MemoryTarget {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    checkpoints: HashMap<FollowerId, LogPosition>,
    parked: HashMap<ProjectionId, Vec<ParkedEvent>>,
    active: HashMap<String, u32>,
    leases: HashMap<FollowerId, Uuid>,
    /// Bus consumers' processed event ids, with when they were processed.
    processed: HashMap<(String, Uuid), DateTime<Utc>>,
    /// Process managers' running instances, by (manager, instance).
    instances: HashMap<(String, String), StoredInstance>,
    /// Completed instances' final states, when archived.
    archive: HashMap<(String, String), String>,
    /// Process managers' refused commands, by (manager, command id): the instance and the
    /// reason.
    refusals: HashMap<(String, String), (String, String)>,
}

/// A transaction of a [`MemoryTarget`]: its changes, applied at commit.
#[derive(Debug, Default)]
pub struct MemoryTransaction {
    connection: (),
    changes: Vec<Change>,
}

#[derive(Debug)]
enum Change {
    ClearCheckpoint(FollowerId),
    Park(ProjectionId, Box<ParkedEvent>),
    Unpark(ProjectionId, Uuid),
    Activate(ProjectionId),
    Processed(String, Uuid),
    Instance {
        key: (String, String),
        running: Option<StoredInstance>,
        archive: Option<String>,
    },
}

/// The lease of a [`MemoryTarget`]: released when dropped.
#[derive(Debug)]
pub struct MemoryLease {
    state: Arc<Mutex<State>>,
    follower: FollowerId,
    owner: Uuid,
}

impl Drop for MemoryLease {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.leases.get(&self.follower) == Some(&self.owner) {
            state.leases.remove(&self.follower);
        }
    }
}

impl MemoryTarget {
    /// An empty target.
    pub fn new() -> Self {
        MemoryTarget::default()
    }

    // Every change checks first and writes after, so a poisoned lock holds consistent data.
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Checkpoints for MemoryTarget {
    type Connection = ();
    type Transaction = MemoryTransaction;
    const ATOMIC: bool = false;

    fn connection(tx: &mut MemoryTransaction) -> &mut () {
        &mut tx.connection
    }

    fn begin(&self) -> impl Future<Output = Result<MemoryTransaction, StoreError>> + Send {
        ready(Ok(MemoryTransaction::default()))
    }

    fn commit(
        &self,
        tx: MemoryTransaction,
        advance: Option<Advance>,
    ) -> impl Future<Output = Result<(), CommitError>> + Send {
        ready(self.with(|state| {
            // The checkpoint as this transaction sees it: cleared by it, or as stored.
            if let Some(advance) = advance {
                let cleared = tx
                    .changes
                    .iter()
                    .any(|c| matches!(c, Change::ClearCheckpoint(id) if *id == advance.follower));
                let current = if cleared {
                    None
                } else {
                    state.checkpoints.get(&advance.follower).copied()
                };
                if current != advance.from {
                    return Err(CommitError::Moved(advance.follower));
                }
            }
            for change in tx.changes {
                match change {
                    Change::ClearCheckpoint(id) => {
                        state.checkpoints.remove(&id);
                    }
                    Change::Park(id, parked) => state.parked.entry(id).or_default().push(*parked),
                    Change::Unpark(id, event_id) => {
                        if let Some(parked) = state.parked.get_mut(&id) {
                            parked.retain(|p| p.event.event_id != event_id);
                        }
                    }
                    Change::Activate(id) => {
                        let active = state.active.entry(id.name.to_owned()).or_default();
                        *active = (*active).max(id.version);
                    }
                    Change::Processed(consumer, event_id) => {
                        state.processed.insert((consumer, event_id), Utc::now());
                    }
                    Change::Instance {
                        key,
                        running,
                        archive,
                    } => {
                        match running {
                            Some(instance) => {
                                state.instances.insert(key.clone(), instance);
                            }
                            None => {
                                state.instances.remove(&key);
                                let (manager, instance) = (&key.0, &key.1);
                                state
                                    .refusals
                                    .retain(|(m, _), (i, _)| m != manager || i != instance);
                            }
                        }
                        if let Some(archived) = archive {
                            state.archive.insert(key, archived);
                        }
                    }
                }
            }
            if let Some(advance) = advance {
                state.checkpoints.insert(advance.follower, advance.to);
            }
            Ok(())
        }))
    }

    fn rollback(&self, _tx: MemoryTransaction) -> impl Future<Output = ()> + Send {
        ready(())
    }

    fn checkpoint(
        &self,
        follower: impl Into<FollowerId> + Send,
    ) -> impl Future<Output = Result<Option<LogPosition>, StoreError>> + Send {
        let follower = follower.into();
        ready(Ok(self.with(|s| s.checkpoints.get(&follower).copied())))
    }

    fn clear_checkpoint(
        &self,
        tx: &mut MemoryTransaction,
        follower: impl Into<FollowerId> + Send,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        tx.changes.push(Change::ClearCheckpoint(follower.into()));
        ready(Ok(()))
    }
}

impl DeadLetters for MemoryTarget {
    fn park(
        &self,
        tx: &mut MemoryTransaction,
        projection: ProjectionId,
        parked: &ParkedEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        tx.changes
            .push(Change::Park(projection, Box::new(parked.clone())));
        ready(Ok(()))
    }

    fn parked(
        &self,
        projection: ProjectionId,
    ) -> impl Future<Output = Result<Vec<ParkedEvent>, StoreError>> + Send {
        ready(Ok(self.with(|s| {
            s.parked.get(&projection).cloned().unwrap_or_default()
        })))
    }

    fn unpark(
        &self,
        tx: &mut MemoryTransaction,
        projection: ProjectionId,
        event_id: Uuid,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let found = self.with(|s| {
            s.parked
                .get(&projection)
                .is_some_and(|p| p.iter().any(|p| p.event.event_id == event_id))
        });
        if found {
            tx.changes.push(Change::Unpark(projection, event_id));
        }
        ready(Ok(found))
    }
}

impl Versions for MemoryTarget {
    fn activate(
        &self,
        tx: &mut MemoryTransaction,
        projection: ProjectionId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        tx.changes.push(Change::Activate(projection));
        ready(Ok(()))
    }

    fn active_version(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<u32>, StoreError>> + Send {
        ready(Ok(self.with(|s| s.active.get(name).copied())))
    }
}

impl Leases for MemoryTarget {
    type Lease = MemoryLease;

    fn acquire(
        &self,
        follower: FollowerId,
        owner: Uuid,
        _ttl: Duration,
    ) -> impl Future<Output = Result<Option<MemoryLease>, StoreError>> + Send {
        let taken = self.with(|s| match s.leases.get(&follower) {
            Some(holder) if *holder != owner => false,
            _ => {
                s.leases.insert(follower, owner);
                true
            }
        });
        ready(Ok(taken.then(|| MemoryLease {
            state: Arc::clone(&self.state),
            follower,
            owner,
        })))
    }

    fn renew(
        &self,
        lease: &mut MemoryLease,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        ready(Ok(self.with(|s| {
            s.leases.get(&lease.follower) == Some(&lease.owner)
        })))
    }

    fn release(&self, lease: MemoryLease) -> impl Future<Output = ()> + Send {
        drop(lease);
        ready(())
    }
}

impl Inbox for MemoryTarget {
    fn record(
        &self,
        tx: &mut MemoryTransaction,
        consumer: &str,
        event_id: Uuid,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let key = (consumer.to_owned(), event_id);
        let seen = self.with(|state| state.processed.contains_key(&key))
            || tx
                .changes
                .iter()
                .any(|c| matches!(c, Change::Processed(c, e) if *c == key.0 && *e == key.1));
        if !seen {
            tx.changes.push(Change::Processed(key.0, key.1));
        }
        ready(Ok(!seen))
    }

    fn prune(
        &self,
        consumer: &str,
        before: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let pruned = self.with(|state| {
            let before_len = state.processed.len();
            state
                .processed
                .retain(|(c, _), at| c != consumer || *at >= before);
            (before_len - state.processed.len()) as u64
        });
        ready(Ok(pruned))
    }
}

impl Instances for MemoryTarget {
    fn instance(
        &self,
        manager: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<StoredInstance>, StoreError>> + Send {
        let key = (manager.to_owned(), id.to_owned());
        ready(Ok(self.with(|state| state.instances.get(&key).cloned())))
    }

    fn save_instance(
        &self,
        tx: &mut MemoryTransaction,
        manager: &str,
        id: &str,
        change: InstanceChange<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let key = (manager.to_owned(), id.to_owned());
        tx.changes.push(match change {
            InstanceChange::Running { instance, .. } => Change::Instance {
                key,
                running: Some(instance.clone()),
                archive: None,
            },
            InstanceChange::Completed { archive } => Change::Instance {
                key,
                running: None,
                archive: archive.map(str::to_owned),
            },
        });
        ready(Ok(()))
    }

    fn due_deadlines(
        &self,
        manager: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DueDeadline>, StoreError>> + Send {
        let mut due: Vec<DueDeadline> = self.with(|state| {
            state
                .instances
                .iter()
                .filter(|((m, _), _)| m == manager)
                .flat_map(|((_, instance), stored)| {
                    stored
                        .deadlines
                        .iter()
                        .filter(|(_, at)| *at <= now)
                        .map(|(name, at)| DueDeadline {
                            instance: instance.clone(),
                            name: name.clone(),
                            due: *at,
                        })
                })
                .collect()
        });
        due.sort_by(|a, b| (a.due, &a.instance, &a.name).cmp(&(b.due, &b.instance, &b.name)));
        due.truncate(limit);
        ready(Ok(due))
    }

    fn refusal(
        &self,
        manager: &str,
        command_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        let key = (manager.to_owned(), command_id.to_owned());
        ready(Ok(self.with(|state| {
            state.refusals.get(&key).map(|(_, reason)| reason.clone())
        })))
    }

    fn record_refusal(
        &self,
        manager: &str,
        instance: &str,
        command_id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let key = (manager.to_owned(), command_id.to_owned());
        self.with(|state| {
            let record = (instance.to_owned(), reason.to_owned());
            state.refusals.entry(key).or_insert(record);
        });
        ready(Ok(()))
    }

    fn next_deadline(
        &self,
        manager: &str,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send {
        ready(Ok(self.with(|state| {
            state
                .instances
                .iter()
                .filter(|((m, _), _)| m == manager)
                .flat_map(|(_, stored)| stored.deadlines.iter().map(|(_, due)| *due))
                .min()
        })))
    }

    fn archived(
        &self,
        manager: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        let key = (manager.to_owned(), id.to_owned());
        ready(Ok(self.with(|state| state.archive.get(&key).cloned())))
    }
}
