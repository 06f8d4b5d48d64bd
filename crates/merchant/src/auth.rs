//! Who may call what: the instance a request is for and the credentials it presents.
//!
//! - `/instances/$I/…` is instance `I`; everything else is the `default` instance.
//! - `Authorization: Bearer secret-token:…` carries one of
//!   - the backend's admin token (`[merchant] ADMIN_TOKEN`, or `TALER_MERCHANT_TOKEN` at
//!     `cardcash merchant serve`): everything;
//!   - a login token of the instance (`POST /private/token`): what its [`Scope`] allows, until
//!     it expires or is revoked (only its SHA-512 is stored);
//!   - the instance's password (auth method `token`): everything of that instance.
//! - `Authorization: Basic base64($INSTANCE:password)` is accepted by `POST /private/token`
//!   only (a client logs in with the password and then works with a login token).
//! - An instance with auth method `external` is protected by a reverse proxy: the backend
//!   checks nothing, not even whether the header is well-formed.
//! - `/management/*` needs the admin token, or credentials of the `default` instance. While
//!   neither exists (a fresh backend without admin token) it is open, so that the first
//!   instance can be created, as with the C merchant.
//!
//! Refusals, as the C merchant answers: no or wrong credentials 401
//! `MERCHANT_GENERIC_UNAUTHORIZED`; an expired login token 401 `GENERIC_TOKEN_EXPIRED`; a valid
//! token whose scope does not allow the request 403 `GENERIC_TOKEN_PERMISSION_INSUFFICIENT`.

use std::fmt;
use std::str::FromStr;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use cardcash_http::auth::BasicAuth;
use cardcash_util::{ErrorCode, Timestamp};

use crate::config::DEFAULT_INSTANCE;
use crate::db::instances::{InstanceAuth, InstanceRow, LoginTokenRow};
use crate::error::MerchantError;
use crate::service::Merchant;

/// What a private request wants to do (the C merchant's "required permission" of each
/// endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    InstancesRead,
    InstancesWrite,
    ProductsRead,
    ProductsWrite,
    ProductsLock,
    OrdersRead,
    OrdersWrite,
    OrdersRefund,
    TransfersRead,
    TransfersWrite,
    WebhooksRead,
    WebhooksWrite,
}

impl Permission {
    /// Whether this only reads (what `GET` endpoints require).
    pub fn is_read(self) -> bool {
        crate::instances::is_read(self)
    }
}

/// The scope of a login token (docs.taler.net core/api-merchant "Scopes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every `GET` (read) endpoint.
    ReadOnly,
    /// Deprecated spelling of `all`.
    Write,
    /// Everything.
    All,
    /// Create orders and check their payment status.
    OrderSimple,
    /// `order-simple` plus locking inventory (a point of sale).
    OrderPos,
    /// `order-simple` plus refunds.
    OrderMgmt,
    /// `order-pos` and `order-mgmt` together.
    OrderFull,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::ReadOnly,
        Scope::Write,
        Scope::All,
        Scope::OrderSimple,
        Scope::OrderPos,
        Scope::OrderMgmt,
        Scope::OrderFull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ReadOnly => "readonly",
            Scope::Write => "write",
            Scope::All => "all",
            Scope::OrderSimple => "order-simple",
            Scope::OrderPos => "order-pos",
            Scope::OrderMgmt => "order-mgmt",
            Scope::OrderFull => "order-full",
        }
    }

    /// Whether a token of this scope may do what `permission` names.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission as P;
        let simple = matches!(permission, P::OrdersRead | P::OrdersWrite);
        match self {
            Scope::ReadOnly => permission.is_read(),
            Scope::Write | Scope::All => true,
            Scope::OrderSimple => simple,
            Scope::OrderPos => simple || permission == P::ProductsLock,
            Scope::OrderMgmt => simple || permission == P::OrdersRefund,
            Scope::OrderFull => simple || matches!(permission, P::ProductsLock | P::OrdersRefund),
        }
    }

    /// Whether everything this scope allows is allowed by `other` too (a refreshed token may
    /// not gain permissions).
    pub fn within(self, other: Scope) -> bool {
        use Permission as P;
        [
            P::InstancesRead,
            P::InstancesWrite,
            P::ProductsRead,
            P::ProductsWrite,
            P::ProductsLock,
            P::OrdersRead,
            P::OrdersWrite,
            P::OrdersRefund,
            P::TransfersRead,
            P::TransfersWrite,
            P::WebhooksRead,
            P::WebhooksWrite,
        ]
        .into_iter()
        .all(|p| !self.allows(p) || other.allows(p))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s).ok_or(())
    }
}

