//! Bank accounts: names, what an account looks like to the outside, and what creating one needs.
//!
//! An account is identified by its login name, which is also the last path segment of its
//! `payto://x-taler-bank/{host}/{name}` address. The `admin` account is the bank's own funding
//! account (libeufin's convention): it exists from the start, may go far below zero to fund demos
//! and tests, and cannot be registered or credited by customers. Pure types, no IO.

use std::fmt;
use std::str::FromStr;

use cardcash_util::Amount;
use serde::{Deserialize, Serialize};

use crate::balance::Balance;
use crate::password::Password;

/// Login name of the bank's own funding account.
pub const ADMIN: &str = "admin";

/// Longest account name.
pub const MAX_NAME_LEN: usize = 64;

/// An account login name: 1–64 characters from `[A-Za-z0-9._-]`, safe in a URL path segment and
/// a payto URI without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountName(String);

/// Why a string is not an account name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("account names are 1 to {MAX_NAME_LEN} characters from A-Z a-z 0-9 . _ -")]
pub struct AccountNameError;

impl AccountName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The bank's funding account.
    pub fn admin() -> Self {
        Self(ADMIN.to_owned())
    }

    pub fn is_admin(&self) -> bool {
        self.0 == ADMIN
    }
}

impl FromStr for AccountName {
    type Err = AccountNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= MAX_NAME_LEN
            && s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            // "." and ".." would be path traversal segments in URLs.
            && s != "."
            && s != "..";
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(AccountNameError)
        }
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for AccountName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AccountName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What creating an account needs (the admin CLI and `POST /accounts`).
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: AccountName,
    /// Legal name, shown as `receiver-name` in the account's payto URI; defaults to the login.
    pub legal_name: Option<String>,
    /// `None`: no password login (bearer tokens or the admin token only).
    pub password: Option<Password>,
    pub is_exchange: bool,
    /// How far below zero the account may go; `None` = the configured default.
    pub debit_limit: Option<Amount>,
}

impl NewAccount {
    /// A customer account with the configured default debit limit.
    pub fn new(name: AccountName) -> Self {
        Self {
            name,
            legal_name: None,
            password: None,
            is_exchange: false,
            debit_limit: None,
        }
    }
}

/// An account as the outside sees it (admin CLI, `GET /accounts/{name}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountInfo {
    pub name: AccountName,
    pub legal_name: String,
    /// `payto://x-taler-bank/{host}/{name}?receiver-name=…`
    pub payto_uri: String,
    pub balance: Balance,
    /// The most the balance may go below zero (libeufin's `debit_threshold`).
    pub debit_threshold: Amount,
    pub is_taler_exchange: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "alice", "shop-1", "Bob_2", "x.y", &"a".repeat(64)] {
            assert!(ok.parse::<AccountName>().is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", "a?x", &"a".repeat(65)] {
            assert!(bad.parse::<AccountName>().is_err(), "{bad}");
        }
        assert!(AccountName::admin().is_admin());
    }
}
