//! Core Bank API: the thin subset the bank serves (docs.taler.net api-corebank; libeufin
//! `bank/.../TalerMessage.kt`): config, accounts, balances, transactions between accounts and
//! bearer tokens. Shared by the bank (`cardcash-bank`) and its client
//! (`cardcash_client::bank`). Field names are the protocol's; values are typed. Unknown fields
//! are ignored on input.

use cardcash_util::{Amount, Currency, PaytoUri, RelativeTime, ShortHashCode, Timestamp};
use serde::{Deserialize, Serialize};

pub use crate::common::CurrencySpecification;

/// `GET /config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreConfig {
    /// Always `taler-corebank`.
    pub name: String,
    pub version: String,
    pub currency: Currency,
    pub currency_specification: CurrencySpecification,
    pub allow_registrations: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implementation: Option<String>,
}

/// `POST /accounts` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterAccountRequest {
    pub username: String,
    pub password: String,
    /// Legal name (the payto `receiver-name`).
    pub name: String,
    #[serde(default)]
    pub is_taler_exchange: bool,
    /// Admin only: how far below zero the account may go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debit_threshold: Option<Amount>,
}

/// `POST /accounts` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterAccountResponse {
    pub internal_payto_uri: String,
}

/// `GET /accounts/{name}` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountData {
    /// Legal name.
    pub name: String,
    pub balance: BalanceData,
    pub payto_uri: String,
    pub debit_threshold: Amount,
    pub is_taler_exchange: bool,
}

/// A signed balance on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceData {
    pub amount: Amount,
    /// `credit` (≥ 0) or `debit` (< 0).
    pub credit_debit_indicator: Direction,
}

/// `credit` or `debit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Credit,
    Debit,
}

/// `GET /accounts` (admin) response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListAccountsResponse {
    pub accounts: Vec<AccountMinimalData>,
}

/// One account in the admin list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountMinimalData {
    pub username: String,
    pub name: String,
    pub payto_uri: String,
    pub balance: BalanceData,
    pub debit_threshold: Amount,
    pub is_taler_exchange: bool,
}

/// `POST /accounts/{name}/transactions` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTransactionRequest {
    /// The creditor, with `?message=` (the subject) and optionally `&amount=`.
    pub payto_uri: PaytoUri,
    /// The amount, when not in the payto URI (if both are given they must agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// Idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_uid: Option<ShortHashCode>,
}

/// `POST /accounts/{name}/transactions` response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTransactionResponse {
    pub row_id: u64,
}

/// `GET /accounts/{name}/transactions` response (200; an empty page is a 204).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankAccountTransactionsResponse {
    pub transactions: Vec<BankAccountTransactionInfo>,
}

/// One transaction seen from an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankAccountTransactionInfo {
    pub creditor_payto_uri: String,
    pub debtor_payto_uri: String,
    pub amount: Amount,
    pub direction: Direction,
    pub subject: String,
    pub row_id: u64,
    pub date: Timestamp,
}

/// `POST /accounts/{name}/token` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRequest {
    /// `readonly` or `readwrite`.
    pub scope: String,
    /// Validity; default one day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<RelativeTime>,
}

/// `POST /accounts/{name}/token` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSuccessResponse {
    pub expiration: Timestamp,
    pub access_token: String,
}
