//! The exchange's one error enum. Every refusal carries its official Taler error code (GANA),
//! and the HTTP status the registry assigns to that code, which is what the C exchange
//! answers. Some answers carry protocol-defined extra fields (an insufficient-funds answer its
//! balance, a double-spending answer the coin's history). Internal errors are logged once by
//! `cardcash_http::error_response` and never echoed.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cardcash_http::{ApiError, Refusal};
use cardcash_store::StoreError;
use cardcash_util::ErrorCode;
use serde_json::{Map, Value};

use crate::keys::store::KeyStoreError;

/// Everything that can go wrong in an exchange request.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// A refusal with an official code; the status is the code's registered one unless given
    /// (where the C exchange answers another).
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("database error")]
    Store(#[from] StoreError),
    #[error("key store: {0}")]
    KeyStore(#[from] KeyStoreError),
    #[error("cannot start: {0}")]
    Startup(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ExchangeError {
    cardcash_http::refusal_constructors!();
}

impl ApiError for ExchangeError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Refused(r) => r.status(),
            Self::KeyStore(KeyStoreError::UnknownDenomination(_)) => StatusCode::NOT_FOUND,
            Self::KeyStore(KeyStoreError::BadPlanchet(_)) => StatusCode::BAD_REQUEST,
            Self::Store(_) | Self::KeyStore(_) | Self::Startup(_) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::Refused(r) => r.code,
            Self::KeyStore(KeyStoreError::UnknownDenomination(_)) => {
                ErrorCode::ExchangeGenericDenominationKeyUnknown
            }
            Self::KeyStore(KeyStoreError::BadPlanchet(_)) => {
                ErrorCode::ExchangeWithdrawSignatureFailed
            }
            Self::KeyStore(_) => ErrorCode::ExchangeDenominationHelperBug,
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

impl IntoResponse for ExchangeError {
    fn into_response(self) -> Response {
        cardcash_http::error_response(&self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_take_the_registered_status() {
        let e = ExchangeError::refused(ErrorCode::ExchangeWithdrawReserveUnknown, "no reserve");
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        let e = ExchangeError::refused(ErrorCode::ExchangeRefundMerchantAlreadyPaid, "paid");
        assert_eq!(e.status(), StatusCode::GONE);
        let e = ExchangeError::refused_with(
            ErrorCode::ExchangeWithdrawInsufficientFunds,
            "short",
            serde_json::json!({"balance": "KUDOS:1"}),
        );
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert_eq!(e.extra().unwrap()["balance"], "KUDOS:1");
    }
}
