//! Account passwords: argon2id hashes in PHC string form.
//!
//! Parameters: 19 MiB memory, 2 passes, 1 lane — the OWASP minimum for argon2id. That costs about
//! 20 ms per hash with the optimised argon2 build (root Cargo.toml), which keeps the test suites
//! fast while remaining a real password hash. Stored hashes carry their parameters, so raising
//! them later only affects new passwords. Hashing and verifying run on the blocking thread pool,
//! never on the async executor. Passwords never appear in `Debug` output.

use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// Memory cost in KiB (19 MiB).
const M_COST_KIB: u32 = 19 * 1024;
/// Number of passes.
const T_COST: u32 = 2;
/// Degree of parallelism.
const P_COST: u32 = 1;

/// Longest password we accept (argon2 itself allows more; nobody needs more).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// A plaintext password; redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password; empty or over-long passwords are refused.
    pub fn new(password: impl Into<String>) -> Result<Self, PasswordError> {
        let password = password.into();
        if password.is_empty() {
            return Err(PasswordError::Empty);
        }
        if password.len() > MAX_PASSWORD_LEN {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(password))
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Why a password could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must not be empty")]
    Empty,
    #[error("the password is too long (at most {MAX_PASSWORD_LEN} bytes)")]
    TooLong,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

fn hasher() -> Argon2<'static> {
    // The constants are valid argon2 parameters; `Params::new` only fails on out-of-range values.
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &Password) -> Result<String, PasswordError> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub async fn hash(password: Password) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))?
}

/// Checks a password against a stored PHC string; any malformed hash counts as a mismatch.
pub async fn verify(password: Password, phc: String) -> bool {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), phc.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

/// Burns the time of one verification, so that an unknown login is not faster to reject than a
/// wrong password (no user enumeration by timing).
pub async fn verify_dummy(password: Password) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY
        .get_or_init(|| {
            let dummy = Password("dummy password for unknown accounts".to_owned());
            hash_blocking(&dummy).unwrap_or_default()
        })
        .clone();
    let _ = verify(password, phc).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let phc = hash(Password::new("correct horse").unwrap()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify(Password::new("correct horse").unwrap(), phc.clone()).await);
        assert!(!verify(Password::new("correct horsf").unwrap(), phc).await);
    }

    #[tokio::test]
    async fn salts_differ() {
        let a = hash(Password::new("pw").unwrap()).await.unwrap();
        let b = hash(Password::new("pw").unwrap()).await.unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn malformed_hash_never_verifies() {
        assert!(!verify(Password::new("pw").unwrap(), "not a phc".to_owned()).await);
        assert!(!verify(Password::new("pw").unwrap(), String::new()).await);
    }

    #[test]
    fn rejects_empty_and_redacts() {
        assert_eq!(Password::new(""), Err(PasswordError::Empty));
        assert_eq!(
            Password::new("x".repeat(MAX_PASSWORD_LEN + 1)),
            Err(PasswordError::TooLong)
        );
        let p = Password::new("secret").unwrap();
        assert!(!format!("{p:?}").contains("secret"));
    }
}
