//! Waking followers of a PostgreSQL log: each store instance notifies `LISTEN`ers after its
//! appends commit, and [`LogWaker`] waits for a notification or the poll interval.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::postgres::{PgListener, PgPool};

use crate::contract::error::StoreError;
use crate::contract::store::{Wake, WatchWaker};

/// At most one notification per this interval per store instance: followers re-read the log
/// from their checkpoint on every wake, so one notification covers any number of commits, and
/// a busy writer does not pay a notification per append.
const NOTIFY_INTERVAL: Duration = Duration::from_millis(5);

/// Sends one `pg_notify` per wake-up, then rests for [`NOTIFY_INTERVAL`]; wake-ups meanwhile
/// fold into the next one. Stops when the store is dropped.
pub(super) async fn notifier<T: Send + Sync>(
    pool: PgPool,
    channel: String,
    appended: Arc<tokio::sync::Notify>,
    store: std::sync::Weak<T>,
) {
    loop {
        appended.notified().await;
        if store.strong_count() == 0 {
            return;
        }
        if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(&channel)
            .execute(&pool)
            .await
        {
            tracing::debug!(%error, %channel, "cannot notify followers; they will poll");
        }
        tokio::time::sleep(NOTIFY_INTERVAL).await;
    }
}

/// Waits until new events may be in the log: a `LISTEN` notification, or the poll interval.
///
/// Notifications are hints, not data: a follower re-reads the log from its checkpoint after
/// every wake, so a lost notification only delays it to the next poll.
pub struct LogWaker {
    pub(super) pool: PgPool,
    pub(super) channel: String,
    pub(super) listener: Option<PgListener>,
    pub(super) poll: Duration,
}

impl std::fmt::Debug for LogWaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWaker")
            .field("channel", &self.channel)
            .field("listening", &self.listener.is_some())
            .field("poll", &self.poll)
            .finish()
    }
}

impl LogWaker {
    /// Starts listening now, so that appends made from here on wake the next [`wait`](Self::wait).
    pub async fn listen(&mut self) -> Result<(), StoreError> {
        if self.listener.is_none() {
            let mut listener = PgListener::connect_with(&self.pool)
                .await
                .map_err(StoreError::backend)?;
            listener
                .listen(&self.channel)
                .await
                .map_err(StoreError::backend)?;
            self.listener = Some(listener);
        }
        Ok(())
    }

    /// Waits for a notification, or for the poll interval at most.
    pub async fn wait(&mut self) -> Wake {
        if let Err(error) = self.listen().await {
            tracing::warn!(%error, channel = %self.channel, "cannot listen for new events; polling");
            tokio::time::sleep(self.poll).await;
            return Wake::Polled;
        }
        let Some(listener) = self.listener.as_mut() else {
            tokio::time::sleep(self.poll).await;
            return Wake::Polled;
        };
        match tokio::time::timeout(self.poll, listener.try_recv()).await {
            Err(_elapsed) => Wake::Polled,
            Ok(Ok(Some(_))) => {
                // Several commits may have notified: one re-read covers them all.
                while listener.next_buffered().is_some() {}
                Wake::Notified
            }
            // The connection dropped (notifications may be lost): read the log now; the
            // listener reconnects on the next wait.
            Ok(Ok(None)) => Wake::Polled,
            Ok(Err(error)) => {
                tracing::warn!(%error, channel = %self.channel, "the listening connection failed; polling");
                self.listener = None;
                Wake::Polled
            }
        }
    }
}

impl WatchWaker for LogWaker {
    fn listen(&mut self) -> BoxFuture<'_, Result<(), StoreError>> {
        LogWaker::listen(self).boxed()
    }

    fn wait(&mut self) -> BoxFuture<'_, Wake> {
        LogWaker::wait(self).boxed()
    }
}
