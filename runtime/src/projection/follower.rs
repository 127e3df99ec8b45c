//! The leased follower: one driver for everything that follows the global log from a
//! checkpoint under a lease (the projection runner, the outbox relay).
//!
//! The driver ([`Follow`]) owns the store it reads, the target that keeps the checkpoint and
//! the lease, the settings, and the life cycle: stand by while another instance holds the lease, take it,
//! listen for commits, catch up batch by batch, follow live (woken by commits, polling as a
//! fallback), notice being fenced off (the lease lost, or the checkpoint moved by another
//! instance) and stand by again, and give the lease up on every way out. A follower says only
//! what one batch is ([`Follower::step`]), where it starts ([`Follower::start`]) and what it
//! does between batches ([`Follower::idle`]).

use std::fmt;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::{BoxFuture, Fuse};

use super::lease::LeaseKeeper;
use super::target::{FollowerId, Leases};
use crate::contract::error::StoreError;
use crate::contract::event::LogPosition;
use crate::contract::store::{EventStore, LogWatch, Wake};
use crate::observe::health::{Health, Probe, State};
use crate::observe::metrics::Lag;

/// What ends a run: the caller's shutdown future, boxed once per run.
pub(crate) type Shutdown<'s> = Fuse<BoxFuture<'s, ()>>;

/// When [`Follower::idle`] is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idle {
    /// Before trying for the lease (at the start, and after each stand-by).
    Standby,
    /// The first time the log had nothing more since the follower started.
    CaughtUp,
    /// After waiting for the log to grow.
    Woken(Wake),
    /// The time the follower asked to be woken at ([`Follower::wake_at`]) came.
    Timer,
    /// Work came from outside the log ([`Follower::receive`]): a message from the bus.
    Received,
}

/// What one step read.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Batch {
    /// Events read from the log (0 when a step was cut short by shutdown).
    pub(crate) read: usize,
    /// When the newest of them was recorded.
    pub(crate) newest: Option<DateTime<Utc>>,
}

/// One follower of the log, driven by [`Follow`] over a store `S` and a target `T`.
pub(crate) trait Follower<S, T: Leases>: Send {
    /// What a run that ended without an error reports.
    type Stop: Send;
    /// Why it stopped.
    type Error: Send + fmt::Display;

    /// What its checkpoint and lease are kept under.
    fn id(&self) -> FollowerId;
    /// The error saying another instance took over.
    fn fenced(&self) -> Self::Error;
    /// Whether `error` says another instance took over.
    fn is_fenced(error: &Self::Error) -> bool;
    /// A store or target failure as its error.
    fn store_error(&self, error: StoreError) -> Self::Error;
    /// What a run that was shut down reports.
    fn shut_down(&mut self) -> Self::Stop;
    /// Why a run that ended with `stop` ended, for its health.
    fn why_stopped(_stop: &Self::Stop) -> String {
        "shut down".to_owned()
    }
    /// Records a batch's metrics: the events it read and the lag after it.
    fn record(&self, batch: Batch, lag: Lag);

    /// The checkpoint to follow from, setting up a follower that never ran.
    fn start(
        &mut self,
        follow: &mut Follow<S, T>,
    ) -> impl Future<Output = Result<LogPosition, Self::Error>> + Send;

    /// Reads one batch after `at` and applies it, moving `at`; returns what it read.
    /// `shutdown` is for a step that waits (a relay's backoff): it then returns early.
    fn step(
        &mut self,
        follow: &mut Follow<S, T>,
        at: &mut LogPosition,
        shutdown: &mut Shutdown<'_>,
    ) -> impl Future<Output = Result<Batch, Self::Error>> + Send;

    /// When a live follower wants its [`idle`](Self::idle) called even if the log stays
    /// quiet (a process manager's next deadline); `None`: only on commits and polls.
    fn wake_at(&self) -> Option<std::time::Instant> {
        None
    }

    /// Waits for work from outside the log (a process manager's messages from the bus),
    /// keeping it for the [`idle`](Self::idle) call with [`Idle::Received`] that follows. A
    /// live follower waits on it beside the log, so it must be cancel-safe: dropped before it
    /// completes, it loses nothing. By default nothing ever comes.
    fn receive(&mut self) -> impl Future<Output = ()> + Send {
        futures::future::pending()
    }

    /// Between batches; `Some` ends the run with that result.
    fn idle(
        &mut self,
        follow: &mut Follow<S, T>,
        moment: Idle,
    ) -> impl Future<Output = Result<Option<Self::Stop>, Self::Error>> + Send;
}

/// The driver: the store a follower reads, the target that keeps its checkpoint and lease,
/// and the settings every follower shares.
pub(crate) struct Follow<S, T: Leases> {
    pub(crate) store: S,
    pub(crate) target: T,
    /// Events per read (at least 1).
    pub(crate) batch_size: usize,
    /// The longest a live follower waits before reading the log again without being woken.
    pub(crate) poll: Duration,
    /// The first wait after a failure that is retried, doubling up to `max_backoff`.
    pub(crate) backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) lease: LeaseKeeper<T::Lease>,
    /// Where the follower reports its state, if a service asked.
    pub(crate) probe: Option<Probe>,
}