/// The instance a request is for: the `instance` path parameter under `/instances/{instance}/`,
/// otherwise the default instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for InstanceId {
    type Rejection = MerchantError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| MerchantError::malformed("path"))?;
        Ok(Self(
            params
                .iter()
                .find(|(name, _)| *name == "instance")
                .map_or_else(|| DEFAULT_INSTANCE.to_owned(), |(_, v)| v.to_owned()),
        ))
    }
}

/// The credentials of an `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    /// The secret of `Bearer secret-token:<secret>`.
    Bearer(String),
    /// `Basic` user and password.
    Basic {
        user: String,
        password: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Bearer(_) => f.write_str("Bearer(…redacted…)"),
            Self::Basic { user, .. } => write!(f, "Basic({user}, …redacted…)"),
        }
    }
}

/// Reads the `Authorization` header. Extra spaces after `Bearer` are tolerated, as by the C
/// merchant.
pub fn credentials(headers: &HeaderMap) -> Result<Credentials, MerchantError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(Credentials::None);
    };
    let value = value
        .to_str()
        .map_err(|_| MerchantError::unauthorized("the Authorization header is not ASCII"))?;
    let (scheme, rest) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| MerchantError::unauthorized("expected `Bearer secret-token:…`"))?;
    if scheme.eq_ignore_ascii_case("basic") {
        let basic = BasicAuth::parse(value.trim())
            .map_err(|_| MerchantError::unauthorized("malformed Basic credentials"))?;
        return Ok(Credentials::Basic {
            user: basic.user,
            password: basic.password,
        });
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(MerchantError::unauthorized(
            "expected `Authorization: Bearer secret-token:…`",
        ));
    }
    let secret = rest.trim().strip_prefix("secret-token:").ok_or_else(|| {
        MerchantError::unauthorized("a merchant token starts with `secret-token:` (RFC 8959)")
    })?;
    Ok(Credentials::Bearer(secret.to_owned()))
}

/// The secret of an `Authorization: Bearer secret-token:…` header (without the prefix), if any.
pub fn bearer_secret(headers: &HeaderMap) -> Result<Option<String>, MerchantError> {
    match credentials(headers)? {
        Credentials::None => Ok(None),
        Credentials::Bearer(s) => Ok(Some(s)),
        Credentials::Basic { .. } => Err(MerchantError::unauthorized(
            "expected `Authorization: Bearer secret-token:…`",
        )),
    }
}

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Authenticated {
    /// The backend's admin token.
    Admin,
    /// The instance's auth method is `external`.
    External,
    /// The instance's password.
    Password,
    /// A login token of the instance.
    Token(LoginTokenRow),
}

impl Authenticated {
    /// Whether these credentials allow `permission`.
    pub fn allows(&self, permission: Permission) -> bool {
        match self {
            Self::Token(t) => t.scope.allows(permission),
            Self::Admin | Self::External | Self::Password => true,
        }
    }

    /// The login token presented, if the request came with one.
    pub fn token(&self) -> Option<&LoginTokenRow> {
        match self {
            Self::Token(t) => Some(t),
            _ => None,
        }
    }
}

fn insufficient(scope: Scope, permission: Permission) -> MerchantError {
    MerchantError::refused(
        ErrorCode::GenericTokenPermissionInsufficient,
        format!("a {scope} login token does not allow {permission:?}"),
    )
}

