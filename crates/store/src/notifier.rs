//! Notifications for long polling: "something about (topic, key) changed, look again".
//!
//! A subscriber registers BEFORE it reads the state it waits on, then waits; a writer notifies
//! after (SQLite) or at (PostgreSQL) commit. A notification carries no data: the woken request
//! re-reads the database, so a spurious wake-up is harmless and a lost one is not. That is why,
//! whenever delivery may have been interrupted (PostgreSQL listener reconnect), everybody is
//! woken.
//!
//! In-process fan-out is a map `(topic, key | *) → subscribers`, each with its own
//! [`tokio::sync::Notify`]. `notify_one` stores a permit when nobody waits yet, so a
//! notification between `subscribe` and `wait` is never lost. On PostgreSQL one background task
//! per [`crate::PgDb`] holds a `PgListener` on the service's channel and feeds the same map, so
//! several service processes sharing a database wake each other. Never a polling loop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// `None` is the wildcard key (every key of the topic).
type Slot = (String, Option<String>);

#[derive(Default)]
struct Shared {
    subscribers: Mutex<HashMap<Slot, HashMap<u64, Arc<Notify>>>>,
    next_id: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<Slot, HashMap<u64, Arc<Notify>>>> {
        // The map stays consistent even if a holder panicked: every critical section is a
        // single insert/remove/iteration.
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The in-process fan-out; cheap to clone. Obtain it from [`crate::Database::notifier`].
#[derive(Clone, Default)]
pub struct Notifier {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("slots", &self.shared.lock().len())
            .finish()
    }
}

impl Notifier {
    /// A notifier with no database behind it (SQLite uses exactly this).
    pub fn new() -> Self {
        Self::default()
    }

    /// Wait for notifications of `(topic, key)`.
    pub fn subscribe(&self, topic: &str, key: &str) -> Subscription {
        self.register((topic.to_owned(), Some(key.to_owned())))
    }

    /// Wait for notifications of `topic` with any key (e.g. "incoming history grew").
    pub fn subscribe_topic(&self, topic: &str) -> Subscription {
        self.register((topic.to_owned(), None))
    }

    fn register(&self, slot: Slot) -> Subscription {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        self.shared
            .lock()
            .entry(slot.clone())
            .or_default()
            .insert(id, notify.clone());
        Subscription {
            shared: self.shared.clone(),
            slot,
            id,
            notify,
        }
    }

    /// Wake the subscribers of `(topic, key)` and of `topic` in this process only.
    ///
    /// Services call [`crate::SqliteTx::notify`], [`crate::PgTx::notify`] (or `pg_notify` in
    /// their SQL) or [`crate::Database::notify_now`] instead, which also reach other processes
    /// on PostgreSQL.
    pub(crate) fn fan_out(&self, topic: &str, key: &str) {
        let map = self.shared.lock();
        let exact = map.get(&(topic.to_owned(), Some(key.to_owned())));
        let wildcard = map.get(&(topic.to_owned(), None));
        for subscribers in exact.into_iter().chain(wildcard) {
            for notify in subscribers.values() {
                notify.notify_one();
            }
        }
    }

    /// Wake every subscriber (delivery may have been interrupted; they re-read their state).
    pub(crate) fn wake_all(&self) {
        for subscribers in self.shared.lock().values() {
            for notify in subscribers.values() {
                notify.notify_one();
            }
        }
    }

    /// Number of live subscriptions (for tests and metrics).
    pub fn subscriber_count(&self) -> usize {
        self.shared.lock().values().map(HashMap::len).sum()
    }
}

/// One registration; unregisters itself on drop.
pub struct Subscription {
    shared: Arc<Shared>,
    slot: Slot,
    id: u64,
    notify: Arc<Notify>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.slot.0)
            .field("key", &self.slot.1)
            .finish()
    }
}

