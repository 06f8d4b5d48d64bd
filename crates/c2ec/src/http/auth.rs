//! Authentication of terminals (HTTP Basic, per-terminal secret stored as an argon2id hash) and
//! of the exchange on the wire gateway (Basic or Bearer, from the configuration).
//!
//! argon2id costs tens of milliseconds by design, far too much for every request of a busy
//! terminal. After one successful verification the pair (terminal id, SHA-512 of the presented
//! secret, stored hash) is remembered in memory; later requests with the same secret only hash
//! it with SHA-512 and compare. The cache holds no secret (only its hash), is bounded, and is
//! keyed by the stored argon2 hash too, so rotating a secret invalidates it. Whether the
//! terminal is still active is read from the database on every request, so deactivation
//! (`cardcash c2ec terminal deactivate`, possibly from another process) takes effect at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use cardcash_http::{BasicAuth, BearerToken, basic_auth_matches, constant_time_eq};

use crate::config::WireGatewayAuth;
use crate::db::C2ecStore;
use crate::error::C2ecError;

/// Most remembered verifications (one per terminal and secret in practice).
const CACHE_LIMIT: usize = 4096;

type CacheKey = (i64, [u8; 64]);

/// Verifies terminal credentials.
#[derive(Clone)]
pub struct TerminalAuthenticator {
    store: C2ecStore,
    verified: Arc<Mutex<HashMap<CacheKey, String>>>,
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
    pub fn new(store: C2ecStore) -> Self {
        Self {
            store,
            verified: Arc::new(Mutex::new(HashMap::new())),
        }
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
        let terminal = self
            .store
            .get_terminal(id)
            .await?
            .ok_or(C2ecError::Unauthorized)?;
        let digest = *cardcash_crypto::sha512(creds.password.as_bytes()).as_bytes();
        let key = (id, digest);
        let cached = self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .is_some_and(|h| constant_time_eq(h.as_bytes(), terminal.secret_hash.as_bytes()));
        if !cached {
            let hash = terminal.secret_hash.clone();
            let password = creds.password.clone();
            let ok = tokio::task::spawn_blocking(move || verify_secret(&password, &hash))
                .await
                .map_err(|e| C2ecError::Internal(e.to_string()))?;
            if !ok {
                return Err(C2ecError::Unauthorized);
            }
            let mut cache = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key, terminal.secret_hash.clone());
        }
        if !terminal.active {
            return Err(C2ecError::Forbidden("terminal deactivated".into()));
        }
        Ok(id)
    }
}

/// argon2id hash (PHC string) of a terminal secret, with a fresh salt.
pub fn hash_secret(secret: &str) -> Result<String, C2ecError> {
    let salt_bytes = cardcash_crypto::random::random_bytes::<16>()
        .map_err(|e| C2ecError::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password_with_salt(secret.as_bytes(), &salt_bytes)
        .map(|h: PasswordHash| h.to_string())
        .map_err(|e| C2ecError::Internal(e.to_string()))
}

/// Whether `secret` matches the stored argon2id hash.
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok()
    })
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
