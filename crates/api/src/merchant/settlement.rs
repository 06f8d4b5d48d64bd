//! Settlement: the wire transfers the exchanges made to an instance (`GET /private/transfers`),
//! the bank's report of one (`POST /private/transfers`), and which order a session paid
//! (`GET /sessions/$SESSION_ID`).
//!
//! Field names of the C merchant's `TransferInformation` and `TransferDetails`
//! (`credit_amount`, `wtid`, `payto_uri`, `exchange_url`, `transfer_serial_id`,
//! `execution_time`, `verified`, `confirmed`, `expected`) and of
//! `GetSessionStatusPaidResponse` / `GetSessionStatusUnpaidResponse` (`order_id`); our extras:
//! the exchange's own statement when the bank reported the transfer (`exchange_credit_amount`,
//! `exchange_payto_uri`: a mismatch stays visible), the transfer's `wire_fee` and what it paid
//! per order (`orders`), with the deposit fees.

use cardcash_util::{Amount, BaseUrl, ShortHashCode, Timestamp};
use serde::{Deserialize, Serialize};

/// One order's part of a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TransferOrder {
    pub order_id: String,
    /// What the customer's coins paid (deposit fees included).
    pub deposit_total: Amount,
    /// The exchange's deposit fees of those coins.
    pub deposit_fees: Amount,
    /// What the transfer carried for the order (deposits − deposit fees − refunds), before the
    /// transfer's wire fee.
    pub wired: Amount,
}

/// `POST /private/transfers`: a wire transfer that arrived at the merchant's bank account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TransferInformation {
    /// What arrived (after the exchange's wire fee).
    pub credit_amount: Amount,
    pub wtid: ShortHashCode,
    /// The instance's account that received it.
    pub payto_uri: String,
    /// The exchange that made it.
    pub exchange_url: BaseUrl,
}

/// A wire transfer from an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TransferDetails {
    /// What arrived (after the wire fee): the bank's report when there is one, else the
    /// exchange's statement.
    pub credit_amount: Amount,
    pub wtid: ShortHashCode,
    /// The instance's account it was paid to (the bank's report first, like `credit_amount`).
    pub payto_uri: String,
    pub exchange_url: String,
    pub transfer_serial_id: u64,
    /// When the exchange made it; absent until the exchange said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_time: Option<Timestamp>,
    /// Absent without an exchange statement; `true` when the exchange's (checked) statement
    /// is not contradicted by the bank's report; `false` when they disagree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// The merchant's bank (or operator) confirmed it arrived (`POST /private/transfers`).
    pub confirmed: bool,
    /// The exchange told us about it (the settlement worker or the report's inquiry).
    pub expected: bool,
    /// The exchange's fee for the transfer, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_fee: Option<Amount>,
    /// The exchange's statement of what it wired, when the transfer is also confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_credit_amount: Option<Amount>,
    /// The account the exchange says it paid, when the transfer is also confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_payto_uri: Option<String>,
    pub orders: Vec<TransferOrder>,
}

/// `GET /private/transfers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TransferList {
    pub transfers: Vec<TransferDetails>,
}

/// `GET /sessions/$SESSION_ID`: 200 with the order paid in the session, 202 with the order
/// created for it but not paid yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GetSessionStatusResponse {
    pub order_id: String,
}