impl<S: fmt::Debug, T: Leases + fmt::Debug> fmt::Debug for Follow<S, T> {
    // The lease itself is the target's business (and need not be `Debug`): show whose it is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Follow")
            .field("store", &self.store)
            .field("target", &self.target)
            .field("batch_size", &self.batch_size)
            .field("poll", &self.poll)
            .field("backoff", &self.backoff)
            .field("max_backoff", &self.max_backoff)
            .field("lease_owner", &self.lease.owner)
            .field("lease_ttl", &self.lease.ttl)
            .finish()
    }
}

impl<S: EventStore, T: Leases> Follow<S, T> {
    /// A driver over `store` and `target` with batches of `batch_size`, a poll every second,
    /// backoff from 100 ms to 30 s, and leases of 30 s for a new owner.
    pub(crate) fn new(store: S, target: T, batch_size: usize) -> Self {
        Follow {
            store,
            target,
            batch_size,
            poll: Duration::from_secs(1),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            lease: LeaseKeeper::new(),
            probe: None,
        }
    }

    /// Registers the follower `id` in `health`.
    pub(crate) fn report_to(&mut self, health: &Health, id: FollowerId) {
        let (kind, name) = match id {
            FollowerId::Projection(id) => ("projection", id.to_string()),
            FollowerId::Relay(name) => ("relay", name.to_owned()),
            FollowerId::Process(name) => ("process manager", name.to_owned()),
        };
        self.probe = Some(health.probe(kind, name));
    }

    fn set_state(&self, state: impl FnOnce() -> State) {
        if let Some(probe) = &self.probe {
            probe.set(state());
        }
    }

    /// After a step: measures the lag (reading the log's head only when the batch came back
    /// full, that is, when the follower may be behind) and reports it to the follower's metrics
    /// and health.
    async fn observe<F: Follower<S, T>>(
        &mut self,
        follower: &mut F,
        batch: Batch,
        at: LogPosition,
    ) {
        let Some(lag) = self.lag(follower.id(), batch, at).await else {
            return;
        };
        follower.record(batch, lag);
        if let Some(probe) = &self.probe {
            probe.set_lag(lag);
        }
    }

    /// The lag after `batch` moved the follower `id` to `at`; `None` if the head is unknown.
    async fn lag(&mut self, id: FollowerId, batch: Batch, at: LogPosition) -> Option<Lag> {
        if batch.read < self.batch_size {
            return Some(Lag::default());
        }
        match self.store.head().await {
            Ok(head) => Some(Lag {
                events: head.saturating_sub(at.event),
                age: batch
                    .newest
                    .and_then(|t| (Utc::now() - t).to_std().ok())
                    .unwrap_or_default(),
            }),
            Err(error) => {
                tracing::debug!(follower = %id, %error, "cannot read the log's head to measure the lag");
                None
            }
        }
    }

    /// Takes or renews `follower`'s lease; `false` if another instance holds it.
    pub(crate) async fn hold<F: Follower<S, T>>(
        &mut self,
        follower: &mut F,
    ) -> Result<bool, F::Error> {
        let held = self.lease.hold(&self.target, follower.id()).await;
        held.map_err(|e| follower.store_error(e))
    }

    /// Takes or renews the lease, or fails with the follower's fenced error.
    pub(crate) async fn require<F: Follower<S, T>>(
        &mut self,
        follower: &mut F,
    ) -> Result<(), F::Error> {
        if self.hold(follower).await? {
            Ok(())
        } else {
            Err(follower.fenced())
        }
    }

    /// Gives the lease up, if held, so that a standby takes over at once.
    pub(crate) async fn release(&mut self) {
        self.lease.release(&self.target).await;
    }

    /// Applies everything the log holds now, with the lease (which stays held), reporting
    /// the events read and the checkpoint after each batch. Returns both at the end.
    pub(crate) async fn catch_up<F: Follower<S, T>>(
        &mut self,
        follower: &mut F,
        mut progress: impl FnMut(u64, LogPosition) + Send,
    ) -> Result<(u64, LogPosition), F::Error> {
        self.require(follower).await?;
        let mut at = follower.start(self).await?;
        let mut never: Shutdown<'_> = futures::future::pending().boxed().fuse();
        let mut read = 0;
        loop {
            let batch = follower.step(self, &mut at, &mut never).await?;
            self.observe(follower, batch, at).await;
            let n = batch.read;
            read += n as u64;
            progress(read, at);
            if n < self.batch_size {
                follower.idle(self, Idle::CaughtUp).await?;
                return Ok((read, at));
            }
        }
    }

