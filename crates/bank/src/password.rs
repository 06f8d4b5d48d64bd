//! Account passwords: a validated plaintext ([`Password`]) and its argon2id hash.
//!
//! Hashing and verifying are `cardcash_crypto::password` (argon2id PHC strings, 19 MiB, 2 passes,
//! 1 lane — the format stored since the first version, so existing hashes keep verifying), run
//! through `cardcash_http::credential`: on the blocking pool, behind the process-wide bound on
//! concurrent hashes. Logins are verified by the shared `CredentialVerifier` (`http::auth`).
//! Passwords never appear in `Debug` output.

use std::fmt;

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

    /// The plaintext, for verification.
    pub fn as_str(&self) -> &str {
        &self.0
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

/// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub async fn hash(password: Password) -> Result<String, PasswordError> {
    cardcash_http::credential::hash_secret(&password.0)
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_in_the_stored_format() {
        let phc = hash(Password::new("correct horse").unwrap()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(cardcash_crypto::password::verify(b"correct horse", &phc));
        assert!(!cardcash_crypto::password::verify(b"correct horsf", &phc));
        let again = hash(Password::new("correct horse").unwrap()).await.unwrap();
        assert_ne!(phc, again, "fresh salt");
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
