//! Notifications for long polling: "something about (topic, key) changed, look again".
//!
//! A subscriber registers BEFORE it reads the state it waits on, then waits; a writer notifies
//! after (SQLite) or at (PostgreSQL) commit. A notification says "look again": the woken request
//! re-reads the database, so a spurious wake-up is harmless and a lost one is not. That is why,
//! whenever delivery may have been interrupted (PostgreSQL listener reconnect), everybody is
//! woken.
//!
//! A notification may also carry a short message (`data`, e.g. the new status of the row the
//! key names). A subscriber that asked for messages ([`Notifier::subscribe_messages`]) can take
//! them after a wake-up ([`Subscription::take_messages`]) and answer without re-reading — but
//! only when every wake-up since the last take came with a message: a notification without one,
//! a wake-up of everybody, or more messages than the inbox keeps make `take_messages` answer
//! `None`, and the subscriber must read the database as before.
//!
//! In-process fan-out is a map `(topic, key | *) → subscribers`, each with its own
//! [`tokio::sync::Notify`]. `notify_one` stores a permit when nobody waits yet, so a
//! notification between `subscribe` and `wait` is never lost. On PostgreSQL one background task
//! per [`crate::PgDb`] holds a `PgListener` on the service's channel and feeds the same map, so
//! several service processes sharing a database wake each other. Never a polling loop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// `None` is the wildcard key (every key of the topic).
type Slot = (String, Option<String>);

/// Most messages a subscription keeps between two takes; more make it re-read.
const INBOX: usize = 8;

/// One subscriber: its wake-up permit and, if it asked for them, the messages not taken yet.
struct Waiter {
    notify: Notify,
    inbox: Option<Mutex<Inbox>>,
}

#[derive(Default)]
struct Inbox {
    messages: Vec<String>,
    /// A wake-up came without a message (or the inbox overflowed): re-read.
    incomplete: bool,
}

impl Waiter {
    fn wake(&self, data: Option<&str>) {
        if let Some(inbox) = &self.inbox {
            let mut inbox = inbox.lock().unwrap_or_else(PoisonError::into_inner);
            match data {
                Some(data) if !inbox.incomplete && inbox.messages.len() < INBOX => {
                    inbox.messages.push(data.to_owned());
                }
                _ => {
                    inbox.incomplete = true;
                    inbox.messages.clear();
                }
            }
        }
        self.notify.notify_one();
    }
}

/// A notification queued by a write, delivered if its work commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Note {
    pub(crate) topic: String,
    pub(crate) key: String,
    pub(crate) data: Option<String>,
}

impl Note {
    /// Adds a note to `notes`; the same `(topic, key)` again replaces the earlier message.
    pub(crate) fn push(notes: &mut Vec<Note>, topic: &str, key: &str, data: Option<&str>) {
        debug_assert!(!topic.contains(' '), "notification topics contain no space");
        debug_assert!(!key.contains(' '), "notification keys contain no space");
        match notes.iter_mut().find(|n| n.topic == topic && n.key == key) {
            Some(note) => note.data = data.map(str::to_owned),
            None => notes.push(Note {
                topic: topic.to_owned(),
                key: key.to_owned(),
                data: data.map(str::to_owned),
            }),
        }
    }
}

type Subscribers = HashMap<Slot, HashMap<u64, Arc<Waiter>>>;

#[derive(Default)]
struct Shared {
    subscribers: Mutex<Subscribers>,
    next_id: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Subscribers> {
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
        self.register((topic.to_owned(), Some(key.to_owned())), false)
    }

    /// Wait for notifications of `(topic, key)` and keep their messages for
    /// [`Subscription::take_messages`].
    pub fn subscribe_messages(&self, topic: &str, key: &str) -> Subscription {
        self.register((topic.to_owned(), Some(key.to_owned())), true)
    }

    /// Wait for notifications of `topic` with any key (e.g. "incoming history grew").
    pub fn subscribe_topic(&self, topic: &str) -> Subscription {
        self.register((topic.to_owned(), None), false)
    }

    fn register(&self, slot: Slot, messages: bool) -> Subscription {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let waiter = Arc::new(Waiter {
            notify: Notify::new(),
            inbox: messages.then(|| Mutex::new(Inbox::default())),
        });
        self.shared
            .lock()
            .entry(slot.clone())
            .or_default()
            .insert(id, waiter.clone());
        Subscription {
            shared: self.shared.clone(),
            slot,
            id,
            waiter,
        }
    }

    /// Wake the subscribers of `(topic, key)` and of `topic` in this process only.
    ///
    /// Services call [`crate::SqliteTx::notify`], [`crate::PgTx::notify`] (or `pg_notify` in
    /// their SQL) or [`crate::Database::notify_now`] instead, which also reach other processes
    /// on PostgreSQL.
    pub(crate) fn fan_out(&self, topic: &str, key: &str) {
        self.deliver(topic, key, None);
    }

    /// [`Notifier::fan_out`] with the notification's message, if it has one.
    pub(crate) fn deliver(&self, topic: &str, key: &str, data: Option<&str>) {
        let map = self.shared.lock();
        let exact = map.get(&(topic.to_owned(), Some(key.to_owned())));
        let wildcard = map.get(&(topic.to_owned(), None));
        for subscribers in exact.into_iter().chain(wildcard) {
            for waiter in subscribers.values() {
                waiter.wake(data);
            }
        }
    }

