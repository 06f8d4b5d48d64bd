//! Authentication of terminals (HTTP Basic, per-terminal secret stored as an argon2id hash) and
//! of the exchange on the wire gateway (Basic or Bearer, from the configuration).
//!
//! Terminal secrets are checked by the shared [`CredentialVerifier`] (`cardcash_http::credential`):
//! argon2id runs off the executor with a bounded number of hashes at once (so a flood of wrong
//! secrets cannot grow memory), a successful verification is remembered for a few minutes
//! (keyed by the HMAC of the presented secret and of the stored hash, so rotating a secret
//! invalidates it; wrong secrets are never cached), and an unknown terminal id costs the same
//! hash as a wrong secret, so ids cannot be enumerated by timing.
//!
//! The terminal's row (its hash and active flag) is cached too, so an authenticated request
//! costs no database round trip. Deactivation must still take effect at once:
//! - `cardcash c2ec terminal deactivate` (or [`crate::admin::deactivate_terminal`]) notifies the
//!   store's `terminal` topic in the same transaction. The authenticator holds a subscription
//!   to that topic and, on every request, checks (without waiting) whether a notification
//!   arrived; if so it drops every cached row before looking one up. In the same process that
//!   is synchronous with the deactivation's commit; on PostgreSQL the notification reaches every
//!   C2EC process sharing the database within the listener's latency.
//! - On SQLite a deactivation by another process (the CLI) cannot notify this one, so there a
//!   cached row expires after [`SQLITE_TTL`] (2 s): the CLI's deactivation takes effect within
//!   two seconds. On PostgreSQL rows expire after [`POSTGRES_TTL`] as a safety net only.
//!   A row is only cached when no notification arrived while it was being read, so a
//!   deactivation racing with a lookup cannot leave the active row behind.
//!
//! [`TerminalAuthenticator::invalidate`] drops a cached verification and row in this process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use cardcash_http::{
    BasicAuth, BearerToken, CredentialVerifier, Metrics, basic_auth_matches, constant_time_eq,
};
use cardcash_store::{Engine, Subscription};
use futures_util::FutureExt as _;

use crate::config::WireGatewayAuth;
use crate::db::terminal::TerminalRow;
use crate::db::{C2ecStore, TOPIC_TERMINAL};
use crate::error::C2ecError;

/// How long a cached terminal row is trusted on SQLite, where another process's deactivation
/// cannot notify this one.
pub const SQLITE_TTL: Duration = Duration::from_secs(2);
/// How long a cached terminal row is trusted on PostgreSQL (deactivations notify every process;
/// this only bounds the damage of a lost notification).
pub const POSTGRES_TTL: Duration = Duration::from_secs(60);
/// Most terminal rows kept (unknown ids are never cached, so only real terminals fill it).
const MAX_CACHED: usize = 10_000;

/// Verifies terminal credentials; cheap to clone.
#[derive(Clone)]
pub struct TerminalAuthenticator {
    store: C2ecStore,
    credentials: CredentialVerifier,
    rows: Arc<RowCache>,
}

/// The cached terminal rows, dropped whenever a `terminal` notification arrives.
struct RowCache {
    ttl: Duration,
    state: Mutex<CacheState>,
}

struct CacheState {
    rows: HashMap<i64, (Arc<TerminalRow>, Instant)>,
    /// Counts the notifications seen; a row read before the latest one is not cached.
    generation: u64,
    changes: Subscription,
}