impl Subscription {
    /// Wait up to `timeout` for a notification. `true` if one arrived (possibly before this
    /// call, after `subscribe`), `false` on timeout. Can be called repeatedly; several
    /// notifications arriving while nobody waits count as one.
    pub async fn wait(&mut self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.notify.notified())
            .await
            .is_ok()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut map = self.shared.lock();
        if let Some(subscribers) = map.get_mut(&self.slot) {
            subscribers.remove(&self.id);
            if subscribers.is_empty() {
                map.remove(&self.slot);
            }
        }
    }
}

/// The payload of a PostgreSQL notification: `"<topic> <key>"` (topics never contain a space).
pub(crate) fn pg_payload(topic: &str, key: &str) -> String {
    format!("{topic} {key}")
}

/// Connects a listener on `channel` (the connection is LISTENing when this returns).
pub(crate) async fn pg_listener(
    url: &str,
    channel: &str,
) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

/// Run the PostgreSQL listener for one `PgDb` until `cancel` fires.
///
/// `listener` is already LISTENing on the channel (so `PgDb::connect` returns only once
/// notifications can be received). Notifications sent while the connection is down are lost,
/// so everybody is woken once the listener is LISTENing again: a notification committed during
/// the gap then wakes a subscriber in any case (it subscribed before that wake-up), and a
/// subscriber that registers after the wake-up reads a state that includes it. A lost
/// connection is re-established by `PgListener` itself before it reports `Ok(None)`; after
/// any other failure the listener is replaced by a fresh one (backing off while that fails).
pub(crate) async fn run_pg_listener(
    mut listener: sqlx::postgres::PgListener,
    url: String,
    channel: String,
    notifier: Notifier,
    cancel: CancellationToken,
) {
    const MIN_BACKOFF: Duration = Duration::from_millis(50);
    const MAX_BACKOFF: Duration = Duration::from_secs(5);
    loop {
        let received = tokio::select! {
            () = cancel.cancelled() => return,
            received = listener.try_recv() => received,
        };
        match received {
            Ok(Some(notification)) => match notification.payload().split_once(' ') {
                Some((topic, key)) => notifier.fan_out(topic, key),
                None => tracing::warn!(
                    payload = notification.payload(),
                    "malformed store notification ignored"
                ),
            },
            Ok(None) => {
                // The connection was lost and is LISTENing again (eager reconnect).
                tracing::warn!(
                    channel = channel.as_str(),
                    "PostgreSQL listener reconnected; waking all subscribers"
                );
                notifier.wake_all();
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    channel = channel.as_str(),
                    "PostgreSQL listener failed; reconnecting"
                );
                // Waiters re-read now rather than after the reconnect (spurious wake-ups are
                // harmless) ...
                notifier.wake_all();
                let mut backoff = MIN_BACKOFF;
                listener = loop {
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    match pg_listener(&url, &channel).await {
                        Ok(fresh) => break fresh,
                        Err(error) => {
                            tracing::warn!(
                                %error,
                                channel = channel.as_str(),
                                backoff_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                                "PostgreSQL listener cannot reconnect; retrying"
                            );
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                };
                // ... and again once nothing can be missed any more.
                notifier.wake_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notification_before_wait_is_kept_and_cleanup_works() {
        let n = Notifier::new();
        let mut a = n.subscribe("w", "1");
        let mut other = n.subscribe("w", "2");
        let mut all = n.subscribe_topic("w");
        assert_eq!(n.subscriber_count(), 3);
        n.fan_out("w", "1");
        assert!(a.wait(Duration::from_millis(10)).await);
        assert!(all.wait(Duration::from_millis(10)).await);
        assert!(!other.wait(Duration::from_millis(10)).await);
        // The permit was consumed.
        assert!(!a.wait(Duration::from_millis(10)).await);
        drop(a);
        drop(other);
        drop(all);
        assert_eq!(n.subscriber_count(), 0);
        assert!(n.shared.lock().is_empty());
    }
}
