//! The wallet's one error type: every failure has an official Taler error code and a hint a
//! person can act on; [`WalletError::to_json`] is the `{"code", "hint", "detail"?}` body the
//! request interface answers with.

use cardcash_client::{ClientError, ErrorKind, KeysError};
use cardcash_store::StoreError;
use cardcash_util::ErrorCode;
use serde_json::{Value, json};

use crate::Step;

/// What went wrong in a wallet request.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("unknown operation {0:?}")]
    UnknownOperation(String),
    #[error("invalid request: {0}")]
    BadRequest(String),
    #[error("unknown exchange {0}: add it first")]
    UnknownExchange(String),
    #[error("unknown transaction {0}")]
    UnknownTransaction(String),
    #[error("the exchange's /keys does not verify: {0}")]
    KeysInvalid(#[from] KeysError),
    #[error("the exchange speaks an incompatible protocol: {0}")]
    ExchangeVersion(String),
    #[error("the bank integration API speaks an incompatible protocol: {0}")]
    BankVersion(String),
    #[error("an answer is not what the protocol promises: {0}")]
    MalformedResponse(String),
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("the exchange's signature of a coin does not verify (denomination {0})")]
    CoinSignatureInvalid(String),
    #[error("no coins fit into {0} (the exchange's smallest coin and its fee cost more)")]
    DenominationsInsufficient(String),
    #[error("the bank aborted the withdrawal operation")]
    AbortedByBank,
    #[error("the withdrawal is not finished: {0}")]
    Incomplete(String),
    #[error("stopped at {0:?} (test hook)")]
    Halted(Step),
    #[error("not a taler://pay URI: {0}")]
    PayUriInvalid(String),
    #[error("the order was claimed by another wallet already")]
    OrderAlreadyClaimed,
    #[error("the offer expired: the merchant no longer takes payments for this order")]
    OfferExpired,
    #[error("the contract terms are malformed: {0}")]
    ContractMalformed(String),
    #[error("the merchant's signature over the contract does not verify")]
    ContractSignatureInvalid,
    #[error("the contract names the merchant {contract}, but the URI came from {uri}")]
    ContractBaseUrlMismatch { uri: String, contract: String },
    #[error("the merchant takes coins of no exchange this wallet knows ({0}): add one first")]
    NoTrustedExchange(String),
    #[error(
        "insufficient balance: the payment needs {needed}, the wallet has {available} at the merchant's exchanges"
    )]
    InsufficientBalance { needed: String, available: String },
    #[error("wallet database: {0}")]
    Store(#[from] StoreError),
    #[error("cryptography: {0}")]
    Crypto(#[from] cardcash_crypto::CryptoError),
}

impl WalletError {
    /// The official Taler error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnknownOperation(_) => ErrorCode::WalletCoreApiOperationUnknown,
            Self::BadRequest(_) | Self::UnknownExchange(_) | Self::UnknownTransaction(_) => {
                ErrorCode::GenericParameterMalformed
            }
            Self::KeysInvalid(_) | Self::MalformedResponse(_) => {
                ErrorCode::WalletReceivedMalformedResponse
            }
            Self::ExchangeVersion(_) => ErrorCode::WalletExchangeProtocolVersionIncompatible,
            Self::BankVersion(_) => ErrorCode::WalletBankIntegrationProtocolVersionIncompatible,
            Self::Client(e) => match e.kind() {
                ErrorKind::Unreachable(_) => ErrorCode::WalletNetworkError,
                ErrorKind::Timeout(_) => ErrorCode::WalletHttpRequestGenericTimeout,
                ErrorKind::Malformed { .. } | ErrorKind::ResponseTooLarge { .. } => {
                    ErrorCode::WalletReceivedMalformedResponse
                }
                _ => ErrorCode::WalletUnexpectedRequestError,
            },
            Self::CoinSignatureInvalid(_) => ErrorCode::WalletExchangeCoinSignatureInvalid,
            Self::DenominationsInsufficient(_) => {
                ErrorCode::WalletExchangeDenominationsInsufficient
            }
            Self::AbortedByBank => ErrorCode::WalletWithdrawalOperationAbortedByBank,
            Self::Incomplete(_) | Self::Halted(_) => ErrorCode::WalletWithdrawalGroupIncomplete,
            Self::Store(_) | Self::Crypto(_) => ErrorCode::WalletUnexpectedException,
            Self::PayUriInvalid(_) => ErrorCode::WalletInvalidTalerPayUri,
            Self::OrderAlreadyClaimed => ErrorCode::WalletOrderAlreadyClaimed,
            Self::OfferExpired => ErrorCode::MerchantPostOrdersIdPayOfferExpired,
            Self::ContractMalformed(_) => ErrorCode::WalletContractTermsMalformed,
            Self::ContractSignatureInvalid => ErrorCode::WalletContractTermsSignatureInvalid,
            Self::ContractBaseUrlMismatch { .. } => ErrorCode::WalletContractTermsBaseUrlMismatch,
            Self::NoTrustedExchange(_) => ErrorCode::WalletExchangeDenominationsInsufficient,
            // The table has no wallet code for it; the merchant's refusal says the same.
            Self::InsufficientBalance { .. } => ErrorCode::MerchantPostOrdersIdPayInsufficientFunds,
        }
    }

    /// Whether trying again later may succeed (the network, a service's 5xx, a timeout).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Client(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// The Taler error body: `code`, `hint`, and for a refusal by a service the service's own
    /// error under `detail`.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "code": self.code().code(),
            "hint": self.to_string(),
        });
        if let Self::Client(e) = self {
            let mut detail = json!({ "url": e.url() });
            if let Some(status) = e.status() {
                detail["http_status"] = json!(status);
            }
            if let Some(code) = e.code() {
                detail["code"] = json!(code);
            }
            if let Some(hint) = e.hint() {
                detail["hint"] = json!(hint);
            }
            body["detail"] = detail;
        }
        body
    }
}

/// `Result` of the wallet.
pub type WalletResult<T> = Result<T, WalletError>;