impl RowCache {
    fn lock(&self) -> MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CacheState {
    /// Drops every row if a deactivation was notified since the last look.
    fn catch_up(&mut self) {
        // A stored notification makes the wait ready at its first poll; nothing else blocks.
        if let Some(true) = self.changes.wait(Duration::ZERO).now_or_never() {
            self.rows.clear();
            self.generation += 1;
        }
    }
}

/// Parses the Basic user name of a terminal: `T-<id>` (as printed by `terminal add`) or `<id>`.
pub fn parse_terminal_user(user: &str) -> Option<i64> {
    let digits = user.strip_prefix("T-").unwrap_or(user);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The user name printed for a terminal.
pub fn terminal_user(id: i64) -> String {
    format!("T-{id}")
}

impl TerminalAuthenticator {
    /// An authenticator with the default verifier (process-wide hash bound, 5-minute cache).
    pub fn new(store: C2ecStore) -> Self {
        Self::with_verifier(store, CredentialVerifier::new())
    }

    pub fn with_verifier(store: C2ecStore, credentials: CredentialVerifier) -> Self {
        let ttl = match store.engine() {
            Engine::Sqlite => SQLITE_TTL,
            Engine::Postgres => POSTGRES_TTL,
        };
        // Subscribed before anything is cached: no deactivation can be missed.
        let changes = store.notifier().subscribe_topic(TOPIC_TERMINAL);
        Self {
            store,
            credentials,
            rows: Arc::new(RowCache {
                ttl,
                state: Mutex::new(CacheState {
                    rows: HashMap::new(),
                    generation: 0,
                    changes,
                }),
            }),
        }
    }

    /// Exports the verifier's counters (`credential_*`) into the service's registry.
    pub fn register_metrics(&self, metrics: &mut Metrics) {
        self.credentials.register_metrics(metrics);
    }

    /// The verifier (for its statistics).
    pub fn verifier(&self) -> &CredentialVerifier {
        &self.credentials
    }

    /// Forgets the cached verification and row of terminal `id` (e.g. after changing it here).
    pub fn invalidate(&self, id: i64) {
        self.credentials.invalidate(&terminal_user(id));
        self.rows.lock().rows.remove(&id);
    }

    /// Terminal `id`: from the cache while fresh, else read (and cached when it exists).
    async fn terminal(&self, id: i64) -> Result<Option<Arc<TerminalRow>>, C2ecError> {
        let generation = {
            let mut cache = self.rows.lock();
            cache.catch_up();
            if let Some((row, expires)) = cache.rows.get(&id)
                && Instant::now() < *expires
            {
                return Ok(Some(row.clone()));
            }
            cache.generation
        };
        let Some(row) = self.store.terminal(id).await? else {
            return Ok(None);
        };
        let row = Arc::new(row);
        let mut cache = self.rows.lock();
        cache.catch_up();
        if cache.generation == generation {
            if cache.rows.len() >= MAX_CACHED {
                cache.rows.clear();
            }
            let expires = Instant::now() + self.rows.ttl;
            cache.rows.insert(id, (row.clone(), expires));
        }
        Ok(Some(row))
    }

    /// The id of the authenticated, active terminal. Missing/bad credentials → 401;
    /// a deactivated terminal → 403.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<i64, C2ecError> {
        let value = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(C2ecError::Unauthorized)?;
        let creds = BasicAuth::parse(value).map_err(|_| C2ecError::Unauthorized)?;
        let id = parse_terminal_user(&creds.user).ok_or(C2ecError::Unauthorized)?;
        let terminal = self.terminal(id).await?;
        // `T-7` and `7` are the same terminal: one cache entry.
        let verified = self
            .credentials
            .verify(
                &terminal_user(id),
                &creds.password,
                terminal.as_ref().map(|t| t.secret_hash.as_str()),
            )
            .await;
        match terminal {
            Some(terminal) if verified => {
                if terminal.active {
                    Ok(id)
                } else {
                    Err(C2ecError::Forbidden("terminal deactivated".into()))
                }
            }
            _ => Err(C2ecError::Unauthorized),
        }
    }
}

/// argon2id hash (PHC string) of a terminal secret, with a fresh salt. Slow: call it from a
/// blocking task.
pub fn hash_secret(secret: &str) -> Result<String, C2ecError> {
    cardcash_crypto::password::hash(secret.as_bytes())
        .map_err(|e| C2ecError::Internal(e.to_string()))
}

/// Whether `secret` matches the stored argon2id hash. Slow: call it from a blocking task.
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    cardcash_crypto::password::verify(secret.as_bytes(), hash)
}

/// Checks the exchange's credentials on the wire gateway.
pub fn check_wire_auth(auth: &WireGatewayAuth, headers: &HeaderMap) -> Result<(), C2ecError> {
    let value = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(C2ecError::Unauthorized)?;
    if let Ok(basic) = BasicAuth::parse(value)
        && let (Some(u), Some(p)) = (&auth.username, &auth.password)
        && basic_auth_matches(&basic, u, p)
    {
        return Ok(());
    }
    if let Ok(bearer) = BearerToken::parse(value)
        && let Some(t) = &auth.token
        && constant_time_eq(bearer.as_str().as_bytes(), t.as_bytes())
    {
        return Ok(());
    }
    Err(C2ecError::Unauthorized)
}

/// Checks the admin bearer token (`admin/add-incoming`); absent configuration disables it.
pub fn check_admin(token: Option<&str>, headers: &HeaderMap) -> Result<(), C2ecError> {
    let Some(expected) = token else {
        return Err(C2ecError::Forbidden("admin endpoints are disabled".into()));
    };
    let value = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(C2ecError::Unauthorized)?;
    let bearer = BearerToken::parse(value).map_err(|_| C2ecError::Unauthorized)?;
    if constant_time_eq(bearer.as_str().as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(C2ecError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_user_names() {
        assert_eq!(parse_terminal_user("T-12"), Some(12));
        assert_eq!(parse_terminal_user("12"), Some(12));
        assert_eq!(parse_terminal_user("T-"), None);
        assert_eq!(parse_terminal_user("T-1a"), None);
        assert_eq!(parse_terminal_user("-1"), None);
        assert_eq!(terminal_user(7), "T-7");
    }

    #[test]
    fn argon2id_hash_verifies_only_the_secret() {
        let h = hash_secret("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_secret("s3cret", &h));
        assert!(!verify_secret("s3cret ", &h));
        assert!(!verify_secret("s3cret", "not a hash"));
    }
}
