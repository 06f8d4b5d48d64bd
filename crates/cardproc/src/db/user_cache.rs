//! The API users the authentication reads on every `/api/…` request, cached so that an
//! authenticated request costs no database round trip (as C2EC caches its terminals).
//!
//! A change of a user must still take effect at once:
//! - every user write of [`super::CardprocStore`] (upsert, create, delete) drops the cached row
//!   in this process after its commit and notifies the store's [`TOPIC_API_USER`] topic. The
//!   cache holds a subscription to that topic and, on every lookup, checks (without waiting)
//!   whether a notification arrived; if so it drops every cached row first. On PostgreSQL the
//!   notification reaches every card processor sharing the database within the listener's
//!   latency.
//! - On SQLite a change made by another process (the `cardcash cardproc user …` commands)
//!   cannot notify this one, so a cached row expires after [`SQLITE_TTL`] (2 s). On PostgreSQL
//!   rows expire after [`POSTGRES_TTL`] as a safety net only.
//!
//! A row is only cached when no notification arrived while it was being read, so a change
//! racing with a lookup cannot leave the old row behind. Unknown ids are never cached (their
//! lookup reads the database every time, and still costs one MAC check).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cardcash_store::{Engine, Notifier, Subscription};
use futures_util::FutureExt as _;

use super::ApiUserRow;

/// Store notification topic (key: user id) sent after an API user was written or deleted.
pub const TOPIC_API_USER: &str = "api_user";
/// How long a cached user is trusted on SQLite, where another process's change cannot notify
/// this one.
pub const SQLITE_TTL: Duration = Duration::from_secs(2);
/// How long a cached user is trusted on PostgreSQL (changes notify every process; this only
/// bounds the damage of a lost notification).
pub const POSTGRES_TTL: Duration = Duration::from_secs(60);
/// Most users kept.
const MAX_CACHED: usize = 10_000;

/// The cached users; dropped whenever an [`TOPIC_API_USER`] notification arrives.
#[derive(Debug)]
pub(super) struct UserCache {
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rows: HashMap<i64, (Arc<ApiUserRow>, Instant)>,
    /// Counts the notifications and local changes seen; a row read before the latest one is not
    /// cached.
    generation: u64,
    changes: Subscription,
}

/// What a lookup found: a fresh row, or the generation to hand back to [`UserCache::put`].
pub(super) enum Lookup {
    Hit(Arc<ApiUserRow>),
    Miss(u64),
}

impl UserCache {
    /// Subscribes before anything is cached: no change can be missed.
    pub(super) fn new(engine: Engine, notifier: &Notifier) -> Self {
        let ttl = match engine {
            Engine::Sqlite => SQLITE_TTL,
            Engine::Postgres => POSTGRES_TTL,
        };
        Self {
            ttl,
            state: Mutex::new(State {
                rows: HashMap::new(),
                generation: 0,
                changes: notifier.subscribe_topic(TOPIC_API_USER),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // A stored notification makes the wait ready at its first poll; nothing else blocks.
        if let Some(true) = state.changes.wait(Duration::ZERO).now_or_never() {
            state.rows.clear();
            state.generation += 1;
        }
        state
    }

    pub(super) fn get(&self, id: i64) -> Lookup {
        let state = self.lock();
        match state.rows.get(&id) {
            Some((row, at)) if at.elapsed() < self.ttl => Lookup::Hit(row.clone()),
            _ => Lookup::Miss(state.generation),
        }
    }

    /// Caches a row read at `generation`, unless something changed meanwhile.
    pub(super) fn put(&self, id: i64, row: Arc<ApiUserRow>, generation: u64) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        if state.rows.len() >= MAX_CACHED {
            let now = Instant::now();
            let ttl = self.ttl;
            state
                .rows
                .retain(|_, (_, at)| now.duration_since(*at) < ttl);
            if state.rows.len() >= MAX_CACHED {
                return;
            }
        }
        state.rows.insert(id, (row, Instant::now()));
    }

    /// Drops user `id` (after this process changed it); a read racing with the change is not
    /// cached either.
    pub(super) fn invalidate(&self, id: i64) {
        let mut state = self.lock();
        state.rows.remove(&id);
        state.generation += 1;
    }
}
