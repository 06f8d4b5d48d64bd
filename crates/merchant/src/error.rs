//! The merchant backend's one error enum. Every refusal carries its official Taler error code
//! (GANA) and, unless the C merchant answers otherwise, the HTTP status the registry assigns to
//! it. Some answers carry protocol-defined extra fields (an out-of-stock answer the product and
//! quantities, a failed deposit the exchange's reply). Internal errors are logged once by
//! `cardcash_http::error_response` and never echoed.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cardcash_http::{ApiError, Refusal};
use cardcash_store::StoreError;
use cardcash_util::ErrorCode;
use serde_json::{Map, Value};

/// Everything that can go wrong in a merchant request.
#[derive(Debug, thiserror::Error)]
pub enum MerchantError {
    /// A refusal with an official code; the status is the code's registered one unless given
    /// (the C merchant's, where it differs).
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("database error")]
    Store(#[from] StoreError),
    #[error("cannot start: {0}")]
    Startup(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl MerchantError {
    cardcash_http::refusal_constructors!();

    /// 401 `MERCHANT_GENERIC_UNAUTHORIZED`.
    pub fn unauthorized(hint: impl Into<String>) -> Self {
        Self::refused(ErrorCode::MerchantGenericUnauthorized, hint)
    }

    /// 404 `MERCHANT_GENERIC_INSTANCE_UNKNOWN`.
    pub fn unknown_instance(id: &str) -> Self {
        Self::refused(
            ErrorCode::MerchantGenericInstanceUnknown,
            format!("no instance {id:?}"),
        )
    }
}

impl ApiError for MerchantError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Refused(r) => r.status(),
            Self::Store(_) | Self::Startup(_) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::Refused(r) => r.code,
            Self::Store(_) => ErrorCode::GenericDbFetchFailed,
            Self::Startup(_) | Self::Internal(_) => ErrorCode::GenericInternalInvariantFailure,
        }
    }

    fn extra(&self) -> Option<Map<String, Value>> {
        match self {
            Self::Refused(r) => r.extra(),
            _ => None,
        }
    }
}

impl IntoResponse for MerchantError {
    fn into_response(self) -> Response {
        cardcash_http::error_response(&self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_take_the_registered_status() {
        let e = MerchantError::refused(ErrorCode::MerchantGenericOrderUnknown, "no order");
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        let e = MerchantError::refused_with(
            ErrorCode::MerchantPrivatePostProductsLockInsufficientStocks,
            "short",
            serde_json::json!({"product_id": "p001"}),
        );
        assert_eq!(e.status(), StatusCode::GONE);
        assert_eq!(e.extra().unwrap()["product_id"], "p001");
        assert_eq!(
            MerchantError::unauthorized("x").status(),
            StatusCode::UNAUTHORIZED
        );
    }
}
