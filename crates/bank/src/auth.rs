//! Who is asking: the admin, or an account holder with a token scope.
//!
//! Credentials (libeufin `auth.kt`, docs.taler.net api-corebank "Authentication"): HTTP Basic
//! with the account name and password, or `Bearer secret-token:…` issued by
//! `POST /accounts/{name}/token`, or `Bearer <admin_token>` from the configuration. The `admin`
//! account logging in with its password is the admin too. Only a SHA-512 of a bearer token is
//! stored. The HTTP side (header parsing, 401/403) is in `http::auth`.

use crate::account::{ADMIN, AccountName};
use crate::error::{BankError, Result};

/// Prefix of every bearer token this bank issues.
pub const TOKEN_PREFIX: &str = "secret-token:";

/// What a bearer token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Reading only (balances, histories).
    ReadOnly,
    /// Everything the account holder may do.
    ReadWrite,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "readonly",
            Self::ReadWrite => "readwrite",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "readonly" => Some(Self::ReadOnly),
            "readwrite" => Some(Self::ReadWrite),
            _ => None,
        }
    }
}

/// The storage key of a bearer token.
pub fn token_hash(token: &str) -> Vec<u8> {
    cardcash_crypto::sha512(token.as_bytes())
        .as_bytes()
        .to_vec()
}

/// An authenticated party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The bank operator: may act on every account.
    Admin,
    /// An account holder, with the scope of the credential used (passwords are `ReadWrite`).
    Account { name: String, scope: Scope },
}

impl Principal {
    /// Whether this is the operator.
    pub fn is_admin(&self) -> bool {
        match self {
            Self::Admin => true,
            Self::Account { name, .. } => name == ADMIN,
        }
    }

    /// Allows acting on `account` with `need`: the admin on every account, the owner on its
    /// own; a token also needs the scope (the admin token and passwords have every scope).
    pub fn check(&self, account: &AccountName, need: Scope) -> Result<()> {
        match self {
            Self::Admin => Ok(()),
            Self::Account { name, scope } => {
                let owner = name == ADMIN || name == account.as_str();
                if owner && *scope >= need {
                    Ok(())
                } else {
                    Err(BankError::Forbidden(account.to_string()))
                }
            }
        }
    }

    /// Allows only the operator (with a read-write credential).
    pub fn require_admin(&self) -> Result<()> {
        let read_write = match self {
            Self::Admin => true,
            Self::Account { scope, .. } => *scope == Scope::ReadWrite,
        };
        if self.is_admin() && read_write {
            Ok(())
        } else {
            Err(BankError::Forbidden("(admin only)".to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> AccountName {
        s.parse().unwrap()
    }

    #[test]
    fn owner_admin_and_others() {
        let alice = Principal::Account {
            name: "alice".into(),
            scope: Scope::ReadWrite,
        };
        assert!(alice.check(&name("alice"), Scope::ReadWrite).is_ok());
        assert!(matches!(
            alice.check(&name("bob"), Scope::ReadOnly),
            Err(BankError::Forbidden(_))
        ));
        assert!(alice.require_admin().is_err());
        assert!(
            Principal::Admin
                .check(&name("bob"), Scope::ReadWrite)
                .is_ok()
        );
        let admin_by_password = Principal::Account {
            name: "admin".into(),
            scope: Scope::ReadWrite,
        };
        assert!(admin_by_password.require_admin().is_ok());
    }

    #[test]
    fn readonly_tokens_cannot_write() {
        let ro = Principal::Account {
            name: "alice".into(),
            scope: Scope::ReadOnly,
        };
        assert!(ro.check(&name("alice"), Scope::ReadOnly).is_ok());
        assert!(ro.check(&name("alice"), Scope::ReadWrite).is_err());
    }

    #[test]
    fn token_hash_is_sha512() {
        assert_eq!(token_hash("secret-token:x").len(), 64);
        assert_ne!(token_hash("secret-token:x"), token_hash("secret-token:y"));
    }
}
