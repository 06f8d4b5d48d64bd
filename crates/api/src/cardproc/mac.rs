//! Wallee's request MAC ("HMAC authentication", version 1), used by both our client and server.
//!
//! Spec: c2ec.md §2.4 and docs/CARDPROC-API.md "Authentication". Every `/api/…` request carries
//! `x-mac-version: 1`, `x-mac-userid`, `x-mac-timestamp` (unix seconds) and `x-mac-value`, where
//! the value is `base64(HMAC-SHA512(key = base64decode(secret), "1|user|ts|METHOD|/api/…?query"))`
//! (facts from the Wallee SDKs' `HMACAuthentication`; our code is our own).
//!
//! The HMAC itself is `cardcash_crypto::mac` (the crypto crate is the only one touching
//! primitives); verification compares in constant time.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::Zeroizing;

/// The only MAC version Wallee defines.
pub const MAC_VERSION: &str = "1";
/// Header carrying [`MAC_VERSION`].
pub const HEADER_VERSION: &str = "x-mac-version";
/// Header carrying the API user id (decimal).
pub const HEADER_USER_ID: &str = "x-mac-userid";
/// Header carrying the unix time in seconds the request was signed at.
pub const HEADER_TIMESTAMP: &str = "x-mac-timestamp";
/// Header carrying the base64 MAC.
pub const HEADER_VALUE: &str = "x-mac-value";
/// How far (seconds) a request's timestamp may be from the server clock, either way.
pub const MAX_CLOCK_SKEW_SECS: u64 = 600;

/// Why a MAC secret could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacKeyError {
    /// The secret is not standard base64.
    #[error("the MAC secret is not valid base64")]
    NotBase64,
    /// The secret decodes to nothing; HMAC would accept it, but it protects nothing.
    #[error("the MAC secret is empty")]
    Empty,
}

/// A user's MAC secret, decoded. Zeroized on drop and never printed.
#[derive(Clone)]
pub struct MacKey(Zeroizing<Vec<u8>>);

impl MacKey {
    /// Decodes a Wallee-style secret (standard base64, as the provider hands it out).
    pub fn from_base64(secret: &str) -> Result<Self, MacKeyError> {
        let bytes = Zeroizing::new(
            BASE64
                .decode(secret.trim())
                .map_err(|_| MacKeyError::NotBase64)?,
        );
        if bytes.is_empty() {
            return Err(MacKeyError::Empty);
        }
        Ok(Self(bytes))
    }

    /// Wraps raw key bytes (e.g. freshly generated ones).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, MacKeyError> {
        if bytes.is_empty() {
            return Err(MacKeyError::Empty);
        }
        Ok(Self(Zeroizing::new(bytes)))
    }

    /// The secret in the base64 form users configure.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0.as_slice())
    }

    fn hmac(&self, message: &str) -> [u8; 64] {
        cardcash_crypto::mac::hmac_sha512(&self.0, message.as_bytes())
    }

    fn verify(&self, message: &str, tag: &[u8]) -> bool {
        cardcash_crypto::mac::hmac_sha512_verify(&self.0, message.as_bytes(), tag)
    }
}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey(<redacted>)")
    }
}

/// The string Wallee signs: `version|user|timestamp|METHOD|path_and_query`.
pub fn signing_string(user_id: u64, timestamp: u64, method: &str, path_and_query: &str) -> String {
    format!(
        "{MAC_VERSION}|{user_id}|{timestamp}|{}|{path_and_query}",
        method.to_ascii_uppercase()
    )
}

/// Computes the base64 `x-mac-value` for a request.
pub fn sign(
    key: &MacKey,
    user_id: u64,
    timestamp: u64,
    method: &str,
    path_and_query: &str,
) -> String {
    BASE64.encode(key.hmac(&signing_string(user_id, timestamp, method, path_and_query)))
}

/// Checks a received `x-mac-value` in constant time. Malformed base64 is simply "not valid".
pub fn verify(
    key: &MacKey,
    user_id: u64,
    timestamp: u64,
    method: &str,
    path_and_query: &str,
    value: &str,
) -> bool {
    let Ok(received) = BASE64.decode(value.trim()) else {
        return false;
    };
    key.verify(
        &signing_string(user_id, timestamp, method, path_and_query),
        &received,
    )
}