impl Merchant {
    /// Whether the admin token was presented.
    fn is_admin(&self, secret: &str) -> bool {
        match &self.config().admin_token {
            Some(admin) => cardcash_http::auth::constant_time_eq(
                admin.trim_start_matches("secret-token:").as_bytes(),
                secret.as_bytes(),
            ),
            None => false,
        }
    }

    async fn password_opens(&self, instance: &InstanceRow, password: &str) -> bool {
        match &instance.auth {
            InstanceAuth::External => true,
            InstanceAuth::Token { password_hash } => {
                self.credentials()
                    .verify(
                        &format!("instance:{}", instance.id),
                        password,
                        Some(password_hash),
                    )
                    .await
            }
        }
    }

    /// Who the credentials of `headers` are for `instance`. `basic` = whether HTTP Basic with
    /// `$INSTANCE:password` is accepted (only `POST /private/token`).
    pub async fn authenticate(
        &self,
        instance: &InstanceRow,
        headers: &HeaderMap,
        basic: bool,
    ) -> Result<Authenticated, MerchantError> {
        if instance.auth == InstanceAuth::External {
            // Nothing is checked, not even whether the header is well-formed (as by the C
            // merchant): the proxy in front decided.
            return Ok(Authenticated::External);
        }
        let unauthorized = || {
            MerchantError::unauthorized(format!(
                "instance {:?} needs `Authorization: Bearer secret-token:<token or password>`",
                instance.id
            ))
        };
        match credentials(headers)? {
            Credentials::None => Err(unauthorized()),
            Credentials::Basic { user, password } => {
                if basic && user == instance.id && self.password_opens(instance, &password).await {
                    Ok(Authenticated::Password)
                } else {
                    Err(unauthorized())
                }
            }
            Credentials::Bearer(secret) => {
                if self.is_admin(&secret) {
                    return Ok(Authenticated::Admin);
                }
                if let Some(token) = self.login_token(instance, &secret).await? {
                    return Ok(Authenticated::Token(token));
                }
                if self.password_opens(instance, &secret).await {
                    return Ok(Authenticated::Password);
                }
                Err(unauthorized())
            }
        }
    }

    /// The login token `secret` of `instance`, if it is one; an expired one is refused.
    async fn login_token(
        &self,
        instance: &InstanceRow,
        secret: &str,
    ) -> Result<Option<LoginTokenRow>, MerchantError> {
        let hash = crate::instances::token_hash(secret);
        match self.store().login_token(instance.serial, &hash).await? {
            Some(t) if t.expires_at <= Timestamp::now() => Err(MerchantError::refused(
                ErrorCode::GenericTokenExpired,
                "the login token has expired",
            )),
            other => Ok(other),
        }
    }

    /// The live instance `id`, or 404 (`MERCHANT_GENERIC_INSTANCE_UNKNOWN`).
    pub async fn live_instance(&self, id: &str) -> Result<InstanceRow, MerchantError> {
        match self.store().instance(id).await? {
            Some(row) if !row.deleted => Ok(row),
            _ => Err(MerchantError::unknown_instance(id)),
        }
    }

    /// The instance a private request is for, once its credentials allow `permission`.
    pub async fn authorize(
        &self,
        id: &InstanceId,
        headers: &HeaderMap,
        permission: Permission,
    ) -> Result<InstanceRow, MerchantError> {
        self.authorize_as(id, headers, permission)
            .await
            .map(|(instance, _)| instance)
    }

    /// [`Self::authorize`], also saying how the request authenticated.
    pub async fn authorize_as(
        &self,
        id: &InstanceId,
        headers: &HeaderMap,
        permission: Permission,
    ) -> Result<(InstanceRow, Authenticated), MerchantError> {
        let instance = self.live_instance(&id.0).await?;
        let who = self.authenticate(&instance, headers, false).await?;
        match &who {
            Authenticated::Token(t) if !t.scope.allows(permission) => {
                Err(insufficient(t.scope, permission))
            }
            _ => Ok((instance, who)),
        }
    }