    /// Delivers a PostgreSQL notification payload (`"<topic> <key>[ <data>]"`).
    pub(crate) fn deliver_payload(&self, payload: &str) -> bool {
        match parse_payload(payload) {
            Some((topic, key, data)) => {
                self.deliver(topic, key, data);
                true
            }
            None => false,
        }
    }

    /// Wake every subscriber (delivery may have been interrupted; they re-read their state).
    pub(crate) fn wake_all(&self) {
        for subscribers in self.shared.lock().values() {
            for waiter in subscribers.values() {
                waiter.wake(None);
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
    waiter: Arc<Waiter>,
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
        tokio::time::timeout(timeout, self.waiter.notify.notified())
            .await
            .is_ok()
    }

    /// The messages of the notifications since the previous take, in the order they were
    /// delivered — or `None` when that is not the whole story: a notification without a
    /// message, a wake-up of everybody, an overflowing inbox, or a subscription made without
    /// [`Notifier::subscribe_messages`]. `None` means: read the state again.
    pub fn take_messages(&mut self) -> Option<Vec<String>> {
        let inbox = self.waiter.inbox.as_ref()?;
        let mut inbox = inbox.lock().unwrap_or_else(PoisonError::into_inner);
        let Inbox {
            messages,
            incomplete,
        } = std::mem::take(&mut *inbox);
        (!incomplete).then_some(messages)
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

/// The payload of a PostgreSQL notification: `"<topic> <key>"` (topics and keys never contain
/// a space), or `"<topic> <key> <data>"` with a message (which may).
pub(crate) fn pg_payload(topic: &str, key: &str) -> String {
    format!("{topic} {key}")
}

/// [`pg_payload`] of a [`Note`].
pub(crate) fn note_payload(note: &Note) -> String {
    match &note.data {
        Some(data) => format!("{} {} {data}", note.topic, note.key),
        None => pg_payload(&note.topic, &note.key),
    }
}

/// `(topic, key, data)` of a payload; `None` if it has no space at all.
fn parse_payload(payload: &str) -> Option<(&str, &str, Option<&str>)> {
    let (topic, rest) = payload.split_once(' ')?;
    Some(match rest.split_once(' ') {
        Some((key, data)) => (topic, key, Some(data)),
        None => (topic, rest, None),
    })
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
///
/// Notifications sent by this process's own outbox connection (`own_sender`: its backend's
/// process id, 0 when none) were delivered here when they were queued, and are skipped.
pub(crate) async fn run_pg_listener(
    mut listener: sqlx::postgres::PgListener,
    url: String,
    channel: String,
    notifier: Notifier,
    own_sender: Arc<AtomicU32>,
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
            Ok(Some(notification)) => {
                let own = own_sender.load(Ordering::Relaxed);
                if own != 0 && notification.process_id() == own {
                    continue;
                }
                if !notifier.deliver_payload(notification.payload()) {
                    tracing::warn!(
                        payload = notification.payload(),
                        "malformed store notification ignored"
                    );
                }
            }
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

    #[tokio::test]
    async fn messages_are_kept_only_when_they_tell_everything() {
        let n = Notifier::new();
        let mut news = n.subscribe_messages("w", "1");
        let mut plain = n.subscribe("w", "1");
        n.deliver("w", "1", Some("selected x"));
        n.deliver("w", "1", Some("confirmed"));
        assert!(news.wait(Duration::from_millis(10)).await);
        assert_eq!(
            news.take_messages(),
            Some(vec!["selected x".to_owned(), "confirmed".to_owned()])
        );
        // Taken: nothing new.
        assert_eq!(news.take_messages(), Some(vec![]));
        // A plain subscription wakes alike but keeps no messages.
        assert!(plain.wait(Duration::from_millis(10)).await);
        assert_eq!(plain.take_messages(), None);

        // A notification without a message, or a wake-up of everybody, means: read again.
        n.deliver("w", "1", Some("selected x"));
        n.fan_out("w", "1");
        assert_eq!(news.take_messages(), None);
        assert_eq!(news.take_messages(), Some(vec![]));
        n.wake_all();
        assert_eq!(news.take_messages(), None);
        // More than the inbox keeps, too.
        for _ in 0..=INBOX {
            n.deliver("w", "1", Some("aborted"));
        }
        assert_eq!(news.take_messages(), None);
    }

    #[test]
    fn payloads_carry_topic_key_and_message() {
        assert_eq!(parse_payload("attest "), Some(("attest", "", None)));
        assert_eq!(parse_payload("terminal 7"), Some(("terminal", "7", None)));
        assert_eq!(
            parse_payload("withdrawal ab selected cd 1 2 payto://x/y z"),
            Some(("withdrawal", "ab", Some("selected cd 1 2 payto://x/y z")))
        );
        assert_eq!(parse_payload("nothing"), None);
        let note = Note {
            topic: "withdrawal".into(),
            key: "ab".into(),
            data: Some("aborted".into()),
        };
        assert_eq!(note_payload(&note), "withdrawal ab aborted");
        assert_eq!(
            parse_payload(&note_payload(&note)),
            Some(("withdrawal", "ab", Some("aborted")))
        );
    }
}
