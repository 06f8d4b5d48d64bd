//! The `Auth` extractor: turns the `Authorization` header into a [`Principal`] or a Taler 401.
//!
//! Accepted (docs.taler.net api-corebank "Authentication"; libeufin `auth.kt`):
//! - `Basic base64(name:password)`: the account's argon2id password, checked by the shared
//!   [`cardcash_http::CredentialVerifier`] (off the executor, a bounded number at once, recent
//!   successes cached; an unknown name costs the same hash as a wrong password);
//! - `Bearer <ADMIN_TOKEN>` from the configuration (constant-time comparison): the admin;
//! - `Bearer secret-token:…` issued by `POST /accounts/{name}/token`.
//!
//! Missing or wrong credentials are 401 `GENERIC_UNAUTHORIZED`; the right credentials for the
//! wrong account are 403 `GENERIC_FORBIDDEN` (checked by [`Principal::check`]).

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use cardcash_http::{BasicAuth, BearerToken, constant_time_eq};

use super::AppState;
use crate::auth::{Principal, Scope, TOKEN_PREFIX};
use crate::error::{BankError, Result};
use crate::password::Password;

/// The authenticated party of a request.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

/// What the caller already read about the account a request is about: its name and stored
/// password hash, so that Basic credentials of that very account cost no second read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Known<'a> {
    pub name: &'a str,
    pub password_hash: Option<&'a str>,
}

async fn authenticate(
    state: &AppState,
    header: &str,
    known: Option<Known<'_>>,
) -> Result<Principal> {
    let scheme = header
        .trim_start()
        .split_once(' ')
        .map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("basic") => {
            let basic = BasicAuth::parse(header)
                .map_err(|_| BankError::Unauthorized("malformed Basic credentials"))?;
            basic_login(state, basic, known).await
        }
        Some("bearer") => {
            let bearer = BearerToken::parse(header)
                .map_err(|_| BankError::Unauthorized("malformed Bearer token"))?;
            bearer_login(state, bearer.as_str()).await
        }
        _ => Err(BankError::Unauthorized("use HTTP Basic or a Bearer token")),
    }
}

async fn basic_login(
    state: &AppState,
    basic: BasicAuth,
    known: Option<Known<'_>>,
) -> Result<Principal> {
    let Ok(password) = Password::new(basic.password) else {
        return Err(BankError::Unauthorized("wrong account name or password"));
    };
    // An unknown account costs the verifier the same hash as a wrong password.
    let stored = match known {
        Some(known) if known.name == basic.user => known.password_hash.map(str::to_owned),
        _ => state.ledger.password_hash(&basic.user).await?,
    };
    let verified = state
        .credentials
        .verify(&basic.user, password.as_str(), stored.as_deref())
        .await;
    if !verified {
        return Err(BankError::Unauthorized("wrong account name or password"));
    }
    if basic.user == crate::account::ADMIN {
        Ok(Principal::Admin)
    } else {
        Ok(Principal::Account {
            name: basic.user,
            scope: Scope::ReadWrite,
        })
    }
}

async fn bearer_login(state: &AppState, token: &str) -> Result<Principal> {
    if let Some(admin) = &state.config.admin_token
        && constant_time_eq(admin.as_bytes(), token.as_bytes())
    {
        return Ok(Principal::Admin);
    }
    if !token.starts_with(TOKEN_PREFIX) {
        return Err(BankError::Unauthorized("unknown bearer token"));
    }
    match state.ledger.token_owner(token).await? {
        Some((name, scope)) => Ok(Principal::Account { name, scope }),
        None => Err(BankError::Unauthorized("unknown or expired bearer token")),
    }
}

fn header(parts: &Parts) -> Result<Option<&str>> {
    parts
        .headers
        .get(AUTHORIZATION)
        .map(|v| {
            v.to_str()
                .map_err(|_| BankError::Unauthorized("Authorization header is not ASCII"))
        })
        .transpose()
}

/// Whether the request carries HTTP Basic credentials (the only kind checked against an
/// account's row).
pub(crate) fn uses_basic(parts: &Parts) -> bool {
    matches!(header(parts), Ok(Some(value))
        if value.trim_start().get(..6).is_some_and(|s| s.eq_ignore_ascii_case("basic ")))
}

/// Authenticates a request whose `Authorization` header is required (401 without one).
pub(crate) async fn principal(
    parts: &Parts,
    state: &AppState,
    known: Option<Known<'_>>,
) -> Result<Principal> {
    match header(parts)? {
        Some(value) => authenticate(state, value, known).await,
        None => Err(BankError::Unauthorized("this endpoint needs credentials")),
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        principal(parts, state, None)
            .await
            .map(Auth)
            .map_err(IntoResponse::into_response)
    }
}

/// `Option<Auth>`: `None` without an `Authorization` header; wrong credentials are still a 401.
impl OptionalFromRequestParts<AppState> for Auth {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Option<Self>, Self::Rejection> {
        let result = match header(parts) {
            Ok(Some(value)) => authenticate(state, value, None)
                .await
                .map(|p| Some(Auth(p))),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        result.map_err(IntoResponse::into_response)
    }
}