    /// Follows the log until `shutdown` completes (checked between batches, so a batch is
    /// never cut short) or the follower ends the run. Stands by while another instance holds
    /// the lease, and again after being fenced off; gives the lease up on the way out.
    pub(crate) async fn run<F: Follower<S, T>>(
        &mut self,
        follower: &mut F,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<F::Stop, F::Error> {
        let mut shutdown: Shutdown<'_> = shutdown.boxed().fuse();
        let mut watch = self.store.watch(self.poll);
        loop {
            let result = match follower.idle(self, Idle::Standby).await {
                Ok(None) => match self.hold(follower).await {
                    Ok(true) => {
                        self.set_state(|| State::CatchingUp);
                        if let Err(error) = watch.listen().await {
                            tracing::warn!(%error, follower = %follower.id(), "cannot listen for commits; polling");
                        }
                        match self.follow(follower, &mut watch, &mut shutdown).await {
                            Err(error) if F::is_fenced(&error) => {
                                tracing::warn!(follower = %follower.id(), "lost the lease to another instance; standing by");
                                self.lease.lost();
                                self.set_state(|| State::Standby);
                                continue;
                            }
                            other => other,
                        }
                    }
                    Ok(false) => {
                        self.set_state(|| State::Standby);
                        tracing::debug!(follower = %follower.id(), "another instance holds the lease; standing by");
                        let standby = tokio::time::sleep(self.poll.min(self.lease.ttl / 3));
                        futures::select! {
                            () = standby.fuse() => continue,
                            () = &mut shutdown => Ok(follower.shut_down()),
                        }
                    }
                    Err(error) => Err(error),
                },
                Ok(Some(stop)) => Ok(stop),
                Err(error) => Err(error),
            };
            self.release().await;
            match &result {
                Ok(stop) => self.set_state(|| State::Stopped {
                    why: F::why_stopped(stop),
                }),
                Err(error) => {
                    // The follower applies nothing more: say so at once, with what stopped it.
                    tracing::error!(follower = %follower.id(), %error, "stopped on an error");
                    self.set_state(|| State::Failed {
                        error: error.to_string(),
                    });
                }
            }
            return result;
        }
    }

    /// Live following with the lease held: batches while there are events, waits between.
    async fn follow<F: Follower<S, T>>(
        &mut self,
        follower: &mut F,
        watch: &mut LogWatch,
        shutdown: &mut Shutdown<'_>,
    ) -> Result<F::Stop, F::Error> {
        let mut at = follower.start(self).await?;
        let mut caught_up = false;
        loop {
            if (&mut *shutdown).now_or_never().is_some() {
                return Ok(follower.shut_down());
            }
            let batch = follower.step(self, &mut at, shutdown).await?;
            self.observe(follower, batch, at).await;
            if batch.read == self.batch_size {
                continue;
            }
            if !caught_up {
                caught_up = true;
                if let Some(stop) = follower.idle(self, Idle::CaughtUp).await? {
                    return Ok(stop);
                }
                self.set_state(|| State::Live);
            }
            let timer = match follower.wake_at() {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).boxed(),
                None => futures::future::pending().boxed(),
            };
            let moment = futures::select! {
                wake = watch.wait().fuse() => Some(Idle::Woken(wake)),
                () = timer.fuse() => Some(Idle::Timer),
                () = follower.receive().fuse() => Some(Idle::Received),
                () = &mut *shutdown => None,
            };
            let Some(moment) = moment else {
                return Ok(follower.shut_down());
            };
            if let Some(stop) = follower.idle(self, moment).await? {
                return Ok(stop);
            }
            if !self.hold(follower).await? {
                return Err(follower.fenced());
            }
        }
    }
}

/// The builder methods every follower shares, for an `impl` block of a type with a field
/// `follow: Follow<_>`; `$what` names the follower in the docs ("runner", "relay").
macro_rules! follow_settings {
    ($what:literal) => {
        /// Events per read and per batch (at least 1).
        pub fn batch_size(mut self, events: usize) -> Self {
            self.follow.batch_size = events.max(1);
            self
        }

        #[doc = concat!("The longest a live ", $what, " waits before reading the log again without being woken.")]
        pub fn poll_interval(mut self, poll: Duration) -> Self {
            self.follow.poll = poll;
            self
        }

        #[doc = concat!("How long a lease lasts without renewal where the target's leases expire (SQLite): the time a standby waits to take over from a ", $what, " that died.")]
        pub fn lease_ttl(mut self, ttl: Duration) -> Self {
            self.follow.lease.ttl = ttl;
            self
        }

        #[doc = concat!("Reports this ", $what, "'s state and lag to `health` (see [`Health`](crate::observe::health::Health)): catching up, live, standing by, stopped, or failed with its error.")]
        pub fn health(mut self, health: &crate::observe::health::Health) -> Self {
            let id = <Core<_> as Follower<S, T>>::id(&self.core);
            self.follow.report_to(health, id);
            self
        }

        #[doc = concat!("The lease owner this ", $what, " identifies as (a new UUID by default). A ", $what, " restarted with the same owner takes its own unexpired lease back at once, instead of waiting for it to expire; never give two live ", $what, "s the same owner.")]
        pub fn owner(mut self, owner: Uuid) -> Self {
            self.follow.lease.owner = owner;
            self
        }
    };
}
pub(crate) use follow_settings;
