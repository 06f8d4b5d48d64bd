//! The bank's one error enum: every failure of a request, with its HTTP status and official Taler
//! error code (GANA `gnu-taler-error-codes`; the codes libeufin-bank answers with for the same
//! situation, see its `WireGatewayApi.kt` and `CoreBankApi.kt`).
//!
//! Internal errors (database, hashing) are logged once by `cardcash_http::error_response` and
//! never echoed to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cardcash_http::ApiError;
use cardcash_store::StoreError;
use cardcash_util::ErrorCode;

use crate::balance::BalanceError;
use cardcash_api::wire_gateway::HistoryParamError;

/// Everything that can go wrong in the bank.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    // --- 400: the request itself is wrong ---
    #[error("the currency of {what} is {got}, but this bank works in {expected}")]
    CurrencyMismatch {
        what: &'static str,
        got: String,
        expected: String,
    },
    #[error("malformed parameter '{name}': {reason}")]
    BadParameter { name: &'static str, reason: String },
    #[error("missing parameter '{0}'")]
    MissingParameter(&'static str),
    #[error("malformed payto URI: {0}")]
    BadPayto(String),
    #[error(transparent)]
    History(#[from] HistoryParamError),

    // --- 401 / 403: who is asking ---
    #[error("authentication required: {0}")]
    Unauthorized(&'static str),
    #[error("the authenticated party may not access account '{0}'")]
    Forbidden(String),

    // --- 404 ---
    #[error("account '{0}' does not exist")]
    UnknownAccount(String),
    #[error("transaction {0} does not exist")]
    UnknownTransaction(i64),

    // --- 409: the request conflicts with the state ---
    #[error("the creditor account {0} is not an account of this bank")]
    UnknownCreditor(String),
    #[error("the debtor account {0} is not an account of this bank")]
    UnknownDebtor(String),
    #[error("debtor and creditor are the same account")]
    SameAccount,
    #[error("insufficient funds: the transfer would exceed the debtor's debit limit")]
    InsufficientFunds,
    #[error("request_uid was already used for a different transfer")]
    RequestUidReused,
    #[error("wtid was already used for a different transfer")]
    WtidReused,
    #[error("reserve_pub was already used by another incoming transfer")]
    ReservePubReused,
    #[error("account '{0}' is not an exchange account")]
    NotAnExchange(String),
    #[error("this operation is not allowed for exchange account '{0}'")]
    IsAnExchange(String),
    #[error("the bank's admin account cannot be credited")]
    AdminCreditor,
    #[error("account name '{0}' is already taken")]
    NameTaken(String),
    #[error("account name '{0}' is reserved")]
    NameReserved(String),

    // --- 500 ---
    #[error("balance arithmetic failed: {0}")]
    Arithmetic(String),
    #[error("stored data is inconsistent: {0}")]
    Invariant(String),
    #[error("password hashing failed: {0}")]
    Password(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("startup failed: {0}")]
    Startup(String),
}

impl From<BalanceError> for BankError {
    fn from(e: BalanceError) -> Self {
        match e {
            BalanceError::Insufficient => Self::InsufficientFunds,
            BalanceError::Amount(e) => Self::Arithmetic(e.to_string()),
        }
    }
}

impl ApiError for BankError {
    fn status(&self) -> StatusCode {
        match self {
            Self::CurrencyMismatch { .. }
            | Self::BadParameter { .. }
            | Self::MissingParameter(_)
            | Self::BadPayto(_)
            | Self::History(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::UnknownAccount(_) | Self::UnknownTransaction(_) => StatusCode::NOT_FOUND,
            Self::UnknownCreditor(_)
            | Self::UnknownDebtor(_)
            | Self::SameAccount
            | Self::InsufficientFunds
            | Self::RequestUidReused
            | Self::WtidReused
            | Self::ReservePubReused
            | Self::NotAnExchange(_)
            | Self::IsAnExchange(_)
            | Self::AdminCreditor
            | Self::NameTaken(_)
            | Self::NameReserved(_) => StatusCode::CONFLICT,
            Self::Arithmetic(_)
            | Self::Invariant(_)
            | Self::Password(_)
            | Self::Store(_)
            | Self::Startup(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::CurrencyMismatch { .. } => ErrorCode::GenericCurrencyMismatch,
            Self::BadParameter { .. } | Self::History(_) => ErrorCode::GenericParameterMalformed,
            Self::MissingParameter(_) => ErrorCode::GenericParameterMissing,
            Self::BadPayto(_) => ErrorCode::GenericPaytoUriMalformed,
            Self::Unauthorized(_) => ErrorCode::GenericUnauthorized,
            Self::Forbidden(_) => ErrorCode::GenericForbidden,
            Self::UnknownAccount(_) => ErrorCode::BankUnknownAccount,
            Self::UnknownTransaction(_) => ErrorCode::BankTransactionNotFound,
            Self::UnknownCreditor(_) => ErrorCode::BankUnknownCreditor,
            Self::UnknownDebtor(_) => ErrorCode::BankUnknownDebtor,
            Self::SameAccount => ErrorCode::BankSameAccount,
            Self::InsufficientFunds => ErrorCode::BankUnallowedDebit,
            Self::RequestUidReused => ErrorCode::BankTransferRequestUidReused,
            Self::WtidReused => ErrorCode::BankTransferWtidReused,
            Self::ReservePubReused => ErrorCode::BankDuplicateReservePubSubject,
            Self::NotAnExchange(_) => ErrorCode::BankAccountIsNotExchange,
            Self::IsAnExchange(_) => ErrorCode::BankAccountIsExchange,
            Self::AdminCreditor => ErrorCode::BankAdminCreditor,
            Self::NameTaken(_) => ErrorCode::BankRegisterUsernameReuse,
            Self::NameReserved(_) => ErrorCode::BankReservedUsernameConflict,
            Self::Store(e) => e.code(),
            Self::Arithmetic(_) => ErrorCode::GenericFailedComputeAmount,
            Self::Invariant(_) => ErrorCode::GenericDbInvariantFailure,
            Self::Password(_) | Self::Startup(_) => ErrorCode::GenericInternalInvariantFailure,
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            Self::BadParameter { name, .. } => Some((*name).to_owned()),
            Self::MissingParameter(name) => Some((*name).to_owned()),
            Self::History(e) => Some(e.parameter().to_owned()),
            _ => None,
        }
    }
}

impl IntoResponse for BankError {
    fn into_response(self) -> Response {
        cardcash_http::error_response(&self)
    }
}

/// Result alias for the bank.
pub type Result<T, E = BankError> = std::result::Result<T, E>;
