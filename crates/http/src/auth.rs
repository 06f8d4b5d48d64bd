//! `Authorization` header parsing (HTTP Basic, Bearer) and constant-time credential checks.
//!
//! Used by the Wire Gateway (Basic auth per exchange account), the terminal API (Basic auth per
//! terminal) and admin endpoints (Bearer tokens). Failures are Taler errors: 401
//! `GENERIC_UNAUTHORIZED` with a `WWW-Authenticate` challenge. Checking whether the credentials
//! are *right* is the service's job; it must use [`constant_time_eq`] / [`basic_auth_matches`].

use std::fmt;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use crate::TalerError;
use crate::error::DEFAULT_REALM;

/// Credentials of an `Authorization: Basic …` header.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("user", &self.user)
            .field("password", &"…redacted…")
            .finish()
    }
}

impl BasicAuth {
    /// Parses a header value `Basic base64(user:password)` (scheme case-insensitive).
    pub fn parse(value: &str) -> Result<Self, TalerError> {
        let encoded = strip_scheme(value, "Basic")
            .ok_or_else(|| unauthorized("expected HTTP Basic authentication"))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| unauthorized("Basic credentials are not valid base64"))?;
        let text = String::from_utf8(decoded)
            .map_err(|_| unauthorized("Basic credentials are not valid UTF-8"))?;
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| unauthorized("Basic credentials lack a ':'"))?;
        Ok(Self {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }
}

/// The token of an `Authorization: Bearer …` header, exactly as sent (Taler tokens keep their
/// `secret-token:` prefix).
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(pub String);

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(…redacted…)")
    }
}

impl BearerToken {
    /// Parses a header value `Bearer <token>` (scheme case-insensitive).
    pub fn parse(value: &str) -> Result<Self, TalerError> {
        let token = strip_scheme(value, "Bearer")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("expected a Bearer token"))?;
        Ok(Self(token.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Compares two secrets in time independent of where they differ (the length may leak).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Whether `auth` carries exactly `user` and `password`; both are compared in constant time and
/// always both, so timing does not reveal which one was wrong.
pub fn basic_auth_matches(auth: &BasicAuth, user: &str, password: &str) -> bool {
    let user_ok = auth.user.as_bytes().ct_eq(user.as_bytes());
    let password_ok = auth.password.as_bytes().ct_eq(password.as_bytes());
    (user_ok & password_ok).into()
}

/// The 401 every authentication failure turns into.
pub fn unauthorized(hint: &str) -> TalerError {
    TalerError::unauthorized(DEFAULT_REALM, hint)
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.trim_start().split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}

fn header_str(parts: &Parts) -> Result<Option<&str>, TalerError> {
    match parts.headers.get(AUTHORIZATION) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| unauthorized("Authorization header is not ASCII")),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BasicAuth {
    type Rejection = TalerError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = header_str(parts)?.ok_or_else(|| unauthorized("authentication required"))?;
        Self::parse(value)
    }
}

/// `Option<BasicAuth>`: `None` without an `Authorization` header, an error if it is malformed.
impl<S: Send + Sync> OptionalFromRequestParts<S> for BasicAuth {
    type Rejection = TalerError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        header_str(parts)?.map(Self::parse).transpose()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = TalerError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = header_str(parts)?.ok_or_else(|| unauthorized("authentication required"))?;
        Self::parse(value)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for BearerToken {
    type Rejection = TalerError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        header_str(parts)?.map(Self::parse).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_parses() {
        // "exchange:x-taler-bank" in base64
        let auth = BasicAuth::parse("Basic ZXhjaGFuZ2U6eC10YWxlci1iYW5r").unwrap();
        assert_eq!(auth.user, "exchange");
        assert_eq!(auth.password, "x-taler-bank");
        // scheme is case-insensitive; the password may contain ':'
        let auth = BasicAuth::parse("basic dTpwOnE=").unwrap();
        assert_eq!((auth.user.as_str(), auth.password.as_str()), ("u", "p:q"));
        assert!(!format!("{auth:?}").contains("p:q"));
    }

    #[test]
    fn basic_rejects_garbage() {
        for v in [
            "Bearer abc",
            "Basic",
            "Basic !!!",
            "Basic dXNlcg==", /* "user" */
        ] {
            let e = BasicAuth::parse(v).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::UNAUTHORIZED, "{v}");
        }
    }

    #[test]
    fn bearer_parses() {
        let t = BearerToken::parse("Bearer secret-token:abc").unwrap();
        assert_eq!(t.as_str(), "secret-token:abc");
        assert!(BearerToken::parse("Bearer ").is_err());
        assert!(BearerToken::parse("Basic abc").is_err());
    }

    #[test]
    fn matching() {
        let auth = BasicAuth {
            user: "u".into(),
            password: "p".into(),
        };
        assert!(basic_auth_matches(&auth, "u", "p"));
        assert!(!basic_auth_matches(&auth, "u", "q"));
        assert!(!basic_auth_matches(&auth, "v", "p"));
        assert!(!basic_auth_matches(&auth, "u", "pp"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
