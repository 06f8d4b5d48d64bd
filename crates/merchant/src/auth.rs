//! Who may call what: the instance a request is for and the credentials it presents.
//!
//! - `/instances/$I/…` is instance `I`; everything else is the `default` instance.
//! - `Authorization: Bearer secret-token:…` carries either the backend's admin token
//!   (`[merchant] ADMIN_TOKEN`: everything), or the instance's password (auth method `token`:
//!   everything of that instance). An instance with auth method `external` is protected by a
//!   reverse proxy: the backend checks nothing.
//! - `/management/*` needs the admin token, or the credentials of the `default` instance. While
//!   neither exists (a fresh backend without `ADMIN_TOKEN`) it is open, so that the first
//!   instance can be created, as with the C merchant.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::config::DEFAULT_INSTANCE;
use crate::db::instances::{InstanceAuth, InstanceRow};
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

/// The secret of an `Authorization: Bearer secret-token:…` header (without the prefix), if any.
/// Extra spaces after `Bearer` are tolerated, as by the C merchant.
pub fn bearer_secret(headers: &HeaderMap) -> Result<Option<String>, MerchantError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| MerchantError::unauthorized("the Authorization header is not ASCII"))?;
    let (scheme, rest) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| MerchantError::unauthorized("expected `Bearer secret-token:…`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(MerchantError::unauthorized(
            "expected `Authorization: Bearer secret-token:…`",
        ));
    }
    let token = rest.trim();
    let secret = token.strip_prefix("secret-token:").ok_or_else(|| {
        MerchantError::unauthorized("a merchant token starts with `secret-token:` (RFC 8959)")
    })?;
    Ok(Some(secret.to_owned()))
}

impl Merchant {
    /// Whether the admin token was presented.
    fn is_admin(&self, secret: Option<&str>) -> bool {
        match (&self.config().admin_token, secret) {
            (Some(admin), Some(secret)) => cardcash_http::auth::constant_time_eq(
                admin.trim_start_matches("secret-token:").as_bytes(),
                secret.as_bytes(),
            ),
            _ => false,
        }
    }

    /// Whether `secret` opens `instance` (its auth method and password).
    async fn opens(&self, instance: &InstanceRow, secret: Option<&str>) -> bool {
        match &instance.auth {
            InstanceAuth::External => true,
            InstanceAuth::Token { password_hash } => match secret {
                Some(secret) => {
                    self.credentials()
                        .verify(
                            &format!("instance:{}", instance.id),
                            secret,
                            Some(password_hash),
                        )
                        .await
                }
                None => false,
            },
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
        let _ = permission; // every credential we know so far allows everything of its instance
        let secret = bearer_secret(headers)?;
        let instance = self.live_instance(&id.0).await?;
        if self.is_admin(secret.as_deref()) || self.opens(&instance, secret.as_deref()).await {
            return Ok(instance);
        }
        Err(MerchantError::unauthorized(format!(
            "instance {:?} needs `Authorization: Bearer secret-token:<password>`",
            instance.id
        )))
    }

    /// Whether a `/management/*` request may proceed.
    pub async fn authorize_management(&self, headers: &HeaderMap) -> Result<(), MerchantError> {
        let secret = bearer_secret(headers)?;
        if self.is_admin(secret.as_deref()) {
            return Ok(());
        }
        let default = self
            .store()
            .instance(DEFAULT_INSTANCE)
            .await?
            .filter(|row| !row.deleted);
        match default {
            None if self.config().admin_token.is_none() => Ok(()),
            Some(default) if self.opens(&default, secret.as_deref()).await => Ok(()),
            _ => Err(MerchantError::unauthorized(
                "management needs the admin token or the default instance's credentials",
            )),
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
    }
}