    /// Whether a `/management/*` request may proceed (instance administration: writes).
    pub async fn authorize_management(&self, headers: &HeaderMap) -> Result<(), MerchantError> {
        self.authorize_management_for(headers, Permission::InstancesWrite)
            .await
    }

    /// Whether a `/management/*` request needing `permission` may proceed: the admin token, or
    /// credentials of the `default` instance that allow it; open while neither exists.
    pub async fn authorize_management_for(
        &self,
        headers: &HeaderMap,
        permission: Permission,
    ) -> Result<(), MerchantError> {
        if let Ok(Credentials::Bearer(secret)) = credentials(headers)
            && self.is_admin(&secret)
        {
            return Ok(());
        }
        let default = self
            .store()
            .instance(DEFAULT_INSTANCE)
            .await?
            .filter(|row| !row.deleted);
        match default {
            None if self.config().admin_token.is_none() => Ok(()),
            None => Err(MerchantError::unauthorized(
                "management needs the admin token or the default instance's credentials",
            )),
            Some(default) => match self.authenticate(&default, headers, false).await? {
                Authenticated::Token(t) if !t.scope.allows(permission) => {
                    Err(insufficient(t.scope, permission))
                }
                _ => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn bearer_secrets_are_read_as_the_c_merchant_reads_them() {
        assert_eq!(bearer_secret(&HeaderMap::new()).unwrap(), None);
        assert_eq!(
            bearer_secret(&headers("Bearer secret-token:abc")).unwrap(),
            Some("abc".to_owned())
        );
        assert_eq!(
            bearer_secret(&headers("Bearer    secret-token:abc")).unwrap(),
            Some("abc".to_owned())
        );
        assert!(bearer_secret(&headers("Bearer abc")).is_err());
        assert!(bearer_secret(&headers("Basic YTpi")).is_err());
        assert_eq!(
            credentials(&headers("Basic YTpi")).unwrap(),
            Credentials::Basic {
                user: "a".into(),
                password: "b".into()
            }
        );
        assert!(credentials(&headers("Digest x")).is_err());
    }

    #[test]
    fn scopes_allow_what_the_c_merchant_documents() {
        use Permission as P;
        // readonly: every read, no write.
        assert!(Scope::ReadOnly.allows(P::OrdersRead));
        assert!(Scope::ReadOnly.allows(P::InstancesRead));
        assert!(!Scope::ReadOnly.allows(P::OrdersWrite));
        assert!(!Scope::ReadOnly.allows(P::InstancesWrite));
        // order-simple: create and check orders, nothing else.
        assert!(Scope::OrderSimple.allows(P::OrdersWrite));
        assert!(Scope::OrderSimple.allows(P::OrdersRead));
        assert!(!Scope::OrderSimple.allows(P::InstancesWrite));
        assert!(!Scope::OrderSimple.allows(P::ProductsLock));
        assert!(!Scope::OrderSimple.allows(P::OrdersRefund));
        // order-pos adds locking, order-mgmt refunds, order-full both.
        assert!(Scope::OrderPos.allows(P::ProductsLock));
        assert!(!Scope::OrderPos.allows(P::OrdersRefund));
        assert!(Scope::OrderMgmt.allows(P::OrdersRefund));
        assert!(!Scope::OrderMgmt.allows(P::ProductsLock));
        assert!(
            Scope::OrderFull.allows(P::ProductsLock) && Scope::OrderFull.allows(P::OrdersRefund)
        );
        assert!(!Scope::OrderFull.allows(P::ProductsWrite));
        assert!(Scope::All.allows(P::InstancesWrite) && Scope::Write.allows(P::WebhooksWrite));
        // Refreshing never widens.
        assert!(Scope::OrderSimple.within(Scope::OrderFull));
        assert!(!Scope::OrderFull.within(Scope::OrderPos));
        assert!(Scope::ReadOnly.within(Scope::All));
        assert!(!Scope::All.within(Scope::ReadOnly));
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>(), Ok(s));
        }
    }
}
