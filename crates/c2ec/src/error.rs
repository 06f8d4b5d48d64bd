//! C2EC's one error enum: every refusal a client can get, with its HTTP status and official
//! Taler error code (GANA). Internal errors are logged once by `cardcash_http::error_response`
//! and never echoed.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cardcash_http::ApiError;
use cardcash_store::{Retryable, StoreError};
use cardcash_util::ErrorCode;

/// Everything that can go wrong in a C2EC request.
#[derive(Debug, thiserror::Error)]
pub enum C2ecError {
    #[error("{hint}")]
    BadRequest { code: ErrorCode, hint: String },
    #[error("missing or malformed credentials")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("withdrawal operation not found")]
    WithdrawalNotFound,
    #[error("{hint}")]
    Conflict { code: ErrorCode, hint: String },
    #[error("{0}")]
    NotFound(String),
    #[error("database error")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl C2ecError {
    pub fn bad_request(code: ErrorCode, hint: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            hint: hint.into(),
        }
    }

    pub fn conflict(code: ErrorCode, hint: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            hint: hint.into(),
        }
    }

    pub fn malformed(what: &str) -> Self {
        Self::bad_request(
            ErrorCode::GenericParameterMalformed,
            format!("malformed {what}"),
        )
    }
}

impl ApiError for C2ecError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::WithdrawalNotFound | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Store(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest { code, .. } | Self::Conflict { code, .. } => *code,
            Self::Unauthorized => ErrorCode::GenericUnauthorized,
            Self::Forbidden(_) => ErrorCode::GenericForbidden,
            Self::WithdrawalNotFound => ErrorCode::BankTransactionNotFound,
            Self::NotFound(_) => ErrorCode::GenericEndpointUnknown,
            Self::Store(_) => ErrorCode::GenericDbFetchFailed,
            Self::Internal(_) => ErrorCode::GenericInternalInvariantFailure,
        }
    }

    fn challenge(&self) -> Option<String> {
        Some(cardcash_http::error::basic_challenge("c2ec"))
    }
}

impl IntoResponse for C2ecError {
    fn into_response(self) -> Response {
        cardcash_http::error_response(&self)
    }
}

impl Retryable for C2ecError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_busy_or_serialization())
    }
}

impl From<cardcash_http::TalerError> for C2ecError {
    fn from(e: cardcash_http::TalerError) -> Self {
        match e.status {
            StatusCode::UNAUTHORIZED => Self::Unauthorized,
            _ => Self::BadRequest {
                code: e.code,
                hint: e.hint,
            },
        }
    }
}
