//! JSON wire types of the three APIs C2EC serves, with the field names of the Taler specs
//! (docs.taler.net: api-terminal, bank-integration, api-bank-wire; libeufin's
//! `TalerMessage.kt` for the shapes wallets and exchanges really parse). No logic.

use cardcash_util::{Amount, EddsaPublicKey, HashCode, ShortHashCode, Timestamp};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------- Terminal API (v0)

/// `GET /terminal/config`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TerminalConfig {
    pub name: String,
    pub version: String,
    pub provider_name: String,
    pub currency: String,
    /// The exchange's withdrawal fees; terminals add them to what they charge.
    pub withdrawal_fees: Amount,
    pub wire_type: String,
}

/// `POST /terminal/withdrawals`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalWithdrawalSetup {
    /// Idempotency key chosen by the terminal.
    pub request_uid: String,
    /// Fixed amount: the wallet cannot change it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// Suggested amount: the wallet may choose another when registering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_amount: Option<Amount>,
    /// Accepted for compatibility; the transaction is bound by `/check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_transaction_id: Option<String>,
    /// Card fees charged on top of the amount (shown to the wallet as `card_fees`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_fees: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
}

/// Answer to `POST /terminal/withdrawals`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TerminalWithdrawalSetupResponse {
    /// The WOPID.
    pub withdrawal_id: String,
    /// Our addition: the ready `taler://withdraw/…` URI for the QR code.
    pub taler_withdraw_uri: String,
}

/// `POST /terminal/withdrawals/$WOPID/check`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalWithdrawalConfirmationRequest {
    pub provider_transaction_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_fees: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
}

// ---------------------------------------------------------------- Bank integration API

/// `GET /taler-integration/config`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntegrationConfig {
    pub name: String,
    pub version: String,
    pub currency: String,
    pub currency_specification: CurrencySpecification,
}

/// How wallets render the currency.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurrencySpecification {
    pub name: String,
    pub currency: String,
    pub num_fractional_input_digits: u32,
    pub num_fractional_normal_digits: u32,
    pub num_fractional_trailing_zero_digits: u32,
    pub alt_unit_names: std::collections::BTreeMap<String, String>,
}

/// `GET /taler-integration/withdrawal-operation/$WOPID` (and the terminal's status view).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BankWithdrawalOperationStatus {
    pub status: String,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_amount: Option<Amount>,
    /// Non-Taler card fees the customer pays on top (terminal fees).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_fees: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_wire: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_exchange: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_exchange: Option<String>,
    pub wire_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_reserve_pub: Option<EddsaPublicKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_exchange_account: Option<String>,
    /// Legacy booleans (wallets of protocol v0/v1 read them).
    pub aborted: bool,
    pub selection_done: bool,
    pub transfer_done: bool,
}

/// `POST /taler-integration/withdrawal-operation/$WOPID`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BankWithdrawalOperationPostRequest {
    pub reserve_pub: EddsaPublicKey,
    pub selected_exchange: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
}

/// Answer to the registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BankWithdrawalOperationPostResponse {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_transfer_url: Option<String>,
    /// Legacy.
    pub transfer_done: bool,
}

// ---------------------------------------------------------------- Wire gateway API

/// `GET /taler-wire-gateway/config`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireConfig {
    pub name: String,
    pub version: String,
    pub currency: String,
    pub implementation: String,
}

/// `POST /taler-wire-gateway/transfer`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferRequest {
    pub request_uid: HashCode,
    pub amount: Amount,
    pub exchange_base_url: String,
    pub wtid: ShortHashCode,
    pub credit_account: String,
}

/// Answer to `POST /transfer` and `POST /admin/add-incoming`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferResponse {
    pub timestamp: Timestamp,
    pub row_id: u64,
}

/// One confirmed withdrawal in the incoming history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IncomingReserveTransaction {
    #[serde(rename = "type")]
    pub kind: String,
    pub row_id: u64,
    pub date: Timestamp,
    pub amount: Amount,
    pub debit_account: String,
    pub reserve_pub: EddsaPublicKey,
}

/// `GET /taler-wire-gateway/history/incoming`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IncomingHistory {
    pub incoming_transactions: Vec<IncomingReserveTransaction>,
    pub credit_account: String,
}

/// One transfer in the outgoing history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutgoingTransaction {
    pub row_id: u64,
    pub date: Timestamp,
    pub amount: Amount,
    pub credit_account: String,
    pub wtid: ShortHashCode,
    pub exchange_base_url: String,
}

/// `GET /taler-wire-gateway/history/outgoing`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutgoingHistory {
    pub outgoing_transactions: Vec<OutgoingTransaction>,
    pub debit_account: String,
}

/// `POST /taler-wire-gateway/admin/add-incoming`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddIncomingRequest {
    pub amount: Amount,
    pub reserve_pub: EddsaPublicKey,
    pub debit_account: String,
}
