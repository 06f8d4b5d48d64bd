//! The storefront's one error enum. The shop's own pages never fail for a customer's reasons
//! (sold out, empty cart: a notice on the page instead); what is left is the backend failing,
//! a wrong admin password, a malformed form, and internal trouble.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cardcash_client::ClientError;
use cardcash_http::{ApiError, ErrorCode, error_response};

/// The realm of `/admin`'s Basic authentication.
pub const ADMIN_REALM: &str = "Pretty Pianos admin";

/// Everything that can go wrong in the storefront.
#[derive(Debug, thiserror::Error)]
pub enum StorefrontError {
    /// The merchant backend failed or refused (logged; the customer sees 502).
    #[error("merchant backend: {0}")]
    Merchant(#[from] ClientError),
    /// `/admin` without the right password.
    #[error("the admin pages need the admin password")]
    AdminUnauthorized,
    /// A form or path value is unusable.
    #[error("{0}")]
    Malformed(String),
    /// An invariant broke (logged, never echoed).
    #[error("internal error: {0}")]
    Internal(String),
    /// The shop could not start.
    #[error("{0}")]
    Startup(String),
}

impl ApiError for StorefrontError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Merchant(_) => StatusCode::BAD_GATEWAY,
            Self::AdminUnauthorized => StatusCode::UNAUTHORIZED,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Internal(_) | Self::Startup(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::Merchant(_) => ErrorCode::GenericUnexpectedRequestError,
            Self::AdminUnauthorized => ErrorCode::GenericUnauthorized,
            Self::Malformed(_) => ErrorCode::GenericParameterMalformed,
            Self::Internal(_) | Self::Startup(_) => ErrorCode::GenericInternalInvariantFailure,
        }
    }

    fn challenge(&self) -> Option<String> {
        matches!(self, Self::AdminUnauthorized)
            .then(|| format!("Basic realm=\"{ADMIN_REALM}\", charset=\"UTF-8\""))
    }
}

impl IntoResponse for StorefrontError {
    fn into_response(self) -> Response {
        error_response(&self)
    }
}

impl From<cardcash_crypto::CryptoError> for StorefrontError {
    fn from(e: cardcash_crypto::CryptoError) -> Self {
        Self::Internal(format!("crypto: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_the_admin_challenge() {
        assert_eq!(
            StorefrontError::AdminUnauthorized.status(),
            StatusCode::UNAUTHORIZED
        );
        assert!(
            StorefrontError::AdminUnauthorized
                .challenge()
                .unwrap()
                .starts_with("Basic realm=\"Pretty Pianos admin\"")
        );
        assert_eq!(
            StorefrontError::Malformed("x".into()).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(StorefrontError::Malformed("x".into()).challenge(), None);
    }
}
