//! The card processor's one error enum: every failure of the service, with its HTTP status and
//! official Taler error code (docs/CARDPROC-API.md lists them per endpoint).
//!
//! GANA has no card-processor codes, so conflicts borrow the closest official ones: an over-refund
//! is `EXCHANGE_REFUND_CONFLICT_DEPOSIT_INSUFFICIENT`, a refund of an unpaid transaction
//! `MERCHANT_PRIVATE_POST_ORDERS_ID_REFUND_ORDER_UNPAID`, a reused `externalId`
//! `BANK_TRANSFER_REQUEST_UID_REUSED`, a void after capture `BANK_CONFIRM_ABORT_CONFLICT`
//! ("cannot abort what is confirmed"), unknown ids `BANK_TRANSACTION_NOT_FOUND`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cardcash_http::{ApiError, ErrorCode, error_response};
use cardcash_store::{Retryable, StoreError};

use crate::processing::{AuthorizerError, CardError};
use cardcash_api::cardproc::TransactionState;

/// Everything that can go wrong in the card processor.
#[derive(Debug, thiserror::Error)]
pub enum CardprocError {
    /// The database failed (logged, never echoed).
    #[error("database error: {0}")]
    Store(#[from] StoreError),
    /// Missing or malformed MAC headers, unknown user, wrong MAC or stale timestamp.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// `/admin/…` without the right bearer token.
    #[error("admin bearer token missing or wrong")]
    AdminUnauthorized,
    /// Authenticated, but the role or space does not allow this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A query parameter is absent.
    #[error("missing query parameter {0}")]
    MissingParameter(&'static str),
    /// A value is unusable (hint says which).
    #[error("{0}")]
    Malformed(String),
    /// The currency is not one the processor accepts.
    #[error("currency not accepted by this processor")]
    CurrencyNotAccepted,
    /// The card data is invalid.
    #[error("{0}")]
    Card(#[from] CardError),
    /// No such transaction in this space.
    #[error("transaction not found")]
    TransactionNotFound,
    /// No such refund in this space.
    #[error("refund not found")]
    RefundNotFound,
    /// Only `AUTHORIZED` (not yet final) transactions can be voided.
    #[error("transaction in state {0} cannot be voided")]
    NotVoidable(TransactionState),
    /// Only `FULFILL` transactions can be refunded.
    #[error("transaction in state {0} cannot be refunded")]
    NotRefundable(TransactionState),
    /// The refunds would exceed the captured amount.
    #[error("refunds would exceed the completed amount")]
    RefundExceedsCompleted,
    /// The `externalId` was used before with a different request.
    #[error("externalId already used for a different refund")]
    ExternalIdReused,
    /// The operator switched the processor off (`/admin/outage`).
    #[error("card processor is down for maintenance")]
    Outage,
    /// The authorizer (card network) could not be reached.
    #[error(transparent)]
    Authorizer(#[from] AuthorizerError),
    /// An invariant broke (e.g. a stored row that does not parse).
    #[error("internal invariant failed: {0}")]
    Internal(String),
}

impl ApiError for CardprocError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Store(e) => {
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Self::Unauthorized(_) | Self::AdminUnauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::MissingParameter(_)
            | Self::Malformed(_)
            | Self::CurrencyNotAccepted
            | Self::Card(_) => StatusCode::BAD_REQUEST,
            Self::TransactionNotFound | Self::RefundNotFound => StatusCode::NOT_FOUND,
            Self::NotVoidable(_)
            | Self::NotRefundable(_)
            | Self::RefundExceedsCompleted
            | Self::ExternalIdReused => StatusCode::CONFLICT,
            Self::Outage => StatusCode::SERVICE_UNAVAILABLE,
            Self::Authorizer(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::Store(e) => e.code(),
            Self::Unauthorized(_) | Self::AdminUnauthorized => ErrorCode::GenericUnauthorized,
            Self::Forbidden(_) => ErrorCode::GenericForbidden,
            Self::MissingParameter(_) => ErrorCode::GenericParameterMissing,
            Self::Malformed(_) | Self::Card(_) => ErrorCode::GenericParameterMalformed,
            Self::CurrencyNotAccepted => ErrorCode::GenericCurrencyMismatch,
            Self::TransactionNotFound | Self::RefundNotFound => ErrorCode::BankTransactionNotFound,
            Self::NotVoidable(_) => ErrorCode::BankConfirmAbortConflict,
            Self::NotRefundable(_) => ErrorCode::MerchantPrivatePostOrdersIdRefundOrderUnpaid,
            Self::RefundExceedsCompleted => ErrorCode::ExchangeRefundConflictDepositInsufficient,
            Self::ExternalIdReused => ErrorCode::BankTransferRequestUidReused,
            // GANA has no generic "unavailable" code; the 503 status is what clients act on.
            Self::Outage => ErrorCode::GenericTimeout,
            Self::Authorizer(_) => ErrorCode::GenericInvalidResponse,
            Self::Internal(_) => ErrorCode::GenericInternalInvariantFailure,
        }
    }

    fn challenge(&self) -> Option<String> {
        // Not Basic auth: tell clients which scheme we speak.
        Some(match self {
            Self::AdminUnauthorized => "Bearer realm=\"cardproc-admin\"".to_owned(),
            _ => "WalleeMAC version=\"1\"".to_owned(),
        })
    }
}

impl IntoResponse for CardprocError {
    fn into_response(self) -> Response {
        error_response(&self)
    }
}

impl Retryable for CardprocError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_retryable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let cases = [
            (CardprocError::Unauthorized("x"), 401, 40),
            (CardprocError::Forbidden("x"), 403, 44),
            (CardprocError::MissingParameter("id"), 400, 25),
            (CardprocError::Card(CardError::Luhn), 400, 26),
            (CardprocError::CurrencyNotAccepted, 400, 30),
            (CardprocError::TransactionNotFound, 404, 5107),
            (
                CardprocError::NotRefundable(TransactionState::Decline),
                409,
                2531,
            ),
            (CardprocError::RefundExceedsCompleted, 409, 1501),
            (
                CardprocError::NotVoidable(TransactionState::Fulfill),
                409,
                5117,
            ),
            (CardprocError::ExternalIdReused, 409, 5112),
            (CardprocError::Outage, 503, 11),
        ];
        for (e, status, code) in cases {
            assert_eq!(
                (e.status().as_u16(), e.code().code()),
                (status, code),
                "{e}"
            );
        }
    }
}
