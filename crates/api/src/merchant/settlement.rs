//! Settlement: the wire transfers the exchanges made to an instance (`GET /private/transfers`).
//! Field names of the C merchant's `TransferDetails` (`credit_amount`, `wtid`, `payto_uri`,
//! `exchange_url`, `transfer_serial_id`, `execution_time`, `verified`, `confirmed`); our extra:
//! the transfer's `wire_fee` and what it paid per order (`orders`), with the deposit fees.

use cardcash_util::{Amount, ShortHashCode, Timestamp};
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

/// A wire transfer from an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TransferDetails {
    /// What arrived (after the wire fee).
    pub credit_amount: Amount,
    pub wtid: ShortHashCode,
    /// The instance's account it was paid to.
    pub payto_uri: String,
    pub exchange_url: String,
    pub transfer_serial_id: u64,
    pub execution_time: Timestamp,
    /// The exchange's statement of the transfer was checked.
    pub verified: bool,
    /// The merchant confirmed receiving it at the bank (not tracked yet: always false).
    pub confirmed: bool,
    /// The exchange's fee for the transfer.
    pub wire_fee: Amount,
    pub orders: Vec<TransferOrder>,
}

/// `GET /private/transfers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TransferList {
    pub transfers: Vec<TransferDetails>,
}