/// Whether `timestamp` lies within [`MAX_CLOCK_SKEW_SECS`] of `now` (both unix seconds).
pub fn timestamp_fresh(timestamp: u64, now: u64) -> bool {
    timestamp.abs_diff(now) <= MAX_CLOCK_SKEW_SECS
}

/// The four headers of a signed request, ready to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacHeaders {
    /// `x-mac-userid`.
    pub user_id: u64,
    /// `x-mac-timestamp`.
    pub timestamp: u64,
    /// `x-mac-value`.
    pub value: String,
}

impl MacHeaders {
    /// Signs a request for `user_id` at `timestamp`.
    pub fn new(
        key: &MacKey,
        user_id: u64,
        timestamp: u64,
        method: &str,
        path_and_query: &str,
    ) -> Self {
        Self {
            user_id,
            timestamp,
            value: sign(key, user_id, timestamp, method, path_and_query),
        }
    }

    /// `(name, value)` pairs including the version header.
    pub fn pairs(&self) -> [(&'static str, String); 4] {
        [
            (HEADER_VERSION, MAC_VERSION.to_owned()),
            (HEADER_USER_ID, self.user_id.to_string()),
            (HEADER_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_VALUE, self.value.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known answer computed independently with Python's hmac module:
    // base64(hmac.new(base64decode("OWOMg2gnaSx1nwMu8MAndfw0CvYJwKOakpYxWpWsdC0="),
    //        b"1|123|1700000000|GET|/api/transaction/read?spaceId=1&id=42", sha512).digest())
    const SECRET: &str = "OWOMg2gnaSx1nwMu8MAndfw0CvYJwKOakpYxWpWsdC0=";
    const PATH: &str = "/api/transaction/read?spaceId=1&id=42";

    #[test]
    fn signing_string_layout() {
        assert_eq!(
            signing_string(123, 1_700_000_000, "get", PATH),
            "1|123|1700000000|GET|/api/transaction/read?spaceId=1&id=42"
        );
    }

    #[test]
    fn known_answer() {
        let key = MacKey::from_base64(SECRET).unwrap();
        assert_eq!(sign(&key, 123, 1_700_000_000, "GET", PATH), KNOWN_MAC);
    }

    const KNOWN_MAC: &str = include_str!("../../tests/fixtures/mac_known_answer.txt");

    #[test]
    fn verify_accepts_own_and_rejects_changes() {
        let key = MacKey::from_base64(SECRET).unwrap();
        let mac = sign(&key, 123, 1_700_000_000, "POST", PATH);
        assert!(verify(&key, 123, 1_700_000_000, "POST", PATH, &mac));
        assert!(!verify(&key, 124, 1_700_000_000, "POST", PATH, &mac));
        assert!(!verify(&key, 123, 1_700_000_001, "POST", PATH, &mac));
        assert!(!verify(&key, 123, 1_700_000_000, "GET", PATH, &mac));
        assert!(!verify(
            &key,
            123,
            1_700_000_000,
            "POST",
            "/api/transaction/read?spaceId=1&id=43",
            &mac
        ));
        assert!(!verify(
            &key,
            123,
            1_700_000_000,
            "POST",
            PATH,
            "not base64!"
        ));
        let other = MacKey::from_bytes(vec![7; 32]).unwrap();
        assert!(!verify(&other, 123, 1_700_000_000, "POST", PATH, &mac));
    }

    #[test]
    fn bad_secrets_rejected() {
        assert_eq!(
            MacKey::from_base64("%%%").unwrap_err(),
            MacKeyError::NotBase64
        );
        assert_eq!(MacKey::from_base64("").unwrap_err(), MacKeyError::Empty);
        assert_eq!(
            format!("{:?}", MacKey::from_base64(SECRET).unwrap()),
            "MacKey(<redacted>)"
        );
    }

    #[test]
    fn freshness_window() {
        assert!(timestamp_fresh(1000, 1600));
        assert!(timestamp_fresh(1600, 1000));
        assert!(!timestamp_fresh(1000, 1601));
        assert!(!timestamp_fresh(1601, 1000));
    }
}
